"""What happens to one recipient of one campaign: the send ledger's states and the stats they move.

A recipient is QUEUED when the campaign is launched. The sender *claims* it (SENDING, with a claim
token of its own) before calling SES, and marks it SENT after, both with conditional writes, so that
a duplicate SQS delivery or a second sender finds it claimed or sent and leaves it alone. Then SES's
events (Send, Delivery, Open, Click, Bounce, Complaint, ...) move it on. Events arrive late, twice
or out of order (a Delivery before the sender's own mark, an Open before the Delivery): each applies
once (``seen``), and the status shown is the furthest stage reached, so order does not matter.

The window between "SES accepted it" and "marked SENT": a sender that dies there leaves the
recipient SENDING. SES's own Send event (tagged with the campaign and the recipient) still marks it
SENT. A claim older than ``STALE_CLAIM`` that nothing marked is given back to the queue
(``reclaim``): that recipient is sent to again, once. So a recipient is mailed twice only if the
sender died inside that window *and* SES's Send event was lost; it is never skipped.

``advance`` is the one pure function every writer uses: it returns the new state and the counter
deltas, or None when the event changes nothing (a repeat). The stores write both in one conditional
transaction on the state's version.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import Enum

from bloodbank.domain.campaigns import DeliveryEventKind, DeliveryStatus

STALE_CLAIM = timedelta(minutes=15)  # longer than any send, and than SES takes to report a Send


class Stage(Enum):
    """Where a recipient is in the ledger: DeliveryStatus plus SENDING (claimed, shown as QUEUED)."""

    QUEUED = "QUEUED"
    SENDING = "SENDING"
    SENT = "SENT"
    DELIVERED = "DELIVERED"
    OPENED = "OPENED"
    CLICKED = "CLICKED"
    BOUNCED = "BOUNCED"
    UNSUBSCRIBED = "UNSUBSCRIBED"
    COMPLAINED = "COMPLAINED"
    SUPPRESSED = "SUPPRESSED"
    FAILED = "FAILED"

    @property
    def status(self) -> DeliveryStatus:
        return DeliveryStatus.QUEUED if self is Stage.SENDING else DeliveryStatus(self.value)


# The status shown is the furthest of the stages reached; a bounce, an unsubscribe and a complaint
# outrank engagement (a complaint after an open is what matters about that recipient).
_RANK = {
    Stage.QUEUED: 0,
    Stage.SENDING: 1,
    Stage.SENT: 2,
    Stage.DELIVERED: 3,
    Stage.OPENED: 4,
    Stage.CLICKED: 5,
    Stage.BOUNCED: 6,
    Stage.UNSUBSCRIBED: 7,
    Stage.COMPLAINED: 8,
    Stage.SUPPRESSED: 9,
    Stage.FAILED: 9,
}
UNSENT = frozenset({Stage.QUEUED, Stage.SENDING})
# Counters of the campaign's stats: each counts recipients that reached the stage (once each).
COUNTED = frozenset(
    {
        Stage.SENT,
        Stage.DELIVERED,
        Stage.OPENED,
        Stage.CLICKED,
        Stage.BOUNCED,
        Stage.COMPLAINED,
        Stage.UNSUBSCRIBED,
        Stage.SUPPRESSED,
        Stage.FAILED,
    }
)
_FROM_EVENT = {
    DeliveryEventKind.SEND: Stage.SENT,
    DeliveryEventKind.DELIVERY: Stage.DELIVERED,
    DeliveryEventKind.OPEN: Stage.OPENED,
    DeliveryEventKind.CLICK: Stage.CLICKED,
    DeliveryEventKind.BOUNCE: Stage.BOUNCED,
    DeliveryEventKind.COMPLAINT: Stage.COMPLAINED,
    DeliveryEventKind.REJECT: Stage.FAILED,
    DeliveryEventKind.RENDERING_FAILURE: Stage.FAILED,
    DeliveryEventKind.SUBSCRIPTION: Stage.UNSUBSCRIBED,
}


def stage_of_event(kind: DeliveryEventKind) -> Stage | None:
    """The stage an SES event reaches; None for those that move nothing (DeliveryDelay)."""
    return _FROM_EVENT.get(kind)


@dataclass(frozen=True, slots=True)
class Delivery:
    """A recipient's ledger entry, as stored (``version`` guards every write)."""

    campaign_id: str
    recipient: str  # address_key
    email: str
    variables: dict[str, str] = field(default_factory=dict)
    stage: Stage = Stage.QUEUED
    seen: frozenset[Stage] = frozenset()  # the counted stages reached, each counted once
    claim: str | None = None  # the sender's claim token while SENDING
    claimed_at: datetime | None = None
    message_id: str | None = None
    sent_at: datetime | None = None
    updated_at: datetime | None = None
    reason: str | None = None  # why FAILED or SUPPRESSED (no address, no SES text)
    version: int = 0

    @property
    def status(self) -> DeliveryStatus:
        return self.stage.status


