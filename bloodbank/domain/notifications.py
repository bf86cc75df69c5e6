"""Donor notifications: what a donor agreed to receive, on which channels, and the messages themselves."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import Enum, StrEnum


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


# --- composing messages -------------------------------------------------------------------------
class Fact(StrEnum):
    """What a trigger may tell ``compose`` (all optional, all plain text). Other keys are ignored,
    so a hospital's or a patient's name passed by mistake never reaches a donor."""

    SITE = "site"  # the donation site's name
    DONATION_TYPE = "donation_type"  # its label: "whole blood", "platelets"
    ELIGIBLE_ON = "eligible_on"  # when they may give again, as a person reads it: "22 November 2026"
    COMPONENT = "component"  # what was issued: "red cells" (never where to, never to whom)
    DONATED_ON = "donated_on"  # when they gave the issued unit, as a person reads it


class ClaimLost(Exception):
    """``NotificationLedger.complete`` found no claim to complete (it was released, or never made)."""


SMS_MAX_CHARS = 160  # one SMS segment of the GSM-7 default alphabet
SMS_OPT_OUT = "Reply STOP to opt out."
EMAIL_OPT_OUT = (
    "You receive this because you asked us for updates. To stop them, or to choose how we contact "
    "you, change your notification settings in the donor app."
)
SIGNATURE = "With thanks,\nYour blood service"
MAX_FACT_CHARS = 60
MAX_SMS_NAME_CHARS = 20
MAX_EMAIL_NAME_CHARS = 60
# The GSM 03.38 default alphabet without its escape, line feed and carriage return: every one of
# these is one septet, so a text made only of them is sent as GSM-7 and its length is its size.
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇØøÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡"
    "ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Letters that do not decompose to a GSM-7 letter plus accents, and typographic punctuation.
_GSM7_SPELLING = {
    "Ł": "L", "ł": "l", "Đ": "D", "đ": "d", "\u0131": "i", "Œ": "OE", "œ": "oe", "Þ": "Th", "þ": "th",
    "ð": "d", "ĸ": "k", "ŀ": "l", "Ŀ": "L", "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u02bc": "'",
    "\u201c": '"', "\u201d": '"', "\u2010": "-", "\u2011": "-", "\u2013": "-", "\u2014": "-",
}  # fmt: skip
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_REFERENCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:#-]{0,127}")


def plain(value: str, limit: int) -> str | None:
    """One line of text a person can read: NFC, no control characters, single spaces; None if
    empty or longer than ``limit`` (a value that long is not what a short message should carry)."""
    cleaned = " ".join(
        "".join(" " if unicodedata.category(ch).startswith("C") else ch for ch in value).split()
    )
    cleaned = unicodedata.normalize("NFC", cleaned)
    return cleaned if cleaned and len(cleaned) <= limit else None


def gsm7(value: str, limit: int) -> str | None:
    """``plain(value)`` spelled with the GSM-7 default alphabet only ('Zoë' -> 'Zoe'), or None if
    some letter has no such spelling (a name in another script is left out, not mangled)."""
    cleaned = plain(value, limit * 2)
    if cleaned is None:
        return None
    out: list[str] = []
    for ch in cleaned:
        if ch in GSM7_BASIC:
            out.append(ch)
            continue
        spelled = _GSM7_SPELLING.get(ch) or "".join(
            c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c)
        )
        if not spelled or any(c not in GSM7_BASIC for c in spelled):
            return None
        out.append(spelled)
    text = "".join(out)
    return text if len(text) <= limit else None


def is_gsm7(text: str) -> bool:
    return all(ch in GSM7_BASIC for ch in text)


def message_key(kind: NotificationKind, reference: str, channel: Channel) -> str:
    """Identifies one message for idempotency: the same notification on the same channel."""
    return f"{kind.value}#{reference}#{channel.value}"


@dataclass(frozen=True, slots=True)
class _Words:
    """The donor's name and the facts, already cleaned for one channel (None: leave it out)."""

    name: str | None
    facts: Mapping[str, str]

    def get(self, fact: Fact, template: str = "{}") -> str:
        value = self.facts.get(fact)
        return template.format(value) if value else ""

    def without(self, fact: Fact) -> _Words:
        return _Words(self.name, {k: v for k, v in self.facts.items() if k != fact})


