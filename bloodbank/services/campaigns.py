"""Campaigns: create, launch, pause, resume, cancel; the queue's jobs that put the audience in the send
ledger and send; SES's events; the guardrails.

The flow. ``launch`` checks the template against the audience's variables (refused now rather than
mid-send), then the campaign is SENDING (or SCHEDULED until ``sendAt``: the scheduler's ``tick``
starts it) and a ``materialize`` job goes on the queue. Each materialize job puts one page of the
audience in the ledger (``domain.deliveries``: QUEUED, one conditional put per recipient, never
overwriting one), counts it once (a chunk marker, in one transaction with the counters), puts its
``send`` jobs (``SEND_BATCH`` recipients each) on the queue and the next page's job after them. A
``send`` job claims each recipient, renders, sends through SES at the paced rate and marks it SENT;
the last one to find nothing QUEUED or SENDING marks the campaign SENT.

Every job may run twice or concurrently (SQS delivers at least once): claims and markers make a
repeat do nothing. A paused, cancelled or expired campaign's send jobs leave their recipients
QUEUED; ``resume`` puts jobs for every QUEUED recipient on the queue again. What a crash between
"SES took it" and "marked SENT" means is written in ``domain.deliveries``.
"""

from __future__ import annotations

import itertools
import logging
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, TypeVar

from bloodbank.domain import deliveries as ledger
from bloodbank.domain import email_templates, suppression
from bloodbank.domain.campaigns import (
    ALWAYS_AVAILABLE,
    CANCELLABLE,
    EXPIRABLE,
    LAUNCHABLE,
    PAUSABLE,
    RESUMABLE,
    SEGMENT_VARIABLES,
    Audience,
    Campaign,
    CampaignStatus,
    DeliveryEvent,
    DeliveryEventKind,
    ListAudience,
    PauseReason,
    SegmentAudience,
    Stats,
    address_key,
    guardrail,
)
from bloodbank.domain.deliveries import Change, Delivery, Stage
from bloodbank.domain.identity import Identity
from bloodbank.domain.mail import (
    OutgoingEmail,
    QuotaExhausted,
    SendRejected,
    SendThrottled,
    unsubscribe_headers,
)
from bloodbank.domain.recipients import ListStatus
from bloodbank.errors import BadUserInput, Conflict, FieldProblem, Forbidden, NotFound
from bloodbank.observability import DISCARDED, MetricName
from bloodbank.ports import (
    CampaignQueue,
    CampaignStore,
    ChunkMarker,
    Clock,
    DeliveryLedger,
    EmailTemplates,
    IdGenerator,
    MailSender,
    Metrics,
    Page,
    RecipientLists,
    Suppressions,
)
from bloodbank.services.pacing import Pacer, send_with_backoff

log = logging.getLogger("bloodbank.campaigns")
T = TypeVar("T")

Member = tuple[str, Mapping[str, str]]  # (normalized address, template values)
Segments = Callable[[SegmentAudience, str | None, int], tuple[list[Member], str | None]]

CHUNK = 500  # audience members put in the ledger per materialize job
SEND_BATCH = 50  # recipients per send job
MAX_NAME = 100
MAX_AHEAD = timedelta(days=90)
SEND_THREADS = 8  # recipients of one send job in flight at once
APPLY_ATTEMPTS = 8  # reads and conditional writes of one recipient before giving up on a change


# SES events counted once the recipient's ledger took them (bloodbank.observability).
_EVENT_METRICS: dict[DeliveryEventKind, MetricName] = {
    DeliveryEventKind.BOUNCE: "EmailsBounced",
    DeliveryEventKind.COMPLAINT: "EmailsComplained",
}


class IllegalCampaignTransition(Conflict):
    error_type = "IllegalTransition"


class CampaignNotLaunchable(Conflict):
    error_type = "CampaignNotLaunchable"


def may_run_campaigns(identity: Identity) -> bool:
    return identity.is_staff


@dataclass(frozen=True, slots=True)
class Sending:
    """What every message of this deployment carries: the sender, the configuration set (whose event
    destination reports back), and the per-recipient unsubscribe link maker."""

    sender: str
    configuration_set: str
    unsubscribe_link: Callable[[str, str], str]  # (campaign id, address key) -> https URL


