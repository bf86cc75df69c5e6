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
        try:
            response = self._client.publish(**self.request(message))
        except ClientError as exc:
            code = _CODE.sub("", str(exc.response.get("Error", {}).get("Code", "Unknown")))[:64]
            raise DependencyUnavailable(f"SNS refused the {channel} notification: {code}") from None
        except (BotoCoreError, OSError) as exc:
            raise DependencyUnavailable(
                f"SNS unreachable, {channel} notification not sent: {type(exc).__name__}"
            ) from None
        return str(response["MessageId"])
