"""Unsubscribe tokens (RFC 8058 one-click links): which campaign, which recipient, signed. Pure.

A token binds a campaign id and a recipient's ``campaigns.address_key`` (no address: a link that
leaks, in a forwarded mail or a log, names nobody) under HMAC-SHA256. The key is derived from the
page-token secret with its own label, so there is no new secret to manage and a page token's key
never signs an unsubscribe. Tokens are URL-safe base64, compared in constant time, and do not
expire: a person may unsubscribe from an old e-mail years later.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass

_LABEL = b"bloodbank/unsubscribe/v1"
_VERSION = "u1"
MAC_BYTES = 16  # 128 bits: forging one costs 2**128 tries
MAX_TOKEN_LENGTH = 512


class InvalidToken(ValueError):
    """Not a token this service issued (malformed, altered, or signed with another key)."""


@dataclass(frozen=True, slots=True)
class Unsubscription:
    campaign_id: str
    recipient_key: str  # campaigns.address_key of the recipient


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise InvalidToken("malformed") from None
    if _b64(raw) != text:  # only the one spelling we issue: any changed character is refused
        raise InvalidToken("malformed")
    return raw


class UnsubscribeTokens:
    def __init__(self, secret: str) -> None:
        if not secret:
            raise ValueError("an unsubscribe token needs a secret")
        self._key = hmac.new(secret.encode(), _LABEL, hashlib.sha256).digest()

    def _mac(self, campaign: bytes, recipient: bytes) -> bytes:
        message = b"\x00".join((_VERSION.encode(), campaign, recipient))
        return hmac.new(self._key, message, hashlib.sha256).digest()[:MAC_BYTES]

    def issue(self, campaign_id: str, recipient_key: str) -> str:
        if not campaign_id or not recipient_key:
            raise ValueError("an unsubscribe token needs a campaign and a recipient")
        campaign, recipient = campaign_id.encode(), recipient_key.encode()
        return ".".join((_VERSION, _b64(campaign), _b64(recipient), _b64(self._mac(campaign, recipient))))

    def verify(self, token: str) -> Unsubscription:
        """What ``token`` was issued for; ``InvalidToken`` (saying nothing more) if it was not."""
        if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH or not token.isascii():
            raise InvalidToken("malformed")
        parts = token.split(".")
        if len(parts) != 4 or parts[0] != _VERSION:
            raise InvalidToken("malformed")
        campaign, recipient, mac = (_unb64(p) for p in parts[1:])
        if not hmac.compare_digest(mac, self._mac(campaign, recipient)):
            raise InvalidToken("altered")
        try:
            campaign_id, recipient_key = campaign.decode(), recipient.decode()
        except UnicodeDecodeError:
            raise InvalidToken("malformed") from None
        if not campaign_id or not recipient_key:
            raise InvalidToken("malformed")
        return Unsubscription(campaign_id, recipient_key)
