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


# --- campaigns ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ListAudience:
    """The members of an uploaded recipient list."""

    list_id: str


@dataclass(frozen=True, slots=True)
class SegmentAudience:
    """Donors who agreed to e-mail appeals: of these groups (empty: any), of a site (None: any),
    and, if asked, only those who may give now."""

    blood_groups: frozenset[str] = frozenset()  # BloodGroup values
    site_id: str | None = None
    eligible_now: bool = False


Audience = ListAudience | SegmentAudience
# What every send provides, whatever the audience: the address and the recipient's own link.
ALWAYS_AVAILABLE = frozenset({"email", "unsubscribe_url"})
SEGMENT_VARIABLES = frozenset({"first_name", "last_name", "site_name"}) | ALWAYS_AVAILABLE


class PauseReason(Enum):
    BY_USER = "BY_USER"
    BOUNCE_RATE = "BOUNCE_RATE"
    COMPLAINT_RATE = "COMPLAINT_RATE"
    DAILY_QUOTA = "DAILY_QUOTA"


@dataclass(frozen=True, slots=True)
class Campaign:
    id: str
    name: str
    template_id: str
    audience: Audience
    status: CampaignStatus
    created_by: str
    created_at: datetime
    updated_at: datetime
    send_at: datetime | None = None
    expires_at: datetime | None = None
    launched_at: datetime | None = None
    finished_at: datetime | None = None
    pause_reason: PauseReason | None = None
    materialized: bool = False  # every recipient of the audience is in the ledger
    version: int = 1

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and now >= self.expires_at


@dataclass(frozen=True, slots=True)
class Stats:
    """Counts of the campaign's recipients: ``queued`` not yet sent (nor skipped); the others reached
    that stage (a recipient who opened was also sent and delivered)."""

    recipients: int = 0
    queued: int = 0
    sent: int = 0
    delivered: int = 0
    bounced: int = 0
    complained: int = 0
    opened: int = 0
    clicked: int = 0
    unsubscribed: int = 0
    suppressed: int = 0
    failed: int = 0


# Guardrails (SES reviews an account above 5 % bounces or 0.1 % complaints): a campaign pauses itself
# once it has sent enough to judge and crosses either rate; a person looks and resumes it.
MIN_SENT_TO_JUDGE = 100
MAX_BOUNCE_RATE = 0.05
MAX_COMPLAINT_RATE = 0.001


def guardrail(stats: Stats) -> PauseReason | None:
    if stats.sent < MIN_SENT_TO_JUDGE:
        return None
    if stats.complained / stats.sent > MAX_COMPLAINT_RATE:
        return PauseReason.COMPLAINT_RATE
    if stats.bounced / stats.sent > MAX_BOUNCE_RATE:
        return PauseReason.BOUNCE_RATE
    return None


# Which moves each action may make: (from statuses) -> to.
LAUNCHABLE = frozenset({CampaignStatus.DRAFT})
RESUMABLE = frozenset({CampaignStatus.PAUSED})
PAUSABLE = frozenset({CampaignStatus.SCHEDULED, CampaignStatus.SENDING})
CANCELLABLE = frozenset(
    {CampaignStatus.DRAFT, CampaignStatus.SCHEDULED, CampaignStatus.SENDING, CampaignStatus.PAUSED}
)
EXPIRABLE = frozenset({CampaignStatus.SCHEDULED, CampaignStatus.SENDING, CampaignStatus.PAUSED})
