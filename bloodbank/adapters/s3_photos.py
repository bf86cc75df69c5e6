"""Employee photos in the documents bucket: uploads read once, thumbnails written and linked.

``read`` refuses an object larger than asked from its ``ContentLength`` before reading a byte of
it, so an oversized upload costs no memory. Thumbnails are written under the bucket's KMS key and
shown through presigned GETs inline (an ``<img>`` source), never cached by shared caches.

Failures become DependencyUnavailable with the S3 error code only: no bucket name, no key.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from bloodbank.adapters.s3_objects import Unconfigured, encryption, error_code, get_object, presigned_get
from bloodbank.errors import DependencyUnavailable
from bloodbank.ports import FileTooLarge, StoredFile


def _unavailable(action: str, exc: Exception) -> DependencyUnavailable:
    return DependencyUnavailable(f"photo files could not {action}: {error_code(exc) or type(exc).__name__}")


class S3PhotoFiles:
    """Implements ``PhotoFiles`` on S3. ``kms_key_id`` encrypts the thumbnails (as uploads are)."""

    def __init__(self, client: Any, bucket: str, kms_key_id: str = "") -> None:
        self._s3 = client
        self._bucket = bucket
        self._kms_key_id = kms_key_id

    def read(self, key: str, max_bytes: int) -> StoredFile:
        response = get_object(self._s3, self._bucket, key, _unavailable)
        body = response["Body"]
        try:
            size = int(response.get("ContentLength") or 0)
            if size > max_bytes:
                raise FileTooLarge(size)
            data = body.read(max_bytes + 1)
        except (BotoCoreError, ClientError, OSError) as exc:
            raise _unavailable("read an upload to the end", exc) from None
        finally:
            body.close()
        if len(data) > max_bytes:
            raise FileTooLarge(len(data))
        return StoredFile(data, str(response.get("ContentType") or ""))

    def write(self, key: str, data: bytes, content_type: str) -> None:
        try:
            self._s3.put_object(
                Bucket=self._bucket,
                Key=key,
                Body=data,
                ContentType=content_type,
                CacheControl="private, max-age=600",
                **encryption(self._kms_key_id),
            )
        except (BotoCoreError, ClientError) as exc:
            raise _unavailable("store a thumbnail", exc) from None

    def url(self, key: str, expires_in: int) -> str:
        try:
            return presigned_get(
                self._s3,
                self._bucket,
                key,
                expires_in,
                disposition="inline",
                cache_control="private, max-age=600",
            )
        except (BotoCoreError, ClientError) as exc:
            raise _unavailable("sign a thumbnail link", exc) from None


class UnconfiguredPhotoFiles(Unconfigured):
    """Stands in when no documents bucket is configured: every use fails as an unavailable dependency."""

    def read(self, key: str, max_bytes: int) -> StoredFile:
        raise self._fail()

    def write(self, key: str, data: bytes, content_type: str) -> None:
        raise self._fail()

    def url(self, key: str, expires_in: int) -> str:
        raise self._fail()
