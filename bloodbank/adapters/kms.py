"""FieldCipher over AWS KMS: one data key per sealed item, wrapped by a KMS key (envelope encryption).

The item's encryption context (table and key) goes to KMS with the data key, so a wrapped key only
unwraps for the item it was made for; each attribute's name and that context are bound to its value
as AES-GCM associated data (``bloodbank.sealing``). Fails closed: when KMS cannot be used, seal and
unseal raise ``DependencyUnavailable`` and nothing is written or returned in clear.

Messages name the failed step and KMS's error code only: never a key id, a context or a value.
botocore is imported only when an error has to be classified, so importing this module is cheap.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from bloodbank.errors import DependencyUnavailable
from bloodbank.ports import SealedFields
from bloodbank.sealing import KEY_BYTES, SealBroken, Sealer, canonical_context

# KMS's answers that mean "this ciphertext does not open here" rather than "KMS cannot be used".
_BROKEN_CODES = frozenset({"InvalidCiphertextException", "IncorrectKeyException"})


class KmsClient(Protocol):
    """The two calls of a boto3 KMS client this adapter makes."""

    def generate_data_key(self, **kwargs: Any) -> dict[str, Any]: ...

    def decrypt(self, **kwargs: Any) -> dict[str, Any]: ...


class DataKeyCache:
    """Unwrapped data keys by (wrapped key, context), for ``ttl_seconds``, at most ``max_entries``.

    Thread-safe; least recently used entries go first. It holds ready ciphers, not key bytes.
    """

    def __init__(
        self, ttl_seconds: float, max_entries: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._ttl = ttl_seconds
        self._max = max_entries
        self._clock = clock
        self._entries: OrderedDict[bytes, tuple[float, Sealer]] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(wrapped_key: bytes, context: Mapping[str, str]) -> bytes:
        return hashlib.sha256(
            len(wrapped_key).to_bytes(4, "big") + wrapped_key + canonical_context(context)
        ).digest()

    def get(self, key: bytes) -> Sealer | None:
        now = self._clock()
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if entry[0] <= now:
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return entry[1]

    def put(self, key: bytes, sealer: Sealer) -> None:
        if self._max <= 0 or self._ttl <= 0:
            return
        expires = self._clock() + self._ttl
        with self._lock:
            self._entries[key] = (expires, sealer)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


def _translate(exc: Exception, step: str) -> Exception:
    """The error to raise for a failed KMS call, or ``exc`` itself if it did not come from botocore."""
    from botocore.exceptions import BotoCoreError, ClientError

    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code") or "unknown")
        if code in _BROKEN_CODES:
            return SealBroken()
        return DependencyUnavailable(f"KMS refused to {step} ({code})")
    if isinstance(exc, BotoCoreError):
        return DependencyUnavailable(f"KMS unreachable, could not {step} ({type(exc).__name__})")
    return exc


class KmsFieldCipher:
    """``FieldCipher`` with data keys from ``GenerateDataKey`` under ``key_id`` (a key id, ARN or alias).

    Unsealing caches unwrapped data keys (5 minutes, 1000 items by default), so reading one item
    again does not call KMS each time; the cache is keyed by wrapped key *and* context, so a wrong
    context still goes to KMS and fails.
    """

    def __init__(
        self,
        client: KmsClient,
        key_id: str,
        *,
        cache_ttl_seconds: float = 300.0,
        cache_max_entries: int = 1000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._key_id = key_id
        self._cache = DataKeyCache(cache_ttl_seconds, cache_max_entries, clock)

    def __repr__(self) -> str:
        return "KmsFieldCipher(...)"

    def seal(self, context: Mapping[str, str], fields: Mapping[str, str]) -> SealedFields:
        try:
            response = self._client.generate_data_key(
                KeyId=self._key_id, KeySpec="AES_256", EncryptionContext=dict(context)
            )
        except Exception as exc:
            raise _translate(exc, "generate a data key") from None
        plaintext = response.pop("Plaintext", b"")
        try:
            if len(plaintext) != KEY_BYTES:
                raise DependencyUnavailable("KMS returned a data key of the wrong size")
            sealer = Sealer(plaintext)
        finally:
            # Drop our references to the plaintext key as soon as the cipher holds it.
            del plaintext
        wrapped = bytes(response["CiphertextBlob"])
        del response
        try:
            return SealedFields(
                wrapped, {name: sealer.seal(context, name, value) for name, value in fields.items()}
            )
        finally:
            del sealer

    def unseal(self, context: Mapping[str, str], sealed: SealedFields) -> dict[str, str]:
        sealer = self._data_key(context, sealed.wrapped_key)
        return {name: sealer.open(context, name, value) for name, value in sealed.fields.items()}

    def clear_cache(self) -> None:
        """Forget every unwrapped data key (after a key is disabled or rotated, or in tests)."""
        self._cache.clear()

    def _data_key(self, context: Mapping[str, str], wrapped_key: bytes) -> Sealer:
        cache_key = DataKeyCache.key(wrapped_key, context)
        cached = self._cache.get(cache_key)
        if cached is not None:
            return cached
        if not wrapped_key:
            raise SealBroken()
        try:
            response = self._client.decrypt(
                CiphertextBlob=wrapped_key, EncryptionContext=dict(context), KeyId=self._key_id
            )
        except Exception as exc:
            raise _translate(exc, "unwrap a data key") from None
        plaintext = response.pop("Plaintext", b"")
        del response
        try:
            if len(plaintext) != KEY_BYTES:
                raise SealBroken()
            sealer = Sealer(plaintext)
        finally:
            del plaintext
        self._cache.put(cache_key, sealer)
        return sealer
