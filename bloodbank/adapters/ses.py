"""Campaign e-mail through Amazon SES (API v1): one raw MIME message per recipient.

SES v1 because it is the API moto implements with send quota, configuration sets and simulator
feedback (moto's v2 lacks them); ``SendRawEmail`` because only a raw message carries the per-recipient
RFC 8058 headers (``List-Unsubscribe``, ``List-Unsubscribe-Post``). The message is built with the
standard library: multipart/alternative (text, then HTML), UTF-8, CRLF line endings.

The message's tags travel twice: as SES message tags (configuration-set event publishing echoes them
in ``mail.tags``) and as ``X-Bloodbank-Tag-<name>`` headers (feedback notifications carry no tags,
only the headers, when headers in notifications are enabled). Neither holds personal data.

Errors are sorted into what the sender must tell apart (``domain.mail``); none carries an address.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid, parseaddr
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from bloodbank.domain.mail import (
    TAG_HEADER_PREFIX,
    OutgoingEmail,
    QuotaExhausted,
    SendQuota,
    SendRejected,
    SendThrottled,
)
from bloodbank.errors import DependencyUnavailable

MAX_TAG_CHARS = 255  # SES: fewer than 256 characters, ASCII letters, digits, '_' and '-' only
_TAG_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_CODE = re.compile(r"[^A-Za-z0-9.]")  # an error code is an identifier; keep nothing else of the reply
_LINE_BREAK = re.compile(r"[\r\n]")
# CRLF line endings; 7-bit safe bodies (UTF-8 goes quoted-printable or base64, for any relay);
# headers folded only past RFC 5322's 998 characters, so a long unsubscribe URL or tag stays whole.
POLICY = SMTP.clone(max_line_length=998, cte_type="7bit")

# Error codes (and, for Throttling, messages) SES v1 answers with.
_QUOTA = "daily message quota exceeded"
_SENDING_PAUSED = {"AccountSendingPausedException", "ConfigurationSetSendingPausedException"}
_REJECTED = {"MessageRejected", "MailFromDomainNotVerifiedException", "MailFromDomainNotVerified"}
_THROTTLED = {"Throttling", "ThrottlingException", "TooManyRequestsException"}
_ADDRESS_WORDS = ("address", "domain", "email", "recipient", "destination")


def tag(value: str) -> str:
    """A value SES accepts as a message tag name or value: other characters become '_'."""
    return _TAG_UNSAFE.sub("_", value)[:MAX_TAG_CHARS] or "_"


def _header_value(name: str, value: str) -> str:
    if _LINE_BREAK.search(value) or _LINE_BREAK.search(name):
        raise SendRejected("InvalidHeader")  # a header injection, or a template bug: never retry
    return value


def _domain_of(sender: str) -> str:
    address = parseaddr(sender)[1]
    return address.rpartition("@")[2] or "localhost"


class SesMailer:
    """Implements ``MailSender`` over a boto3 SES (v1) ``client``. ``configuration_set`` is used for
    messages that name none; ``message_id_domain`` is the right-hand side of the Message-ID (default:
    the sender's domain); ``clock`` dates the message."""

    def __init__(
        self,
        client: Any,
        *,
        configuration_set: str | None = None,
        message_id_domain: str | None = None,
        clock: Any = None,
    ) -> None:
        self._client = client
        self._configuration_set = configuration_set
        self._message_id_domain = message_id_domain
        self._clock = clock or (lambda: datetime.now(UTC))

    def mime(self, email: OutgoingEmail) -> EmailMessage:
        """The message as sent: headers, then a text and an HTML alternative, in UTF-8."""
        message = EmailMessage(policy=POLICY)
        message["From"] = _header_value("From", email.sender)
        message["To"] = _header_value("To", email.to)
        message["Subject"] = " ".join(email.subject.split())
        message["Date"] = format_datetime(self._clock())
        message["Message-ID"] = make_msgid(domain=self._message_id_domain or _domain_of(email.sender))
        message["MIME-Version"] = "1.0"
        for name, value in email.headers.items():
            message[name] = _header_value(name, value)
        for name, value in email.tags.items():
            message[f"{TAG_HEADER_PREFIX}{tag(name)}"] = tag(value)
        message.set_content(email.text, charset="utf-8")
        message.add_alternative(email.html, subtype="html", charset="utf-8")
        return message

    def request(self, email: OutgoingEmail) -> dict[str, Any]:
        """The SendRawEmail parameters. No ``Destinations``: SES takes them from the To header."""
        params: dict[str, Any] = {
            "Source": email.sender,
            "RawMessage": {"Data": self.mime(email).as_bytes()},
        }
        configuration_set = email.configuration_set or self._configuration_set
        if configuration_set:
            params["ConfigurationSetName"] = configuration_set
        if email.tags:
            params["Tags"] = [{"Name": tag(k), "Value": tag(v)} for k, v in email.tags.items()]
        return params

    def send(self, email: OutgoingEmail) -> str:
        params = self.request(email)
        try:
            response = self._client.send_raw_email(**params)
        except ClientError as exc:
            raise classify(exc) from None
        except (BotoCoreError, OSError) as exc:
            raise DependencyUnavailable(f"SES unreachable, e-mail not sent: {type(exc).__name__}") from None
        return str(response["MessageId"])

    def send_quota(self) -> SendQuota:
        try:
            reply = self._client.get_send_quota()
        except ClientError as exc:
            raise DependencyUnavailable(f"SES refused GetSendQuota: {_code(exc)}") from None
        except (BotoCoreError, OSError) as exc:
            raise DependencyUnavailable(f"SES unreachable, no send quota: {type(exc).__name__}") from None
        return SendQuota(
            max_24h=float(reply["Max24HourSend"]),
            max_send_rate=float(reply["MaxSendRate"]),
            sent_last_24h=float(reply["SentLast24Hours"]),
        )


def _code(exc: ClientError) -> str:
    return _CODE.sub("", str(exc.response.get("Error", {}).get("Code", "Unknown")))[:64]


def classify(exc: ClientError) -> Exception:
    """What a SendRawEmail failure means to the sender. SES's messages may quote the address: only
    the code (and a fixed reason) is kept."""
    code = _code(exc)
    message = str(exc.response.get("Error", {}).get("Message", "")).lower()
    if _QUOTA in message:
        return QuotaExhausted("SES daily sending quota exhausted")
    if code in _SENDING_PAUSED:
        return QuotaExhausted(f"SES sending is paused: {code}")
    if code in _THROTTLED or "maximum sending rate exceeded" in message:
        return SendThrottled("SES maximum sending rate exceeded")
    if code in _REJECTED:
        return SendRejected(code)
    if code == "InvalidParameterValue" and any(word in message for word in _ADDRESS_WORDS):
        return SendRejected("InvalidAddress")
    return DependencyUnavailable(f"SES refused the e-mail: {code}")