Deltas = dict[Stage, int]  # counter -> change; Stage.QUEUED counts those not yet sent or skipped


@dataclass(frozen=True, slots=True)
class Change:
    delivery: Delivery
    deltas: Deltas


# What reaching a stage implies happened before it (an Open means it was delivered, and sent).
_IMPLIES = {
    Stage.DELIVERED: (Stage.SENT,),
    Stage.OPENED: (Stage.SENT, Stage.DELIVERED),
    Stage.CLICKED: (Stage.SENT, Stage.DELIVERED, Stage.OPENED),
    Stage.BOUNCED: (Stage.SENT,),
    Stage.COMPLAINED: (Stage.SENT, Stage.DELIVERED),
    Stage.UNSUBSCRIBED: (Stage.SENT, Stage.DELIVERED),
}


def _reach(delivery: Delivery, stage: Stage, at: datetime, **fields: object) -> Change | None:
    """``stage`` reached (once), with what it implies: the furthest stage shown, each newly reached
    counter +1, and the queue -1 when the recipient leaves it."""
    if stage in delivery.seen:
        return None
    reached = {stage, *_IMPLIES.get(stage, ())} - delivery.seen
    deltas: Deltas = dict.fromkeys(reached, 1)
    if delivery.stage in UNSENT:
        deltas[Stage.QUEUED] = -1
    shown = stage if delivery.stage in UNSENT or _RANK[stage] > _RANK[delivery.stage] else delivery.stage
    changed = replace(
        delivery,
        stage=shown,
        seen=delivery.seen | reached,
        claim=None,
        updated_at=at,
        version=delivery.version + 1,
        **fields,  # type: ignore[arg-type]
    )
    return Change(changed, deltas)


def claim(delivery: Delivery, token: str, at: datetime) -> Change | None:
    """The sender takes a QUEUED recipient (None: someone else has it, or it is done)."""
    if delivery.stage is not Stage.QUEUED:
        return None
    return Change(replace(delivery, stage=Stage.SENDING, claim=token, claimed_at=at, updated_at=at,
                          version=delivery.version + 1), {})  # fmt: skip


def release(delivery: Delivery, token: str, at: datetime) -> Change | None:
    """The sender gives its claim back without having sent (paused, throttled, quota): QUEUED again."""
    if delivery.stage is not Stage.SENDING or delivery.claim != token:
        return None
    return Change(replace(delivery, stage=Stage.QUEUED, claim=None, claimed_at=None, updated_at=at,
                          version=delivery.version + 1), {})  # fmt: skip


def mark_sent(delivery: Delivery, token: str, message_id: str, at: datetime) -> Change | None:
    """SES took it. Counted once, even if SES's Send event got here first (then only the message id
    is recorded). None if the claim is no longer this sender's and it is not SENT either."""
    if delivery.stage is Stage.SENDING and delivery.claim == token:
        return _reach(delivery, Stage.SENT, at, message_id=message_id, sent_at=at)
    if Stage.SENT in delivery.seen and delivery.message_id is None:
        return Change(replace(delivery, message_id=message_id, version=delivery.version + 1), {})
    return None


def skip(delivery: Delivery, stage: Stage, reason: str, at: datetime) -> Change | None:
    """Never sent: SUPPRESSED (the address is suppressed) or FAILED (SES rejected it, or it would
    not render). Only from QUEUED or this run's SENDING."""
    if delivery.stage not in UNSENT:
        return None
    return _reach(delivery, stage, at, reason=reason)


def apply_event(delivery: Delivery, kind: DeliveryEventKind, message_id: str, at: datetime) -> Change | None:
    """An SES event: each stage once, in any order; None when it changes nothing."""
    stage = stage_of_event(kind)
    if stage is None:
        return None
    if stage is Stage.FAILED and delivery.stage not in UNSENT:
        return None  # a Reject is about a send that never happened; anything later outranks it
    if delivery.message_id is None and stage is not Stage.FAILED:
        return _reach(delivery, stage, at, message_id=message_id, sent_at=delivery.sent_at or at)
    return _reach(delivery, stage, at)


def unsubscribe(delivery: Delivery, at: datetime) -> Change | None:
    return _reach(delivery, Stage.UNSUBSCRIBED, at)


def reclaim(delivery: Delivery, now: datetime) -> Change | None:
    """A claim nothing marked for ``STALE_CLAIM`` (its sender died): back to the queue, once."""
    if delivery.stage is not Stage.SENDING or delivery.claimed_at is None:
        return None
    if now - delivery.claimed_at < STALE_CLAIM:
        return None
    return Change(replace(delivery, stage=Stage.QUEUED, claim=None, claimed_at=None, updated_at=now,
                          version=delivery.version + 1), {})  # fmt: skip
