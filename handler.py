"""Lambda entry points. Settings come from the environment (``bloodbank.settings``); the container
is built once per Lambda container and shared by the handlers below.

- ``http_handler``: the GraphQL API behind API Gateway (HTTP API v2 or REST v1 events), through Mangum.
- ``eligibility_reminders``: an EventBridge schedule (hourly); tells donors whose donation interval
  has ended that they may give again. Safe to run twice: a handled reminder is deleted, and each
  message is claimed in the notification ledger before it is sent.
- ``expire_units``: an EventBridge schedule (every 15 minutes); expires blood units past their expiry.
- ``websocket``: the API Gateway WebSocket API's ``$connect``, ``$disconnect`` and ``$default`` routes
  (GraphQL subscriptions in AppSync's real-time protocol, stored in the table).
- ``fan_out_alerts``: subscribed to the alerts topic; posts each alert to the WebSocket
  subscriptions that want it.
- ``websocket_keep_alive``: an EventBridge schedule (every 4 minutes); a ``ka`` to every connection.
- ``appeal_donors``: subscribed to the alerts topic (AMBER and RED only); asks the donors who can
  help with the shortage to come and give, each at most once per appeal period.
- ``import_recipients``: S3 ObjectCreated of a recipient list upload; imports it.
- ``campaign_worker``: the campaign queue (SQS): puts audiences in the send ledger and sends.
- ``ses_events``: SES events (SNS) to the ledger, the suppression list and the guardrails.
- ``campaign_scheduler``: every minute: due campaigns, expiry, stale claims.
- ``process_employee_photo``: S3 ObjectCreated of an employee photo upload; checks it, writes its
  thumbnails without metadata, records them (or why it was rejected) on the profile.
- ``watch_audit_records``: the table's stream (filtered to audit records modified or removed);
  each one logged as a WARNING and counted (``AuditRecordsAltered``).

Every handler runs in a ``logs.request_scope`` (each log record carries the invocation's
``aws_request_id``, and API Gateway's request id where the event has one) and flushes the business
metrics it counted at its end, failed or not (``bloodbank.observability``).
"""

from __future__ import annotations

import gc

# Cold start: building the app makes hundreds of thousands of long-lived objects, and the cyclic
# garbage collector would scan them again and again while they are made (tens of milliseconds).
# Collect nothing until the app is built, then move it all out of the collector's sight.
gc.disable()

import functools  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any, TypeVar  # noqa: E402

from mangum import Mangum  # noqa: E402
from mangum.types import LambdaContext, LambdaEvent  # noqa: E402

from bloodbank import logs  # noqa: E402
from bloodbank.bootstrap import Container, build_container  # noqa: E402
from bloodbank.domain.alerts import ShortageAlert, alert_from_document  # noqa: E402
from bloodbank.ports import Metrics  # noqa: E402
from bloodbank.server import create_app  # noqa: E402
from bloodbank.settings import Settings  # noqa: E402
from bloodbank.websocket import ApiGatewaySubscriptions  # noqa: E402

log = logging.getLogger("bloodbank.handler")
R = TypeVar("R")


def _api_request_id(event: object) -> str | None:
    """API Gateway's request id (HTTP and WebSocket events), if the event has one."""
    context = event.get("requestContext") if isinstance(event, dict) else None
    rid = context.get("requestId") if isinstance(context, dict) else None
    return rid[:64] if isinstance(rid, str) and rid else None


def invocation(handler: Callable[[dict[str, Any], Any], R]) -> Callable[[dict[str, Any], Any], R]:
    """Runs ``handler`` with the invocation's ids on every log record, then flushes its metrics."""

    @functools.wraps(handler)
    def run(event: dict[str, Any], context: Any) -> R:
        rid = getattr(context, "aws_request_id", None)
        with logs.request_scope(str(rid) if rid else None, api_request_id=_api_request_id(event)):
            try:
                return handler(event, context)
            finally:
                container.metrics.flush()  # (the module's container, looked up now: tests replace it)

    return run


class LambdaHttp(Mangum):
    """Mangum, in the invocation's request scope, flushing ``metrics`` after each invocation (the
    app's middleware flushes after each request already; this covers what fails around it)."""

    def __init__(self, app: Any, metrics: Metrics, **options: Any) -> None:
        super().__init__(app, **options)
        self.metrics = metrics

    def __call__(self, event: LambdaEvent, context: LambdaContext) -> dict[str, Any]:
        rid = getattr(context, "aws_request_id", None)
        with logs.request_scope(str(rid) if rid else None, api_request_id=_api_request_id(event)):
            try:
                return super().__call__(event, context)
            finally:
                self.metrics.flush()


container: Container = build_container(Settings.from_env())
app = create_app(container)
http_handler = LambdaHttp(app, container.metrics, lifespan="off", api_gateway_base_path="/")
subscriptions = ApiGatewaySubscriptions(container)
gc.freeze()
gc.enable()


