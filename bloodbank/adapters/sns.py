"""Donor notifications through Amazon SNS: SMS straight to a phone, e-mail through the donor topic.

SMS are published to the phone number as Transactional (service messages, which SNS routes for
reliability rather than cost). E-mail goes to the donor topic as a JSON document; the subscriber that
delivers it (a queue read by a mailer, for example) filters on the ``channel`` and ``kind`` message
attributes. Nothing here logs, and errors never carry a phone number or an address.
"""

from __future__ import annotations

import json
import re
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from bloodbank.domain.alerts import ShortageAlert
from bloodbank.domain.employees import EmployeeEvent, EmployeeEventType
from bloodbank.domain.notifications import Channel, OutgoingMessage
from bloodbank.errors import DependencyUnavailable

SMS_TYPE = "Transactional"
MAX_SUBJECT_CHARS = 99  # SNS: ASCII, no line breaks, fewer than 100 characters
_CODE = re.compile(r"[^A-Za-z0-9.]")  # an error code is an identifier; keep nothing else of the reply


def _string(value: str) -> dict[str, str]:
    return {"DataType": "String", "StringValue": value}


def _subject(subject: str) -> str:
    ascii_only = subject.encode("ascii", "ignore").decode()
    one_line = " ".join(ascii_only.split())
    return one_line[:MAX_SUBJECT_CHARS] or "Message from your blood service"


def _publish(client: Any, request: dict[str, Any], what: str) -> dict[str, Any]:
    """SNS Publish; a refusal or an outage is DependencyUnavailable naming ``what`` and the error
    code only (never the message, a phone number or an address)."""
    try:
        response: dict[str, Any] = client.publish(**request)
    except ClientError as exc:
        code = _CODE.sub("", str(exc.response.get("Error", {}).get("Code", "Unknown")))[:64]
        raise DependencyUnavailable(f"SNS refused the {what}: {code}") from None
    except (BotoCoreError, OSError) as exc:
        raise DependencyUnavailable(f"SNS unreachable, {what} not sent: {type(exc).__name__}") from None
    return response


class SnsNotifier:
    """Implements ``Notifier``. ``client`` is a boto3 SNS client; ``topic_arn`` the donor topic
    ("" if e-mail is not configured: then e-mail sends fail as unavailable). ``sender_id`` is the
    alphanumeric sender shown on SMS where the destination country supports one."""

    def __init__(self, client: Any, topic_arn: str, *, sender_id: str | None = None) -> None:
        self._client = client
        self._topic_arn = topic_arn
        self._sender_id = sender_id

    def request(self, message: OutgoingMessage) -> dict[str, Any]:
        """The Publish parameters for ``message``."""
        if message.channel is Channel.SMS:
            attributes = {"AWS.SNS.SMS.SMSType": _string(SMS_TYPE)}
            if self._sender_id:
                attributes["AWS.SNS.SMS.SenderID"] = _string(self._sender_id)
            return {"PhoneNumber": message.to, "Message": message.text, "MessageAttributes": attributes}
        body = {
            "to": message.to,
            "subject": message.subject,
            "text": message.text,
            "kind": message.kind.value,
        }
        return {
            "TopicArn": self._topic_arn,
            "Subject": _subject(message.subject),
            "Message": json.dumps(body, ensure_ascii=False),
            "MessageAttributes": {
                "channel": _string(message.channel.value),
                "kind": _string(message.kind.value),
            },
        }

    def send(self, message: OutgoingMessage) -> str:
        channel = message.channel.value
        if message.channel is Channel.EMAIL and not self._topic_arn:
            raise DependencyUnavailable("SNS donor topic is not configured: e-mail notification not sent")
        response = _publish(self._client, self.request(message), f"{channel} notification")
        return str(response["MessageId"])


def alert_document(alert: ShortageAlert) -> dict[str, Any]:
    """The alert as subscribers receive it (the same fields as the GraphQL ShortageAlert)."""
    return {
        "id": alert.id,
        "siteId": alert.site_id,
        "bloodGroup": alert.blood_group.value,
        "component": alert.component.value,
        "status": alert.status.value,
        "previousStatus": alert.previous_status.value,
        "available": alert.available,
        "threshold": alert.threshold,
        "daysOfSupply": alert.days_of_supply,
        "raisedAt": alert.raised_at.isoformat().replace("+00:00", "Z"),
    }


class SnsAlertPublisher:
    """Implements ``AlertPublisher``: each alert to the alerts topic, with message attributes for
    site, group, component and status so that e-mail, SMS and ops subscriptions can filter."""

    def __init__(self, client: Any, topic_arn: str) -> None:
        self._client = client
        self._topic_arn = topic_arn

    def request(self, alert: ShortageAlert) -> dict[str, Any]:
        group = alert.blood_group.label
        component = alert.component.value.replace("_", " ").lower()
        subject = f"Blood stock {alert.status.value}: {group} {component} at {alert.site_id}"
        return {
            "TopicArn": self._topic_arn,
            "Subject": _subject(subject),
            "Message": json.dumps(alert_document(alert)),
            "MessageAttributes": {
                "siteId": _string(alert.site_id),
                "bloodGroup": _string(alert.blood_group.value),
                "component": _string(alert.component.value),
                "status": _string(alert.status.value),
            },
        }

    def publish(self, alert: ShortageAlert) -> None:
        if not self._topic_arn:
            return  # no topic configured: subscriptions still hear of it
        _publish(self._client, self.request(alert), "shortage alert")


class SnsEmployeeEvents:
    """Implements ``EmployeeEvents``: each profile creation or approval to the employee topic, with
    the message attributes ``eventType``, ``status`` and (when set) ``department`` for filter
    policies. The message names the profile by id only (``EmployeeEvent.document``)."""

    def __init__(self, client: Any, topic_arn: str) -> None:
        self._client = client
        self._topic_arn = topic_arn

    def request(self, event: EmployeeEvent) -> dict[str, Any]:
        attributes = {"eventType": _string(event.type.value), "status": _string(event.status.value)}
        if event.department:
            attributes["department"] = _string(event.department)
        what = "created" if event.type is EmployeeEventType.PROFILE_CREATED else "approved"
        return {
            "TopicArn": self._topic_arn,
            "Subject": _subject(f"Employee profile {what}"),
            "Message": json.dumps(event.document(), ensure_ascii=False),
            "MessageAttributes": attributes,
        }

    def publish(self, event: EmployeeEvent) -> None:
        if not self._topic_arn:
            return  # no topic configured: nobody is listening
        _publish(self._client, self.request(event), "employee event")
