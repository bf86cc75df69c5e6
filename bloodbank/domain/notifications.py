"""Donor notifications: what a donor agreed to receive, on which channels, and the messages themselves."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import Enum


class Channel(Enum):
    SMS = "SMS"
    EMAIL = "EMAIL"


class NotificationKind(Enum):
    DONATION_THANKS = "DONATION_THANKS"
    ELIGIBLE_AGAIN = "ELIGIBLE_AGAIN"
    BLOOD_ISSUED = "BLOOD_ISSUED"
    APPEAL = "APPEAL"


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """One message to one address. ``key`` identifies it for idempotency (same key, same message)."""

    donor_id: str
    key: str
    kind: NotificationKind
    channel: Channel
    to: str  # E.164 phone number for SMS, e-mail address for EMAIL
    subject: str
    text: str


@dataclass(frozen=True, slots=True)
class NotificationPreferences:
    """What a donor agreed to. Without consent nothing is sent, whatever the other settings say."""

    consented_at: datetime | None = None
    channels: frozenset[Channel] = frozenset()
    kinds: frozenset[NotificationKind] = frozenset(NotificationKind)


@dataclass(frozen=True, slots=True)
class Contact:
    """Where a donor can be reached (decrypted for the moment of sending, never stored with a message)."""

    donor_id: str
    first_name: str
    email: str
    phone: str | None
