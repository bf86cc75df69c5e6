"""SES's reports about campaign messages, read into ``DeliveryEvent``s. Pure, no I/O.

Two shapes arrive through SNS, both read here:
- **event publishing** (the configuration set's SNS event destination): ``eventType`` is one of
  Send, Delivery, Bounce, Complaint, Reject, Open, Click, DeliveryDelay, Rendering Failure,
  Subscription; ``mail.tags`` holds the message's tags, each a list of strings.
- **feedback notifications** (an identity's notification topics; what moto sends for the mailbox
  simulator): ``notificationType`` is Bounce, Complaint or Delivery, and ``mail`` has no tags. Our
  tags then come from the ``X-Bloodbank-Tag-*`` headers the mailer writes, present when the identity
  includes headers in its notifications.

A message that is not about a campaign (no ``campaign`` and ``recipient`` tags; moto's simulator
samples, mail sent by something else) gives no events. A document that is not SES's shape raises
``ValueError``: the handler counts it and moves on (raising would make SNS retry it for nothing).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from email.utils import parseaddr
from typing import Any

from bloodbank.domain.campaigns import BounceType, DeliveryEvent, DeliveryEventKind
from bloodbank.domain.mail import TAG_CAMPAIGN, TAG_HEADER_PREFIX, TAG_RECIPIENT

# The member of the document that holds each event type's details.
_DETAIL = {
    DeliveryEventKind.SEND: "send",
    DeliveryEventKind.DELIVERY: "delivery",
    DeliveryEventKind.BOUNCE: "bounce",
    DeliveryEventKind.COMPLAINT: "complaint",
    DeliveryEventKind.REJECT: "reject",
    DeliveryEventKind.OPEN: "open",
    DeliveryEventKind.CLICK: "click",
    DeliveryEventKind.DELIVERY_DELAY: "deliveryDelay",
    DeliveryEventKind.RENDERING_FAILURE: "failure",
    DeliveryEventKind.SUBSCRIPTION: "subscription",
}
# Where the recipients an event is about are listed (the others are about every destination).
_RECIPIENTS = {
    DeliveryEventKind.BOUNCE: "bouncedRecipients",
    DeliveryEventKind.COMPLAINT: "complainedRecipients",
    DeliveryEventKind.DELIVERY_DELAY: "delayedRecipients",
}
_FEEDBACK = {DeliveryEventKind.BOUNCE, DeliveryEventKind.COMPLAINT, DeliveryEventKind.DELIVERY}
_SUBSCRIPTION_CONFIRMED = "AmazonSnsSubscriptionSucceeded"  # SES's test message to a new topic


def parse_message(message: str | Mapping[str, Any]) -> list[DeliveryEvent]:
    """``parse`` of an SNS record's ``Message``: a JSON string (moto publishes SES feedback as an
    object, which is taken as it is)."""
    if isinstance(message, Mapping):
        return parse(message)
    try:
        document = json.loads(message)
    except (TypeError, json.JSONDecodeError):
        raise ValueError("SES message is not JSON") from None
    return parse(document)


def parse(document: Mapping[str, Any]) -> list[DeliveryEvent]:
    """One event per recipient the document reports about, if it is about a campaign message."""
    if not isinstance(document, Mapping):
        raise ValueError("SES message is not a JSON object")
    kind = _kind(document)
    if kind is None:
        return []
    mail = _mapping(document, "mail")
    tags = _tags(mail)
    campaign, recipient = tags.get(TAG_CAMPAIGN), tags.get(TAG_RECIPIENT)
    if not campaign or not recipient:
        return []
    message_id = _string(mail, "messageId")
    detail = _detail(document, kind)
    at = _instant(detail.get("timestamp") or mail.get("timestamp"))
    bounce_type = _bounce_type(detail) if kind is DeliveryEventKind.BOUNCE else None
    return [
        DeliveryEvent(kind, campaign, recipient, email, message_id, at, bounce_type)
        for email in _addresses(kind, detail, mail)
    ]


def _kind(document: Mapping[str, Any]) -> DeliveryEventKind | None:
    if "eventType" in document:
        name, feedback = document["eventType"], False
    elif "notificationType" in document:
        name, feedback = document["notificationType"], True
    else:
        raise ValueError("SES message has neither eventType nor notificationType")
    if name == _SUBSCRIPTION_CONFIRMED:
        return None
    if feedback and name not in {k.value for k in _FEEDBACK}:
        name = _inferred(document)
    try:
        kind = DeliveryEventKind(name)
    except ValueError:
        raise ValueError("SES message has an unknown event type") from None
    if feedback and kind not in _FEEDBACK:
        raise ValueError("SES notification has an unknown notification type")
    return kind


def _inferred(document: Mapping[str, Any]) -> str:
    """The type of a notification whose ``notificationType`` is not one (moto 5 leaves its sample's
    placeholder, "Bounce, Complaint, or Delivery."): the one detail object it carries."""
    present = [k for k in _FEEDBACK if isinstance(document.get(_DETAIL[k]), Mapping)]
    if len(present) != 1:
        raise ValueError("SES notification has an unknown notification type")
    return present[0].value


def _mapping(parent: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = parent.get(name)
    if not isinstance(value, Mapping):
        raise ValueError(f"SES message lacks '{name}'")
    return value


def _string(parent: Mapping[str, Any], name: str) -> str:
    value = parent.get(name)
    if not isinstance(value, str) or not value:
        raise ValueError(f"SES message lacks '{name}'")
    return value


def _detail(document: Mapping[str, Any], kind: DeliveryEventKind) -> Mapping[str, Any]:
    """The event's details; Send and Reject may carry an empty (or, in old samples, no) object."""
    detail = document.get(_DETAIL[kind], {})
    if not isinstance(detail, Mapping):
        raise ValueError(f"SES message's '{_DETAIL[kind]}' is not an object")
    return detail