@invocation
def eligibility_reminders(event: dict[str, Any], context: Any) -> dict[str, int]:
    """EventBridge scheduled event in, the number of donors told out (reminders of the last 3 days)."""
    return {"sent": container.donations.send_due_reminders(days_back=2)}


@invocation
def expire_units(event: dict[str, Any], context: Any) -> dict[str, int]:
    """EventBridge scheduled event in (every 15 minutes), the number of units expired out.

    One Query per site on the expiry-ordered stock index; each unit expires in a conditional
    transaction with its ledger entry and stock counters, so overlapping runs expire it once.
    """
    return {"expired": container.inventory.expire_due()}


@invocation
def websocket(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """API Gateway WebSocket proxy event in ($connect, $disconnect, $default), its answer out."""
    return subscriptions.route(event)


@invocation
def fan_out_alerts(event: dict[str, Any], context: Any) -> dict[str, int]:
    """SNS event of the alerts topic in; each alert posted to the WebSocket subscriptions that want it.

    A message that is not an alert is logged (by its message id) and skipped: retrying cannot mend it.
    A failure to post raises, so SNS retries the delivery (subscribers may then hear an alert twice).
    """
    totals = {"alerts": 0, "delivered": 0, "expired": 0, "gone": 0, "skipped": 0, "unreadable": 0}
    for message_id, alert in _alerts_of(event, totals):
        totals["alerts"] += 1
        for name, count in subscriptions.fan_out(alert, message_id).items():
            totals[name] += count
    return totals


class AppealIncomplete(Exception):
    """The appeal ran out of time: raised so that Lambda retries the event (the retry skips every
    donor already asked, by the appeal claims and the send-once ledger)."""


@invocation
def appeal_donors(event: dict[str, Any], context: Any) -> dict[str, int]:
    """SNS event of the alerts topic in; the donors asked (and those skipped, by reason) out.

    Stops when the shortage ends or a newer alert of the level takes over. Out of time, it raises
    AppealIncomplete so that Lambda's retry carries on.
    """
    totals: dict[str, int] = {"alerts": 0, "unreadable": 0}
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    for _, alert in _alerts_of(event, totals):
        totals["alerts"] += 1
        report = container.appeals.appeal(
            alert, remaining_seconds=(lambda: remaining() / 1000) if remaining else None
        )
        counts = report.counts()
        log.info("appeal", extra=counts)
        for name, value in counts.items():
            if isinstance(value, int):
                totals[name] = totals.get(name, 0) + value
        if report.resume_at is not None:
            raise AppealIncomplete(f"appeal {alert.id} ran out of time; the retry carries on")
    return totals


def _alerts_of(event: dict[str, Any], totals: dict[str, int]) -> list[tuple[str, ShortageAlert]]:
    """The alerts an SNS event carries, with their message ids. A message that is not an alert is
    logged (by its message id), counted as unreadable and skipped: retrying cannot mend it."""
    alerts = []
    for record in event.get("Records", []):
        sns = record.get("Sns") or {}
        message_id = str(sns.get("MessageId") or "-")
        try:
            document = json.loads(sns.get("Message") or "")
            if not isinstance(document, dict):
                raise ValueError("not a JSON object")
            alerts.append((message_id, alert_from_document(document)))
        except ValueError:  # (json.JSONDecodeError is one)
            log.error("not a shortage alert", extra={"message_id": message_id})
            totals["unreadable"] += 1
    return alerts


@invocation
def websocket_keep_alive(event: dict[str, Any], context: Any) -> dict[str, int]:
    """EventBridge scheduled event in; the connections kept (and those found gone) out."""
    return subscriptions.keep_alive()


@invocation
def import_recipients(event: dict[str, Any], context: Any) -> dict[str, int]:
    """S3 ``ObjectCreated`` event of the documents bucket (prefix ``recipient-lists/``) in; the
    imports run (READY, FAILED) and the objects skipped out.

    Keys arrive URL-encoded (a space as ``+``). A file that cannot be used marks its list FAILED
    with the reason, and a record that is not an upload is skipped: retrying mends neither. A
    dependency failure (DynamoDB, S3) raises, so that Lambda retries the event; the retry's import
    is idempotent (members keyed by address, counts from the whole file).
    """
    from bloodbank.adapters.s3_objects import created_objects

    totals = {"READY": 0, "FAILED": 0, "skipped": 0}
    for found in created_objects(event):
        if found is None:
            totals["skipped"] += 1
            continue
        bucket, key = found
        result = container.recipient_lists.import_upload(bucket, key)
        totals[result.outcome if result.outcome in totals else "skipped"] += 1
        if result.outcome == "skipped":
            log.info("recipient upload skipped", extra={"list_id": result.list_id, "why": result.reason})
    return totals


@invocation
def campaign_worker(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """SQS event of the campaign queue in (materialize, send and requeue jobs), the batch item
    failures out: a job that failed (SES throttling for too long, an outage) comes back alone, the
    others are deleted. Every job is safe to run twice (services.campaigns)."""
    from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response

    def run(record: Any) -> None:
        container.campaigns.handle(json.loads(record.body))

    processor = BatchProcessor(event_type=EventType.SQS)
    return dict(
        process_partial_response(event=event, record_handler=run, processor=processor, context=context)
    )


@invocation
def ses_events(event: dict[str, Any], context: Any) -> dict[str, int]:
    """SNS event of the SES configuration set's event destination (and of identity feedback) in;
    each event applied to its recipient once (repeats and any order are fine), suppressing hard
    bounces and complaints. A message that is not an SES event is logged and skipped."""
    from bloodbank.domain.ses_events import parse_message

    totals = {"events": 0, "applied": 0, "unreadable": 0}
    for record in event.get("Records", []):
        sns = record.get("Sns") or {}
        try:
            parsed = parse_message(sns.get("Message") or "")
        except ValueError:
            log.error("not an SES event", extra={"message_id": sns.get("MessageId")})
            totals["unreadable"] += 1
            continue
        for delivery_event in parsed:
            totals["events"] += 1
            totals["applied"] += int(container.campaigns.record_event(delivery_event))
    return totals


@invocation
def campaign_scheduler(event: dict[str, Any], context: Any) -> dict[str, int]:
    """EventBridge schedule (every minute): starts SCHEDULED campaigns that are due, expires those past
    expiresAt, gives claims of dead senders back to the queue, marks finished campaigns SENT."""
    return container.campaigns.tick()


@invocation
def process_employee_photo(event: dict[str, Any], context: Any) -> dict[str, int]:
    """S3 ``ObjectCreated`` event of the documents bucket (prefix ``employee-photos/uploads/``) in;
    the photos ACCEPTED and REJECTED and the records skipped out.

    Keys arrive URL-encoded. A file that is no acceptable image (not an image, truncated, too large,
    of another type) is REJECTED with the reason on the profile and never raises: retrying cannot
    mend it. A dependency failure (DynamoDB, S3) raises, so that Lambda retries the event; the retry
    of an upload already recorded is skipped.
    """
    from bloodbank.adapters.s3_objects import created_objects

    totals = {"ACCEPTED": 0, "REJECTED": 0, "skipped": 0}
    for found in created_objects(event):
        if found is None:
            totals["skipped"] += 1
            continue
        result = container.employees.process_photo(*found)
        totals[result.outcome] += 1
        if result.outcome != "ACCEPTED":
            log.info(
                "employee photo not used",
                extra={"employee_id": result.employee_id, "outcome": result.outcome, "why": result.reason},
            )
    return totals


@invocation
def watch_audit_records(event: dict[str, Any], context: Any) -> dict[str, int]:
    """DynamoDB stream event of the table (NEW_AND_OLD_IMAGES) in; the audit records altered out.

    Audit records are written once and never changed (the application's roles may not update or
    delete them), so a MODIFY or REMOVE of an ``AUDIT#`` item is someone tampering, or an operator:
    each is logged as a WARNING with the event name, the item's keys and the stream's event id
    (keys only: an audit key holds no personal data; the images are never logged) and counted as
    ``AuditRecordsAltered``. The trigger's filter passes only those; anything else is ignored here
    too. Nothing can fail but logging, so there is no partial-batch report.
    """
    from bloodbank.storage.keys import AUDIT_PREFIX

    altered = 0
    for record in event.get("Records") or []:
        if not isinstance(record, dict) or record.get("eventName") not in ("MODIFY", "REMOVE"):
            continue
        stream = record.get("dynamodb")
        keys = stream.get("Keys") if isinstance(stream, dict) else None
        pk, sk = _string_attribute(keys, "pk"), _string_attribute(keys, "sk")
        if pk is None or not pk.startswith(AUDIT_PREFIX):
            continue
        identity = record.get("userIdentity")
        by_ttl = isinstance(identity, dict) and identity.get("principalId") == "dynamodb.amazonaws.com"
        log.warning(
            "audit record altered",
            extra={
                "event_name": record["eventName"],
                "pk": pk,
                "sk": sk,
                "event_id": str(record.get("eventID") or "-"),
                "by_ttl": by_ttl,
            },
        )
        altered += 1
    if altered:
        container.metrics.count("AuditRecordsAltered", altered)
    return {"altered": altered}


def _string_attribute(item: object, name: str) -> str | None:
    """A string attribute of a DynamoDB JSON item (``{"pk": {"S": "..."}}``), or None."""
    value = item.get(name) if isinstance(item, dict) else None
    text = value.get("S") if isinstance(value, dict) else None
    return text if isinstance(text, str) else None