@dataclass(frozen=True, slots=True)
class _Template:
    subject: str  # ASCII, no name in it: SNS requires ASCII subjects, and subjects show in lists
    sms: Callable[[_Words], str]
    email: Callable[[_Words], str]
    # Facts to leave out, in this order, until the SMS fits in one segment.
    sms_drop_order: tuple[Fact, ...]


def _greeting(w: _Words) -> str:
    return f"Dear {w.name}," if w.name else "Hello,"


def _thanks_sms(w: _Words) -> str:
    opening = f"Thank you, {w.name}!" if w.name else "Thank you!"
    donation = f"Your{w.get(Fact.DONATION_TYPE, ' {}')} donation{w.get(Fact.SITE, ' at {}')}"
    return f"{opening} {donation} can help save lives. {SMS_OPT_OUT}"


def _thanks_email(w: _Words) -> str:
    what = w.get(Fact.DONATION_TYPE, " of {}")
    where = w.get(Fact.SITE, " at {}")
    return (
        f"{_greeting(w)}\n\nThank you for your donation{what}{where}. Every donation can help save "
        "lives, and we are grateful for the time you gave.\n\n"
        f"{SIGNATURE}\n\n{EMAIL_OPT_OUT}"
    )


def _eligible_sms(w: _Words) -> str:
    opening = f"Good news, {w.name}:" if w.name else "Good news:"
    what = w.get(Fact.DONATION_TYPE) or "blood"
    when = w.get(Fact.ELIGIBLE_ON, " from {}")
    where = w.get(Fact.SITE, " at {}")
    return (
        f"{opening} you can give {what} again{when}. We would love to see you{where}. "
        f"Book in the donor app. {SMS_OPT_OUT}"
    )


def _eligible_email(w: _Words) -> str:
    what = w.get(Fact.DONATION_TYPE) or "blood"
    when = w.get(Fact.ELIGIBLE_ON, " from {}")
    where = w.get(Fact.SITE, " at {}")
    return (
        f"{_greeting(w)}\n\nGood news: you can give {what} again{when}. We would love to see you"
        f"{where}. You can book an appointment at a time that suits you in the donor app.\n\n"
        f"{SIGNATURE}\n\n{EMAIL_OPT_OUT}"
    )


def _issued_sms(w: _Words) -> str:
    opening = f"Good news, {w.name}:" if w.name else "Good news:"
    what = w.get(Fact.COMPONENT) or "blood"
    when = w.get(Fact.DONATED_ON, " on {}")
    return (
        f"{opening} we have sent {what} from your donation{when} to a hospital, to help a patient. "
        f"Thank you! {SMS_OPT_OUT}"
    )


def _issued_email(w: _Words) -> str:
    what = w.get(Fact.COMPONENT) or "blood"
    when = w.get(Fact.DONATED_ON, " on {}")
    return (
        f"{_greeting(w)}\n\nWe wanted you to know: we have sent {what} from the donation you gave"
        f"{when} to a hospital, to help a patient there.\n\n"
        "Thank you for making that possible.\n\n"
        f"{SIGNATURE}\n\n{EMAIL_OPT_OUT}"
    )


def _appeal_sms(w: _Words) -> str:
    opening = f"{w.name}, we" if w.name else "We"
    what = w.get(Fact.DONATION_TYPE, " of {}")
    where = w.get(Fact.SITE, " at {}")
    return (
        f"{opening} urgently need donations{what}{where}. If you are well, please book in the "
        f"donor app. {SMS_OPT_OUT}"
    )


