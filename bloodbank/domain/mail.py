"""One campaign e-mail as the sender hands it to the mail port, and the outcomes a sender must tell apart.

Pure, no I/O. The sender decides what to do with a recipient from the kind of failure alone:
``SendThrottled`` (wait and try again, slower), ``QuotaExhausted`` (the account's daily quota is
spent: the campaign pauses), ``SendRejected`` (this recipient, permanently: never retried). Anything
else a mailer raises is ``errors.DependencyUnavailable``: retryable, the recipient stays unsent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

# Tags every campaign message carries (SES message tags, echoed in its events): which campaign,
# which recipient (the recipient's ``campaigns.address_key``). Neither holds personal data.
TAG_CAMPAIGN = "campaign"
TAG_RECIPIENT = "recipient"
# The tags again as headers (``X-Bloodbank-Tag-campaign``): SES feedback notifications carry no
# tags, only the message's headers (with headers in notifications enabled on the identity).
TAG_HEADER_PREFIX = "X-Bloodbank-Tag-"

# RFC 8058 one-click unsubscribe: the value of List-Unsubscribe-Post that makes a POST to the
# List-Unsubscribe URL an unsubscribe.
LIST_UNSUBSCRIBE = "List-Unsubscribe"
LIST_UNSUBSCRIBE_POST = "List-Unsubscribe-Post"
ONE_CLICK = "List-Unsubscribe=One-Click"


@dataclass(frozen=True, slots=True)
class OutgoingEmail:
    """One message to one recipient. ``headers`` are extra headers (``List-Unsubscribe`` and
    ``List-Unsubscribe-Post``, per recipient); ``tags`` come back in every SES event of the message."""

    to: str
    sender: str
    subject: str
    html: str
    text: str
    headers: Mapping[str, str] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    configuration_set: str | None = None

    def __repr__(self) -> str:  # the address and the content stay out of logs and tracebacks
        return f"OutgoingEmail(tags={dict(self.tags)!r})"


def unsubscribe_headers(url: str) -> dict[str, str]:
    """The RFC 8058 headers of a message whose recipient unsubscribes with one POST to ``url``."""
    return {LIST_UNSUBSCRIBE: f"<{url}>", LIST_UNSUBSCRIBE_POST: ONE_CLICK}


@dataclass(frozen=True, slots=True)
class SendQuota:
    """The account's sending limits as SES reports them (``GetSendQuota``)."""

    max_24h: float  # messages per rolling 24 hours (-1: unlimited)
    max_send_rate: float  # messages per second
    sent_last_24h: float

    @property
    def remaining_24h(self) -> float:
        if self.max_24h < 0:
            return float("inf")
        return max(0.0, self.max_24h - self.sent_last_24h)


class SendThrottled(Exception):
    """SES refused the call for the send rate: try again later, and slower."""


class QuotaExhausted(Exception):
    """The account's 24-hour quota is spent: nothing more can be sent until it frees up."""


class SendRejected(Exception):
    """SES refused this message for good (the address, the sender, the content): never retry it.

    ``reason`` is a short code (``MessageRejected``, ``InvalidAddress``, ...), never the address.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
