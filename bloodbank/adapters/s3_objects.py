"""What the S3 adapters (donor documents, recipient lists, employee photos) share: reading an object
that may be missing, the server-side encryption of what they write, signing a GET, the objects an S3
event notification announces, and the stand-in for an unconfigured bucket.
Errors keep the S3 error code only: no bucket name, no key."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from bloodbank.errors import DependencyUnavailable

Unavailable = Callable[[str, Exception], DependencyUnavailable]  # (what failed, why) -> the error
_MISSING = ("NoSuchKey", "404", "NotFound")


class Unconfigured:
    """Base of the stand-ins used when no documents bucket is configured: every use fails as an
    unavailable dependency."""

    def _fail(self) -> DependencyUnavailable:
        return DependencyUnavailable("document storage is not configured (BLOODBANK_DOCUMENTS_BUCKET)")


def error_code(exc: Exception) -> str:
    return exc.response.get("Error", {}).get("Code", "") if isinstance(exc, ClientError) else ""


def get_object(s3: Any, bucket: str, key: str, unavailable: Unavailable) -> dict[str, Any]:
    """GetObject's response; LookupError when there is no such object."""
    try:
        response: dict[str, Any] = s3.get_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if error_code(exc) in _MISSING:
            raise LookupError("no such upload") from None
        raise unavailable("read an upload", exc) from None
    except BotoCoreError as exc:
        raise unavailable("read an upload", exc) from None
    return response


def encryption(kms_key_id: str) -> dict[str, str]:
    """Put parameters encrypting an object under the bucket's KMS key (``kms_key_id`` if given)."""
    extra = {"ServerSideEncryption": "aws:kms"}
    if kms_key_id:
        extra["SSEKMSKeyId"] = kms_key_id
    return extra


def presigned_get(
    s3: Any, bucket: str, key: str, expires_in: int, *, disposition: str, cache_control: str
) -> str:
    """A GET link of the object; raises BotoCoreError or ClientError for the caller to word."""
    params = {
        "Bucket": bucket,
        "Key": key,
        "ResponseContentDisposition": disposition,
        "ResponseCacheControl": cache_control,
    }
    return str(s3.generate_presigned_url("get_object", Params=params, ExpiresIn=expires_in))


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
