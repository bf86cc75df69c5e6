"""Bulk e-mail campaigns: the shared vocabulary (statuses, addresses, delivery events).

Pure rules, no I/O. What a campaign is and how it moves (``Campaign``, ``CampaignStatus``), what
happens to each recipient (``DeliveryStatus``, ``advance``), and the events SES reports
(``DeliveryEvent``) are spelled here so that the sender, the event handler, the importer and the
API agree on them.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from enum import Enum


class CampaignStatus(Enum):
    DRAFT = "DRAFT"
    SCHEDULED = "SCHEDULED"  # launched, with a sendAt still ahead
    SENDING = "SENDING"
    PAUSED = "PAUSED"  # by a user, or by a guardrail (bounce or complaint rate, daily quota)
    SENT = "SENT"  # every recipient was attempted
    CANCELLED = "CANCELLED"
    EXPIRED = "EXPIRED"  # expiresAt passed before every recipient was sent to


class DeliveryStatus(Enum):
    """One recipient of one campaign. QUEUED until the sender claims it; SENT once SES took it."""

    QUEUED = "QUEUED"
    SENT = "SENT"
    DELIVERED = "DELIVERED"
    BOUNCED = "BOUNCED"
    COMPLAINED = "COMPLAINED"
    OPENED = "OPENED"
    CLICKED = "CLICKED"
    UNSUBSCRIBED = "UNSUBSCRIBED"
    SUPPRESSED = "SUPPRESSED"  # skipped: the address is suppressed or unsubscribed
    FAILED = "FAILED"  # SES rejected it (or rendering failed): never retried


def address_key(email: str) -> str:
    """The key of an address wherever one is stored (suppressions, list members, recipients): a
    SHA-256 of the normalized address, so keys hold no personal data and the same address always
    has the same key. ``email`` must already be normalized (``recipients.normalize``)."""
    return hashlib.sha256(email.encode()).hexdigest()


class SuppressionReason(Enum):
    HARD_BOUNCE = "HARD_BOUNCE"
    COMPLAINT = "COMPLAINT"
    TRANSIENT_BOUNCES = "TRANSIENT_BOUNCES"  # TRANSIENT_BOUNCE_LIMIT soft bounces in a row
    UNSUBSCRIBED = "UNSUBSCRIBED"


TRANSIENT_BOUNCE_LIMIT = 3


class DeliveryEventKind(Enum):
    """SES event types (event publishing through a configuration set)."""

    SEND = "Send"
    DELIVERY = "Delivery"
    BOUNCE = "Bounce"
    COMPLAINT = "Complaint"
    REJECT = "Reject"
    OPEN = "Open"
    CLICK = "Click"
    DELIVERY_DELAY = "DeliveryDelay"
    RENDERING_FAILURE = "Rendering Failure"
    SUBSCRIPTION = "Subscription"


class BounceType(Enum):
    PERMANENT = "Permanent"
    TRANSIENT = "Transient"
    UNDETERMINED = "Undetermined"


@dataclass(frozen=True, slots=True)
class DeliveryEvent:
    """One SES event about one message to one recipient of a campaign (from the message's tags)."""

    kind: DeliveryEventKind
    campaign_id: str
    recipient: str  # address_key of the recipient
    email: str  # the address SES reports (normalized), for suppression
    message_id: str  # SES's message id
    at: datetime
    bounce_type: BounceType | None = None  # Bounce only
