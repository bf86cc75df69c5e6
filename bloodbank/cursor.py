"""Opaque, tamper-evident page tokens.

A token carries where the next page starts (a DynamoDB key, which may hold names) and which
query it belongs to. It is encrypted and authenticated (Fernet: AES-CBC + HMAC-SHA256), so a
client can neither read nor alter it, cannot replay it against another filter, and it expires.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography.fernet import Fernet

from bloodbank.errors import BadUserInput

TOKEN_LIFETIME_SECONDS = 24 * 3600
MAX_TOKEN_LENGTH = 4096


class CursorCodec:
    def __init__(self, secret: str, lifetime_seconds: int = TOKEN_LIFETIME_SECONDS) -> None:
        self._key = base64.urlsafe_b64encode(
            hashlib.sha256(b"bloodbank/page-token/v1\x00" + secret.encode()).digest()
        )
        self._lifetime = lifetime_seconds
        self._cipher: Fernet | None = None

    @property
    def _fernet(self) -> Fernet:
        if self._cipher is None:  # imported on first use: most requests never page
            from cryptography.fernet import Fernet

            self._cipher = Fernet(self._key)
        return self._cipher

    @staticmethod
    def _scope_of(scope: str) -> str:
        return hashlib.sha256(scope.encode()).hexdigest()[:16]

    def encode(self, position: dict[str, object], scope: str) -> str:
        """``scope`` names the query (index and filter); the token only works for the same one."""
        payload = json.dumps({"p": position, "s": self._scope_of(scope)}, separators=(",", ":"))
        return self._fernet.encrypt(payload.encode()).decode()

    def decode(self, token: str, scope: str) -> dict[str, object]:
        if len(token) > MAX_TOKEN_LENGTH:
            raise BadUserInput("nextToken is not a token this API issued")
        from cryptography.fernet import InvalidToken

        try:
            raw = self._fernet.decrypt(token.encode(), ttl=self._lifetime)
        except (InvalidToken, ValueError):
            raise BadUserInput(
                "nextToken is invalid or expired: request the first page again without it"
            ) from None
        payload = json.loads(raw)
        if payload.get("s") != self._scope_of(scope):
            raise BadUserInput("nextToken belongs to a different query: pass the same filter it came with")
        position = payload.get("p")
        assert isinstance(position, dict)
        return position
