"""Recipient list files in the documents bucket: the uploads, streamed; their reports, stored.

``open`` reads an upload with one GetObject and hands its body out in chunks as they arrive, so
a 200 MiB file never sits in memory. ``save`` stores a report with ``upload_fileobj`` (multipart
above 8 MiB) under the bucket's KMS key. ``download_url`` signs a GET of the latest version.

Failures become DependencyUnavailable with the S3 error code only: no bucket name, no key.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import IO, Any

from boto3.exceptions import S3UploadFailedError
from botocore.exceptions import BotoCoreError, ClientError

from bloodbank.errors import DependencyUnavailable

CHUNK_BYTES = 1024 * 1024
_MISSING = ("NoSuchKey", "404", "NotFound")


def _code(exc: Exception) -> str:
    return exc.response.get("Error", {}).get("Code", "") if isinstance(exc, ClientError) else ""


def _unavailable(action: str, exc: Exception) -> DependencyUnavailable:
    return DependencyUnavailable(f"recipient files could not {action}: {_code(exc) or type(exc).__name__}")


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
        try:
            body = self._s3.get_object(Bucket=self._bucket, Key=key)["Body"]
        except ClientError as exc:
            if _code(exc) in _MISSING:
                raise LookupError("no such upload") from None
            raise _unavailable("read an upload", exc) from None
        except BotoCoreError as exc:
            raise _unavailable("read an upload", exc) from None
        return self._chunks(body)

    def _chunks(self, body: Any) -> Iterator[bytes]:
        try:
            while chunk := body.read(self._chunk_bytes):
                yield chunk
        except (BotoCoreError, ClientError, OSError) as exc:
            raise _unavailable("read an upload to the end", exc) from None
        finally:
            body.close()

    def save(self, key: str, body: IO[bytes], content_type: str) -> None:
        extra = {"ContentType": content_type, "ServerSideEncryption": "aws:kms"}
        if self._kms_key_id:
            extra["SSEKMSKeyId"] = self._kms_key_id
        try:
            self._s3.upload_fileobj(body, self._bucket, key, ExtraArgs=extra)
        except (BotoCoreError, ClientError, S3UploadFailedError) as exc:
            raise _unavailable("store a report", exc) from None

    def download_url(self, key: str, expires_in: int) -> str:
        try:
            url = self._s3.generate_presigned_url(
                "get_object",
                Params={
                    "Bucket": self._bucket,
                    "Key": key,
                    "ResponseContentDisposition": "attachment",
                    "ResponseCacheControl": "private, no-store",
                },
                ExpiresIn=expires_in,
            )
        except (BotoCoreError, ClientError) as exc:
            raise _unavailable("sign a download", exc) from None
        return str(url)


class UnconfiguredRecipientFiles:
    """Stands in when no documents bucket is configured: every use fails as an unavailable dependency."""

    def _fail(self) -> DependencyUnavailable:
        return DependencyUnavailable("document storage is not configured (BLOODBANK_DOCUMENTS_BUCKET)")

    def open(self, key: str) -> Iterator[bytes]:
        raise self._fail()

    def save(self, key: str, body: IO[bytes], content_type: str) -> None:
        raise self._fail()

    def download_url(self, key: str, expires_in: int) -> str:
        raise self._fail()


def created_objects(event: Mapping[str, Any]) -> list[tuple[str, str] | None]:
    """(bucket, key) of each ``ObjectCreated`` record of an S3 event notification, None for any other
    record. Keys arrive URL-encoded (a space as ``+``) and are decoded here."""
    from urllib.parse import unquote_plus

    found: list[tuple[str, str] | None] = []
    for record in event.get("Records", []):
        s3 = record.get("s3") if isinstance(record, dict) else None
        if not isinstance(s3, dict) or not str(record.get("eventName", "")).startswith("ObjectCreated:"):
            found.append(None)
            continue
        bucket = str((s3.get("bucket") or {}).get("name") or "")
        found.append((bucket, unquote_plus(str((s3.get("object") or {}).get("key") or ""))))
    return found