@dataclass
class CampaignService:
    campaigns: CampaignStore
    deliveries: DeliveryLedger
    queue: CampaignQueue
    templates: EmailTemplates
    lists: RecipientLists
    audience_segments: Segments
    suppressions: Suppressions
    mailer: MailSender
    sending: Sending
    clock: Clock
    new_id: IdGenerator
    pacer: Pacer | None = None  # made from the account's send rate on first send
    send_threads: int = SEND_THREADS
    metrics: Metrics = DISCARDED
    _pool: ThreadPoolExecutor | None = field(default=None, init=False, repr=False)

    # --- the API ----------------------------------------------------------------------------------
    def create(self, identity: Identity, values: Mapping[str, Any]) -> Campaign:
        self._allowed(identity)
        now = self.clock()
        problems: list[FieldProblem] = []
        name = str(values.get("name") or "").strip()
        if not 1 <= len(name) <= MAX_NAME:
            problems.append(FieldProblem("input.name", f"must be 1-{MAX_NAME} characters"))
        template_id = str(values.get("template_id") or "")
        if not template_id or self.templates.get(template_id) is None:
            problems.append(FieldProblem("input.templateId", "is not a template of ours"))
        audience = self._audience(values, problems)
        send_at, expires_at = values.get("send_at"), values.get("expires_at")
        if send_at is not None and not now - timedelta(minutes=1) <= send_at <= now + MAX_AHEAD:
            problems.append(FieldProblem("input.sendAt", "must be from now to 90 days ahead"))
        if expires_at is not None and expires_at <= max(now, send_at or now):
            problems.append(FieldProblem("input.expiresAt", "must be after now and after sendAt"))
        if problems:
            raise BadUserInput("The campaign cannot be created as given", problems)
        assert audience is not None
        campaign = Campaign(
            id=self.new_id(),
            name=name,
            template_id=template_id,
            audience=audience,
            status=CampaignStatus.DRAFT,
            created_by=identity.sub,
            created_at=now,
            updated_at=now,
            send_at=send_at,
            expires_at=expires_at,
        )
        self.campaigns.create(campaign)
        return campaign

    def _audience(self, values: Mapping[str, Any], problems: list[FieldProblem]) -> Audience | None:
        list_id, segment = values.get("list_id"), values.get("segment")
        if (list_id is None) == (segment is None):
            problems.append(FieldProblem("input", "give exactly one of listId and segment"))
            return None
        if list_id is not None:
            found = self.lists.get(str(list_id))
            if found is None:
                problems.append(FieldProblem("input.listId", "is not a recipient list of ours"))
                return None
            return ListAudience(str(list_id))
        assert segment is not None
        groups = frozenset(
            g.value if hasattr(g, "value") else str(g) for g in segment.get("blood_groups") or ()
        )
        return SegmentAudience(groups, segment.get("site_id"), bool(segment.get("eligible_now")))

    def get(self, identity: Identity, campaign_id: str) -> Campaign | None:
        self._allowed(identity)
        return self.campaigns.get(campaign_id)

    def campaigns_page(
        self, identity: Identity, status: CampaignStatus | None, limit: int, next_token: str | None
    ) -> Page[Campaign]:
        self._allowed(identity)
        return self.campaigns.campaigns(status, limit, next_token)

    def stats(self, campaign_id: str) -> Stats:
        return self.campaigns.stats(campaign_id)

    def recipients(
        self, identity: Identity, campaign_id: str, stage: Stage | None, limit: int, next_token: str | None
    ) -> Page[Delivery]:
        self._allowed(identity)
        if self.campaigns.get(campaign_id) is None:
            raise NotFound(f"Campaign {campaign_id} not found")
        return self.deliveries.by_stage(campaign_id, stage, limit, next_token)

    def launch(self, identity: Identity, campaign_id: str) -> Campaign:
        self._allowed(identity)
        campaign = self._existing(campaign_id)
        if campaign.status in RESUMABLE:
            return self.resume(identity, campaign_id)
        if campaign.status not in LAUNCHABLE:
            raise IllegalCampaignTransition(f"A {campaign.status.value} campaign cannot be launched")
        now = self.clock()
        if campaign.expired(now):
            raise CampaignNotLaunchable("The campaign expired before it was launched")
        template = self.templates.get(campaign.template_id)
        if template is None:
            raise CampaignNotLaunchable("The campaign's template no longer exists")
        if isinstance(campaign.audience, ListAudience):
            found = self.lists.get(campaign.audience.list_id)
            if found is None or found.status is not ListStatus.READY:
                raise CampaignNotLaunchable("The recipient list is not imported (READY) yet")
        available = self._audience_variables(campaign.audience)
        missing = email_templates.missing_variables(template, available)
        if missing:
            raise BadUserInput(
                "The template uses variables the audience does not have: " + ", ".join(sorted(missing)),
                [
                    FieldProblem("templateId", f"uses {name}, which the audience lacks")
                    for name in sorted(missing)
                ],
            )
        scheduled = campaign.send_at is not None and campaign.send_at > now
        status = CampaignStatus.SCHEDULED if scheduled else CampaignStatus.SENDING
        launched = self._move(campaign, status, now, launched_at=now)
        if status is CampaignStatus.SENDING:
            self.queue.send([materialize_job(campaign_id, 0, None)])
        return launched

    def pause(self, identity: Identity, campaign_id: str) -> Campaign:
        self._allowed(identity)
        campaign = self._existing(campaign_id)
        if campaign.status not in PAUSABLE:
            raise IllegalCampaignTransition(f"A {campaign.status.value} campaign cannot be paused")
        return self._move(campaign, CampaignStatus.PAUSED, self.clock(), pause_reason=PauseReason.BY_USER)

    def resume(self, identity: Identity, campaign_id: str) -> Campaign:
        self._allowed(identity)
        campaign = self._existing(campaign_id)
        if campaign.status not in RESUMABLE:
            raise IllegalCampaignTransition(f"A {campaign.status.value} campaign cannot be resumed")
        now = self.clock()
        if campaign.expired(now):
            return self._move(campaign, CampaignStatus.EXPIRED, now, finished_at=now)
        was_scheduled = (
            campaign.launched_at is not None and campaign.send_at is not None and campaign.send_at > now
        )
        status = CampaignStatus.SCHEDULED if was_scheduled else CampaignStatus.SENDING
        resumed = self._move(campaign, status, now, pause_reason=None)
        if status is CampaignStatus.SENDING:
            self.queue.send([requeue_job(campaign_id)])
        return resumed

    def cancel(self, identity: Identity, campaign_id: str) -> Campaign:
        self._allowed(identity)
        campaign = self._existing(campaign_id)
        if campaign.status not in CANCELLABLE:
            raise IllegalCampaignTransition(f"A {campaign.status.value} campaign cannot be cancelled")
        now = self.clock()
        return self._move(campaign, CampaignStatus.CANCELLED, now, finished_at=now)

    # --- queue jobs -------------------------------------------------------------------------------
    def handle(self, job: Mapping[str, Any]) -> None:
        """One job from the queue (any of them may come twice)."""
        kind = job.get("kind")
        campaign_id = str(job.get("campaign") or "")
        if kind == "materialize":
            self.materialize(campaign_id, int(job["chunk"]), job.get("token"))
        elif kind == "send":
            self.send_batch(campaign_id, [str(r) for r in job["recipients"]])
        elif kind == "requeue":
            self.requeue(campaign_id)
        else:
            raise ValueError(f"unknown campaign job {kind!r}")

    def materialize(self, campaign_id: str, chunk: int, token: str | None) -> None:
        campaign = self.campaigns.get(campaign_id)
        if campaign is None or campaign.status in (CampaignStatus.CANCELLED, CampaignStatus.EXPIRED):
            return
        marker = self.campaigns.chunk(campaign_id, chunk)
        if marker is None:
            members, next_token = self._page_of(campaign, token)
            now = self.clock()
            self.deliveries.add(
                [
                    Delivery(campaign_id, address_key(email), email, dict(values), updated_at=now)
                    for email, values in members
                ]
            )
            marker = ChunkMarker(chunk, len(members), False, next_token)
            if not self.campaigns.count_chunk(campaign_id, marker, now):
                marker = self.campaigns.chunk(campaign_id, chunk) or marker  # a twin counted it
            recipients = [address_key(email) for email, _ in members]
        else:
            recipients = None
        if not marker.enqueued:
            if recipients is None:  # counted by an earlier run that died before enqueueing
                members, _ = self._page_of(campaign, token)
                recipients = [address_key(email) for email, _ in members]
            self.queue.send(send_jobs(campaign_id, recipients))
            self.campaigns.chunk_enqueued(campaign_id, chunk)
        if marker.next_token is None:
            self._materialized(campaign_id)
        elif self.campaigns.chunk(campaign_id, chunk + 1) is None:  # else a twin already went on
            self.queue.send([materialize_job(campaign_id, chunk + 1, marker.next_token)])

    def _materialized(self, campaign_id: str) -> None:
        for _ in range(APPLY_ATTEMPTS):
            campaign = self.campaigns.get(campaign_id)
            if campaign is None or campaign.materialized:
                return
            if self.campaigns.save(
                replace(campaign, materialized=True, version=campaign.version + 1), campaign
            ):
                self._finish_if_done(campaign_id)
                return

    def _page_of(
        self, campaign: Campaign, token: str | None
    ) -> tuple[list[tuple[str, Mapping[str, str]]], str | None]:
        """One page of the audience as (normalized address, template values)."""
        if isinstance(campaign.audience, ListAudience):
            page = self.lists.members(campaign.audience.list_id, CHUNK, token)
            return [(m.email, {**m.variables, "email": m.email}) for m in page.items], page.next_token
        members, next_token = self.audience_segments(campaign.audience, token, CHUNK)
        return list(members), next_token

    def requeue(self, campaign_id: str) -> None:
        """Resume: send jobs for every QUEUED recipient, stale claims back to the queue, and the
        audience's next page if it was not all in the ledger yet."""
        campaign = self.campaigns.get(campaign_id)
        if campaign is None or campaign.status is not CampaignStatus.SENDING:
            return
        self._reclaim_stale(campaign_id)
        batch = [
            d.recipient
            for d in every(lambda token: self.deliveries.by_stage(campaign_id, Stage.QUEUED, 1000, token))
        ]
        if batch:
            self.queue.send(send_jobs(campaign_id, batch))
        if not campaign.materialized:
            self._continue_materializing(campaign_id)
        self._finish_if_done(campaign_id)

    def _continue_materializing(self, campaign_id: str) -> None:
        """A job for the last page counted (it enqueues what that page's run may not have, then goes
        on with the next page), or for the first page if none was."""
        chunk, token, token_before = 0, None, None
        while (marker := self.campaigns.chunk(campaign_id, chunk)) is not None:
            token_before, token = token, marker.next_token
            if token is None:
                break
            chunk += 1
        if chunk == 0 or self.campaigns.chunk(campaign_id, chunk) is not None:
            self.queue.send([materialize_job(campaign_id, chunk, token_before)])
        else:
            self.queue.send([materialize_job(campaign_id, chunk - 1, token_before)])

    def _reclaim_stale(self, campaign_id: str) -> int:
        now = self.clock()
        reclaimed = 0
        for delivery in every(
            lambda token: self.deliveries.by_stage(campaign_id, Stage.SENDING, 1000, token)
        ):
            if self._change(delivery, lambda d: ledger.reclaim(d, now)):
                reclaimed += 1
        return reclaimed

    # --- sending ----------------------------------------------------------------------------------
    def send_batch(self, campaign_id: str, recipients: Sequence[str]) -> None:
        """Claim, render, send and mark each recipient. Raises (so that the job comes back) when SES
        throttled for longer than the backoff or is unreachable; claims of unsent recipients are
        given back first, so nothing is lost and nothing is sent twice."""
        campaign = self.campaigns.get(campaign_id)
        if campaign is None:
            return
        now = self.clock()
        if campaign.status is CampaignStatus.SENDING and campaign.expired(now):
            self._move_quietly(campaign, CampaignStatus.EXPIRED, finished_at=now)
            return
        if campaign.status is not CampaignStatus.SENDING:
            return  # paused, cancelled or expired: the recipients stay QUEUED for a resume
        template = self.templates.get(campaign.template_id)
        queued = [d for d in self.deliveries.get_many(campaign_id, recipients) if d.stage is Stage.QUEUED]
        suppressed = self.suppressions.suppressed([d.recipient for d in queued])
        pacer = self._pacer()
        to_send = []
        for delivery in queued:
            if delivery.recipient in suppressed:
                self._skip(delivery, Stage.SUPPRESSED, "suppressed")
            else:
                to_send.append(delivery)
        stop = threading.Event()  # the quota is spent, or the campaign was paused meanwhile
        started = itertools.count(1)

        def one(delivery: Delivery) -> None:
            if stop.is_set():
                return
            if next(started) % 10 == 0 and not self._still_sending(campaign_id):
                stop.set()  # paused meanwhile: the rest stay QUEUED
                return
            try:
                if not self._send_one(campaign, template, delivery, pacer):
                    stop.set()  # the daily quota is spent: the campaign paused itself
            except BaseException:
                stop.set()  # SES throttled too long, or is down: the job comes back for the rest
                raise

        # Several recipients in flight at once (the pacer spaces the SES calls), so the ledger's
        # round trips overlap instead of adding up.
        failure: BaseException | None = None
        for future in [self._send_pool().submit(one, d) for d in to_send]:
            try:
                future.result()
            except BaseException as exc:  # the first failure is raised once the others are done
                stop.set()
                failure = failure or exc
        if failure is not None:
            raise failure
        if not stop.is_set():
            self._finish_if_done(campaign_id)

    def _send_pool(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.send_threads, thread_name_prefix="campaign-send")
        return self._pool

    def _send_one(self, campaign: Campaign, template: Any, delivery: Delivery, pacer: Pacer) -> bool:
        """Claim, render, send, mark one recipient; False when the daily quota stops the campaign."""
        token = uuid.uuid4().hex
        claimed = self._change(delivery, lambda d: ledger.claim(d, token, self.clock()))
        if claimed is None:
            return True  # another sender has it (a duplicate job), or it is done
        try:
            message = self._message(campaign, template, claimed)
        except (BadUserInput, ValueError) as bad:
            self._skip(claimed, Stage.FAILED, getattr(bad, "error_type", "RenderFailed"))
            return True
        try:
            message_id = send_with_backoff(lambda: self.mailer.send(message), pacer)
        except SendRejected as rejected:
            self._skip(claimed, Stage.FAILED, rejected.reason)
            return True
        except QuotaExhausted:
            self._change(claimed, lambda d: ledger.release(d, token, self.clock()))
            self._pause_for(campaign.id, PauseReason.DAILY_QUOTA)
            return False
        except SendThrottled:  # for longer than the backoff: certainly not sent, the job comes back
            self._change(claimed, lambda d: ledger.release(d, token, self.clock()))
            raise
        # Anything else raised (a timeout, a connection reset) may have come after SES took the
        # message, so the claim stays: SES's Send event marks it SENT if it went, the stale-claim
        # sweep gives it back to the queue if nothing did (domain.deliveries), and the job comes back.
        # Sent: from here to the mark is the window domain.deliveries describes.
        self.metrics.count("EmailsSent")  # SES took it (a repeated job's claim fails before the send)
        self._change(claimed, lambda d: ledger.mark_sent(d, token, message_id, self.clock()))
        return True

    def _skip(self, delivery: Delivery, stage: Stage, reason: str) -> None:
        self._change(delivery, lambda d: ledger.skip(d, stage, reason, self.clock()))

    def _message(self, campaign: Campaign, template: Any, delivery: Delivery) -> OutgoingEmail:
        if template is None:
            raise ValueError("template missing")
        link = self.sending.unsubscribe_link(campaign.id, delivery.recipient)
        rendered = email_templates.render(
            template, {**delivery.variables, "email": delivery.email, "unsubscribe_url": link}
        )
        return OutgoingEmail(
            to=delivery.email,
            sender=self.sending.sender,
            subject=rendered.subject,
            html=rendered.html or "",
            text=rendered.text or "",
            headers=unsubscribe_headers(link),
            tags={"campaign": campaign.id, "recipient": delivery.recipient},
            configuration_set=self.sending.configuration_set,
        )

    def _pacer(self) -> Pacer:
        """Paced to the account's send rate as SES reports it (never a hard-coded rate)."""
        if self.pacer is None:
            quota = self.mailer.send_quota()
            self.pacer = Pacer(max(quota.max_send_rate, 0.1))
        return self.pacer

    def _still_sending(self, campaign_id: str) -> bool:
        campaign = self.campaigns.get(campaign_id)
        return campaign is not None and campaign.status is CampaignStatus.SENDING

    def _finish_if_done(self, campaign_id: str) -> None:
        campaign = self.campaigns.get(campaign_id)
        if campaign is None or campaign.status is not CampaignStatus.SENDING or not campaign.materialized:
            return
        for stage in (Stage.QUEUED, Stage.SENDING):
            if self.deliveries.by_stage(campaign_id, stage, 1, None).items:
                return
        self._move_quietly(campaign, CampaignStatus.SENT, finished_at=self.clock())

    # --- SES events and unsubscribes --------------------------------------------------------------
    def record_event(self, event: DeliveryEvent) -> bool:
        """Apply one SES event to its recipient (once, in any order); then the guardrails."""
        delivery = self.deliveries.delivery(event.campaign_id, event.recipient)
        if delivery is None:
            log.info(
                "event for an unknown recipient",
                extra={"campaign": event.campaign_id, "kind": event.kind.value},
            )
            return False
        changed = self._change(
            delivery, lambda d: ledger.apply_event(d, event.kind, event.message_id, event.at)
        )
        if changed is None:
            return False  # a repeat (SNS delivers at least once), or nothing to change
        counted = _EVENT_METRICS.get(event.kind)
        if counted is not None:  # the ledger took it just now: counted once per recipient
            self.metrics.count(counted)
        self._suppress_after(event, delivery.recipient)
        if event.kind in (DeliveryEventKind.BOUNCE, DeliveryEventKind.COMPLAINT):
            pause = guardrail(self.campaigns.stats(event.campaign_id))
            if pause is not None:
                self._pause_for(event.campaign_id, pause)
        return True

    def _suppress_after(self, event: DeliveryEvent, recipient: str) -> None:
        """Hard bounces and complaints suppress the address at once; transient bounces once they
        reach the limit. Applied once per recipient and campaign (after the ledger took the event)."""
        reason = suppression.immediate_reason(event)
        if reason is None and suppression.counts_as_transient(event):
            reason = suppression.reason_after_transient(
                self.suppressions.count_transient(recipient, event.at)
            )
        if reason is not None and self.suppressions.suppress(recipient, reason, event.at):
            log.info("address suppressed", extra={"campaign": event.campaign_id, "reason": reason.value})

    def unsubscribed(self, campaign_id: str, recipient: str, at: datetime) -> None:
        delivery = self.deliveries.delivery(campaign_id, recipient)
        if delivery is not None:
            self._change(delivery, lambda d: ledger.unsubscribe(d, at))

    def tick(self) -> dict[str, int]:
        """The scheduler (every minute): start SCHEDULED campaigns that are due, expire those past
        expiresAt, give stale claims of SENDING campaigns back to the queue."""
        now = self.clock()
        started = expired = reclaimed = 0
        for campaign in self.campaigns.due(now):
            if campaign.expired(now):
                self._move_quietly(campaign, CampaignStatus.EXPIRED, finished_at=now)
                expired += 1
            elif self._move_quietly(campaign, CampaignStatus.SENDING) is not None:
                self.queue.send([materialize_job(campaign.id, 0, None)])
                started += 1
        sending = every(lambda token: self.campaigns.campaigns(CampaignStatus.SENDING, 100, token))
        for campaign in sending:
            if campaign.expired(now):
                self._move_quietly(campaign, CampaignStatus.EXPIRED, finished_at=now)
                expired += 1
                continue
            count = self._reclaim_stale(campaign.id)
            if count:
                reclaimed += count
                self.queue.send([requeue_job(campaign.id)])
            else:
                self._finish_if_done(campaign.id)
        return {"started": started, "expired": expired, "reclaimed": reclaimed}

    # --- helpers ----------------------------------------------------------------------------------
    def _audience_variables(self, audience: Audience) -> frozenset[str]:
        if isinstance(audience, SegmentAudience):
            return SEGMENT_VARIABLES
        found = self.lists.get(audience.list_id)
        return frozenset(found.variables if found is not None else ()) | ALWAYS_AVAILABLE

    def _change(self, delivery: Delivery, step: Callable[[Delivery], Change | None]) -> Delivery | None:
        """Apply ``step`` to the recipient with a conditional write, reading again when someone wrote
        it in between; the new state, or None when the step does not apply (any more)."""
        current: Delivery | None = delivery
        for _ in range(APPLY_ATTEMPTS):
            if current is None:
                return None
            change = step(current)
            if change is None:
                return None
            if self.deliveries.apply(change, current):
                return change.delivery
            current = self.deliveries.delivery(current.campaign_id, current.recipient)
        raise Conflict("The recipient kept changing; try again")

    def _pause_for(self, campaign_id: str, reason: PauseReason) -> None:
        campaign = self.campaigns.get(campaign_id)
        if (
            campaign is not None
            and campaign.status is CampaignStatus.SENDING
            and self._move_quietly(campaign, CampaignStatus.PAUSED, pause_reason=reason) is not None
        ):
            log.warning("campaign paused itself", extra={"campaign": campaign_id, "reason": reason.value})

    def _existing(self, campaign_id: str) -> Campaign:
        campaign = self.campaigns.get(campaign_id)
        if campaign is None:
            raise NotFound(f"Campaign {campaign_id} not found")
        return campaign

    def _move(self, campaign: Campaign, status: CampaignStatus, now: datetime, **fields: Any) -> Campaign:
        """A person's move. The workers write the campaign too (a page of the audience done): if one
        did since it was read, read it again and move it if its status still allows."""
        for _ in range(3):
            moved = replace(campaign, status=status, updated_at=now, version=campaign.version + 1, **fields)
            if self.campaigns.save(moved, campaign):
                return moved
            fresh = self.campaigns.get(campaign.id)
            if fresh is None or fresh.status is not campaign.status:
                break
            campaign = fresh
        raise Conflict("The campaign changed meanwhile: read it again and retry")

    def _move_quietly(self, campaign: Campaign, status: CampaignStatus, **fields: Any) -> Campaign | None:
        """A move the system makes (not a user): None if the campaign changed meanwhile."""
        if status is CampaignStatus.EXPIRED and campaign.status not in EXPIRABLE:
            return None
        moved = replace(
            campaign, status=status, updated_at=self.clock(), version=campaign.version + 1, **fields
        )
        return moved if self.campaigns.save(moved, campaign) else None

    def _allowed(self, identity: Identity) -> None:
        if not may_run_campaigns(identity):
            raise Forbidden("Only blood service staff run campaigns")


def every(read: Callable[[str | None], Page[T]]) -> Iterator[T]:
    """Every item of a paged list: ``read(next_token)`` page after page, from the first."""
    token: str | None = None
    while True:
        page = read(token)
        yield from page.items
        token = page.next_token
        if token is None:
            return


# --- jobs -------------------------------------------------------------------------------------------
def materialize_job(campaign_id: str, chunk: int, token: str | None) -> dict[str, object]:
    return {"kind": "materialize", "campaign": campaign_id, "chunk": chunk, "token": token}


def requeue_job(campaign_id: str) -> dict[str, object]:
    return {"kind": "requeue", "campaign": campaign_id}


def send_jobs(campaign_id: str, recipients: Iterable[str]) -> list[dict[str, object]]:
    recipients = list(recipients)
    return [
        {"kind": "send", "campaign": campaign_id, "recipients": recipients[i : i + SEND_BATCH]}
        for i in range(0, len(recipients), SEND_BATCH)
    ]
