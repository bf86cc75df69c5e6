"""AES-256-GCM for one attribute of one item, under a data key (the inner half of envelope encryption).

Pure: no AWS, no I/O. A sealed value is ``version (1 byte) || nonce (12 bytes) || ciphertext || tag``.
The associated data binds the version, what the bytes are (a field, or a wrapped data key), the
attribute's name and the item's encryption context (table and key), each length-prefixed, so a value
copied to another attribute or another item, or with any byte changed, does not open.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Mapping

VERSION = 1
KEY_BYTES = 32
NONCE_BYTES = 12
TAG_BYTES = 16
_FIELD = b"field"
_DATA_KEY = b"data-key"


class SealBroken(Exception):
    """A sealed value does not open: changed, copied from elsewhere, or opened with the wrong context.

    An internal error (never the client's fault). The message names no value, key or context.
    """

    def __init__(self, message: str = "a sealed value could not be opened") -> None:
        super().__init__(message)


def _part(data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + data


def canonical_context(context: Mapping[str, str]) -> bytes:
    """The context as unambiguous bytes: pairs sorted by name, every name and value length-prefixed."""
    out = [struct.pack(">I", len(context))]
    for name in sorted(context):
        out.append(_part(name.encode("utf-8")))
        out.append(_part(context[name].encode("utf-8")))
    return b"".join(out)


def associated_data(context: Mapping[str, str], attribute: str, *, purpose: bytes = _FIELD) -> bytes:
    """What a sealed value is bound to besides its key: format version, purpose, attribute, context."""
    return bytes([VERSION]) + _part(purpose) + _part(attribute.encode("utf-8")) + canonical_context(context)


def _invalid_tag() -> type[Exception]:
    from cryptography.exceptions import InvalidTag

    return InvalidTag


class Sealer:
    """AES-256-GCM under one data key, for the several attributes of one item."""

    __slots__ = ("_aead",)

    def __init__(self, key: bytes | bytearray) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError("a data key must be 32 bytes")
        # Imported here: most requests never open a personal field, and cold starts stay short.
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        self._aead = AESGCM(bytes(key))

    def seal_bytes(
        self, context: Mapping[str, str], attribute: str, data: bytes, *, purpose: bytes = _FIELD
    ) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        aad = associated_data(context, attribute, purpose=purpose)
        return bytes([VERSION]) + nonce + self._aead.encrypt(nonce, data, aad)

    def open_bytes(
        self, context: Mapping[str, str], attribute: str, sealed: bytes, *, purpose: bytes = _FIELD
    ) -> bytes:
        if len(sealed) < 1 + NONCE_BYTES + TAG_BYTES or sealed[0] != VERSION:
            raise SealBroken()
        nonce, body = sealed[1 : 1 + NONCE_BYTES], sealed[1 + NONCE_BYTES :]
        try:
            return self._aead.decrypt(nonce, body, associated_data(context, attribute, purpose=purpose))
        except _invalid_tag():
            raise SealBroken() from None

    def seal(self, context: Mapping[str, str], attribute: str, plaintext: str) -> bytes:
        """Encrypt one attribute's value, bound to ``context`` and ``attribute``."""
        return self.seal_bytes(context, attribute, plaintext.encode("utf-8"))

    def open(self, context: Mapping[str, str], attribute: str, sealed: bytes) -> str:
        """Decrypt one attribute's value; SealBroken if it was changed or belongs elsewhere."""
        data = self.open_bytes(context, attribute, sealed)
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise SealBroken() from None


def seal_value(key: bytes | bytearray, context: Mapping[str, str], attribute: str, plaintext: str) -> bytes:
    """Encrypt one value under a 32-byte data key (a fresh random nonce each time)."""
    return Sealer(key).seal(context, attribute, plaintext)


def open_value(key: bytes | bytearray, context: Mapping[str, str], attribute: str, sealed: bytes) -> str:
    """Decrypt one value sealed by :func:`seal_value` with the same key, context and attribute."""
    try:
        sealer = Sealer(key)
    except ValueError:
        raise SealBroken() from None
    return sealer.open(context, attribute, sealed)


def wrap_data_key(master: bytes | bytearray, context: Mapping[str, str], data_key: bytes) -> bytes:
    """A data key encrypted under a local master key and bound to ``context`` (for fakes and tools)."""
    return Sealer(master).seal_bytes(context, "", data_key, purpose=_DATA_KEY)


def unwrap_data_key(master: bytes | bytearray, context: Mapping[str, str], wrapped: bytes) -> bytes:
    """The data key from :func:`wrap_data_key`; SealBroken with another master key or context."""
    data_key = Sealer(master).open_bytes(context, "", wrapped, purpose=_DATA_KEY)
    if len(data_key) != KEY_BYTES:
        raise SealBroken()
    return data_key