def _appeal_email(w: _Words) -> str:
    what = w.get(Fact.DONATION_TYPE, " of {}")
    where = w.get(Fact.SITE, " at {}")
    return (
        f"{_greeting(w)}\n\nStocks are running low and we urgently need donations{what}{where}. "
        "If you are feeling well, please book an appointment in the donor app.\n\n"
        f"{SIGNATURE}\n\n{EMAIL_OPT_OUT}"
    )


_TEMPLATES: dict[NotificationKind, _Template] = {
    NotificationKind.DONATION_THANKS: _Template(
        "Thank you for your donation", _thanks_sms, _thanks_email, (Fact.SITE, Fact.DONATION_TYPE)
    ),
    NotificationKind.ELIGIBLE_AGAIN: _Template(
        "You can donate again",
        _eligible_sms,
        _eligible_email,
        (Fact.SITE, Fact.ELIGIBLE_ON, Fact.DONATION_TYPE),
    ),
    NotificationKind.BLOOD_ISSUED: _Template(
        "Your donation has reached a hospital",
        _issued_sms,
        _issued_email,
        (Fact.DONATED_ON, Fact.COMPONENT),
    ),
    NotificationKind.APPEAL: _Template(
        "We need donors", _appeal_sms, _appeal_email, (Fact.SITE, Fact.DONATION_TYPE)
    ),
}


def _words(contact: Contact, facts: Mapping[str, str], channel: Channel) -> _Words:
    if channel is Channel.SMS:
        name = gsm7(contact.first_name, MAX_SMS_NAME_CHARS)
        cleaned = {f.value: gsm7(facts.get(f.value) or "", MAX_FACT_CHARS) for f in Fact}
    else:
        name = plain(contact.first_name, MAX_EMAIL_NAME_CHARS)
        cleaned = {f.value: plain(facts.get(f.value) or "", MAX_FACT_CHARS) for f in Fact}
    return _Words(name, {k: v for k, v in cleaned.items() if v})


def sms_text(template: _Template, words: _Words) -> str:
    """The fullest text that fits in one GSM-7 segment: facts are left out one by one, then the name."""
    for fact in (None, *template.sms_drop_order):
        if fact is not None:
            words = words.without(fact)
        text = template.sms(words)
        if len(text) <= SMS_MAX_CHARS:
            return text
    return template.sms(_Words(None, {}))


def _address(contact: Contact, channel: Channel) -> str | None:
    if channel is Channel.SMS:
        phone = (contact.phone or "").strip()
        return phone if _E164.fullmatch(phone) else None
    email = contact.email.strip()
    return email if "@" in email and not any(ch.isspace() for ch in email) else None


def compose(
    kind: NotificationKind,
    contact: Contact,
    preferences: NotificationPreferences,
    reference: str,
    facts: Mapping[str, str],
) -> list[OutgoingMessage]:
    """The messages to send for one notification: none without consent or for a kind the donor
    turned off; otherwise one per chosen channel the donor can be reached on (SMS needs an E.164
    phone number), SMS first. ``reference`` names what the notification is about (a DIN, a unit id)
    and makes each message's idempotency key. Texts carry no medical details and no hospital or
    patient; SMS texts are GSM-7 and fit one segment. Both carry an opt-out hint."""
    if not _REFERENCE.fullmatch(reference):
        raise ValueError("reference must be 1-128 letters, digits or '_.:#-'")
    if preferences.consented_at is None or kind not in preferences.kinds:
        return []
    template = _TEMPLATES[kind]
    messages: list[OutgoingMessage] = []
    for channel in Channel:
        if channel not in preferences.channels:
            continue
        to = _address(contact, channel)
        if to is None:
            continue
        words = _words(contact, facts, channel)
        text = sms_text(template, words) if channel is Channel.SMS else template.email(words)
        key = message_key(kind, reference, channel)
        messages.append(OutgoingMessage(contact.donor_id, key, kind, channel, to, template.subject, text))
    return messages
