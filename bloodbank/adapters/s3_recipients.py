"""Recipient list files in the documents bucket: the uploads, streamed; their reports, stored.

``open`` reads an upload with one GetObject and hands its body out in chunks as they arrive, so
a 200 MiB file never sits in memory. ``save`` stores a report with ``upload_fileobj`` (multipart
above 8 MiB) under the bucket's KMS key. ``download_url`` signs a GET of the latest version.

Failures become DependencyUnavailable with the S3 error code only: no bucket name, no key.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any

from boto3.exceptions import S3UploadFailedError
from botocore.exceptions import BotoCoreError, ClientError

from bloodbank.adapters.s3_objects import Unconfigured, encryption, error_code, get_object, presigned_get
from bloodbank.errors import DependencyUnavailable

CHUNK_BYTES = 1024 * 1024


def _unavailable(action: str, exc: Exception) -> DependencyUnavailable:
    code = error_code(exc) or type(exc).__name__
    return DependencyUnavailable(f"recipient files could not {action}: {code}")


class S3RecipientFiles:
    """Implements ``RecipientFiles`` on S3. ``kms_key_id`` encrypts reports (as uploads are)."""

    def __init__(
        self, client: Any, bucket: str, kms_key_id: str = "", *, chunk_bytes: int = CHUNK_BYTES
    ) -> None:
        self._s3 = client
        self._bucket = bucket
        self._kms_key_id = kms_key_id
        self._chunk_bytes = chunk_bytes

    def open(self, key: str) -> Iterator[bytes]:
        return self._chunks(get_object(self._s3, self._bucket, key, _unavailable)["Body"])

    def _chunks(self, body: Any) -> Iterator[bytes]:
        try:
            while chunk := body.read(self._chunk_bytes):
                yield chunk
        except (BotoCoreError, ClientError, OSError) as exc:
            raise _unavailable("read an upload to the end", exc) from None
        finally:
            body.close()

    def save(self, key: str, body: IO[bytes], content_type: str) -> None:
        extra = {"ContentType": content_type, **encryption(self._kms_key_id)}
        try:
            self._s3.upload_fileobj(body, self._bucket, key, ExtraArgs=extra)
        except (BotoCoreError, ClientError, S3UploadFailedError) as exc:
            raise _unavailable("store a report", exc) from None

    def download_url(self, key: str, expires_in: int) -> str:
        try:
            return presigned_get(
                self._s3,
                self._bucket,
                key,
                expires_in,
                disposition="attachment",
                cache_control="private, no-store",
            )
        except (BotoCoreError, ClientError) as exc:
            raise _unavailable("sign a download", exc) from None


class UnconfiguredRecipientFiles(Unconfigured):
    """Stands in when no documents bucket is configured: every use fails as an unavailable dependency."""

    def open(self, key: str) -> Iterator[bytes]:
        raise self._fail()

    def save(self, key: str, body: IO[bytes], content_type: str) -> None:
        raise self._fail()

    def download_url(self, key: str, expires_in: int) -> str:
        raise self._fail()
