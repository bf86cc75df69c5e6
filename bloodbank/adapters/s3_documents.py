"""Donor documents in a private, versioned, KMS-encrypted S3 bucket, reached by presigned requests.

Clients upload with a presigned POST whose policy pins the exact key, the content type, the size
range and SSE-KMS with our key, and download with a presigned GET of one version. The API never
carries the bytes. The client passed in must sign with Signature Version 4 (see
``provisioning.s3_client``): S3 refuses SigV2 for SSE-KMS objects.

Failures become DependencyUnavailable with the S3 error code only: no bucket name, no key.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from bloodbank.adapters.s3_objects import Unconfigured
from bloodbank.domain.documents import DocumentVersion
from bloodbank.domain.uploads import UploadTicket
from bloodbank.errors import DependencyUnavailable

SSE = "aws:kms"


def _unavailable(action: str, exc: Exception) -> DependencyUnavailable:
    code = exc.response.get("Error", {}).get("Code", "") if isinstance(exc, ClientError) else ""
    return DependencyUnavailable(f"document store could not {action}: {code or type(exc).__name__}")


def _policy_expiry(fields: dict[str, str]) -> datetime | None:
    """When the signed policy itself expires (the exact instant S3 enforces)."""
    try:
        policy = json.loads(base64.b64decode(fields["policy"]))
        return datetime.strptime(policy["expiration"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except (KeyError, ValueError, TypeError):
        return None


class S3DocumentStore:
    """The DocumentStore port on S3. ``kms_key_id`` is the key id or ARN objects are encrypted with."""

    def __init__(self, client: Any, bucket: str, kms_key_id: str, *, page_size: int = 1000) -> None:
        self._s3 = client
        self._bucket = bucket
        self._kms_key_id = kms_key_id
        self._page_size = page_size

    def upload_ticket(self, key: str, content_type: str, max_bytes: int, expires_in: int) -> UploadTicket:
        fields = {"Content-Type": content_type, "x-amz-server-side-encryption": SSE}
        conditions: list[Any] = [
            {"Content-Type": content_type},
            ["content-length-range", 1, max_bytes],
            {"x-amz-server-side-encryption": SSE},
        ]
        if self._kms_key_id:
            fields["x-amz-server-side-encryption-aws-kms-key-id"] = self._kms_key_id
            conditions.append({"x-amz-server-side-encryption-aws-kms-key-id": self._kms_key_id})
        signed_at = datetime.now(UTC).replace(microsecond=0)
        try:
            # boto3 adds the conditions on the bucket and the exact key itself.
            post = self._s3.generate_presigned_post(
                Bucket=self._bucket, Key=key, Fields=fields, Conditions=conditions, ExpiresIn=expires_in
            )
        except (BotoCoreError, ClientError) as exc:
            raise _unavailable("sign an upload", exc) from None
        signed = {str(name): str(value) for name, value in post["fields"].items()}
        expires_at = _policy_expiry(signed) or signed_at + timedelta(seconds=expires_in)
        return UploadTicket(
            url=str(post["url"]),
            fields=signed,
            key=key,
            content_type=content_type,
            max_bytes=max_bytes,
            expires_at=expires_at,
        )

    def versions(self, prefix: str) -> list[tuple[str, DocumentVersion]]:
        found: list[tuple[str, DocumentVersion]] = []
        try:
            pages = self._s3.get_paginator("list_object_versions").paginate(
                Bucket=self._bucket, Prefix=prefix, PaginationConfig={"PageSize": self._page_size}
            )
            for page in pages:
                for item in page.get("Versions", ()):  # delete markers come under "DeleteMarkers"
                    version = DocumentVersion(
                        version_id=str(item["VersionId"]),
                        size=int(item["Size"]),
                        uploaded_at=item["LastModified"].astimezone(UTC),
                        latest=bool(item["IsLatest"]),
                    )
                    found.append((str(item["Key"]), version))
        except (BotoCoreError, ClientError) as exc:
            raise _unavailable("list documents", exc) from None
        return found

    def download_url(self, key: str, version_id: str, expires_in: int) -> str:
        try:
            url = self._s3.generate_presigned_url(
                "get_object",
                Params={
                    "Bucket": self._bucket,
                    "Key": key,
                    "VersionId": version_id,
                    "ResponseContentDisposition": "attachment",
                    "ResponseCacheControl": "private, no-store",
                },
                ExpiresIn=expires_in,
            )
        except (BotoCoreError, ClientError) as exc:
            raise _unavailable("sign a download", exc) from None
        return str(url)


class UnconfiguredDocumentStore(Unconfigured):
    """Stands in when no documents bucket is configured: every use fails as an unavailable dependency."""

    def upload_ticket(self, key: str, content_type: str, max_bytes: int, expires_in: int) -> UploadTicket:
        raise self._fail()

    def versions(self, prefix: str) -> list[tuple[str, DocumentVersion]]:
        raise self._fail()

    def download_url(self, key: str, version_id: str, expires_in: int) -> str:
        raise self._fail()