def _tags(mail: Mapping[str, Any]) -> dict[str, str]:
    """The message's own tags: ``mail.tags`` (event publishing: name -> list of strings), else the
    ``X-Bloodbank-Tag-*`` headers (feedback notifications)."""
    found: dict[str, str] = {}
    headers = mail.get("headers", [])
    if not isinstance(headers, Sequence) or isinstance(headers, str):
        raise ValueError("SES message's 'mail.headers' is not a list")
    prefix = TAG_HEADER_PREFIX.lower()
    for header in headers:
        if not isinstance(header, Mapping):
            raise ValueError("SES message has a malformed header")
        name, value = header.get("name"), header.get("value")
        if isinstance(name, str) and isinstance(value, str) and name.lower().startswith(prefix):
            found[name[len(prefix) :].lower()] = value.strip()
    tags = mail.get("tags", {})
    if not isinstance(tags, Mapping):
        raise ValueError("SES message's 'mail.tags' is not an object")
    for name, values in tags.items():
        if isinstance(values, str):
            values = [values]
        if not isinstance(values, Sequence) or not all(isinstance(v, str) for v in values):
            raise ValueError("SES message has a malformed tag")
        if values:
            found[str(name)] = values[0]
    return found


def _list(parent: Mapping[str, Any], name: str) -> list[Any]:
    value = parent.get(name)
    if not isinstance(value, Sequence) or isinstance(value, str) or not value:
        raise ValueError(f"SES message lacks '{name}'")
    return list(value)


def _addresses(kind: DeliveryEventKind, detail: Mapping[str, Any], mail: Mapping[str, Any]) -> list[str]:
    listed = _RECIPIENTS.get(kind)
    if listed is not None:
        raw = [e.get("emailAddress") if isinstance(e, Mapping) else None for e in _list(detail, listed)]
    elif kind is DeliveryEventKind.DELIVERY and "recipients" in detail:
        raw = _list(detail, "recipients")
    else:
        raw = _list(mail, "destination")
    return [_reported(address) for address in raw]


def _reported(address: object) -> str:
    """The address as SES reports it, in the form our keys are made of (``recipients.normalize``:
    punycode domain, all lower case). SES reports what we sent, already in that form, so this only
    drops a display name and spaces and lowers the case, without the validator's cost."""
    if not isinstance(address, str):
        raise ValueError("SES message has a malformed recipient")
    local, at, domain = parseaddr(address)[1].strip().rpartition("@")
    if not at or not local or not domain:
        raise ValueError("SES message has a malformed recipient")
    if not domain.isascii():
        try:
            domain = domain.encode("idna").decode()
        except UnicodeError:
            raise ValueError("SES message has a malformed recipient") from None
    return f"{local}@{domain}".lower()


def _bounce_type(detail: Mapping[str, Any]) -> BounceType:
    """Permanent, Transient or Undetermined; a type SES adds later counts as undetermined."""
    name = detail.get("bounceType")
    if not isinstance(name, str):
        raise ValueError("SES bounce lacks 'bounceType'")
    try:
        return BounceType(name)
    except ValueError:
        return BounceType.UNDETERMINED


def _instant(value: object) -> datetime:
    """SES's timestamps: ISO 8601 (``2017-08-05T00:41:02.669Z``); moto's samples also use
    ``2018-10-08T14:05:45 +0000``. A timestamp without an offset is UTC."""
    if not isinstance(value, str):
        raise ValueError("SES message lacks a timestamp")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        try:
            parsed = datetime.strptime(value, "%Y-%m-%dT%H:%M:%S %z")
        except ValueError:
            raise ValueError("SES message has a malformed timestamp") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)
