"""The documents bucket and S3DocumentStore against a moto server, with real HTTP uploads and downloads.

What moto checks and what it does not (so what these tests can and cannot prove):
- it stores what a browser POSTs with a presigned form, keeps versions, serves a version through a
  presigned GET with the response headers it asks for, records SSE-KMS with our key, keeps the
  bucket's settings, refuses an unsigned GET of a private object, and answers CORS preflights;
- it does NOT evaluate a POST policy (content-length-range, Content-Type, key, SSE fields, expiry)
  nor verify presigned signatures or expiry, so the policy is checked here by decoding it;
- it applies a bucket policy's Deny with principal "*" whatever its condition says, so a bucket
  with the TLS-only policy refuses everything on moto (plain HTTP or not): the upload tests use a
  bucket made with ``require_tls=False``, and the policy is checked on a bucket of its own.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from bloodbank.adapters.provisioning import client, ensure_documents_bucket, s3_client
from bloodbank.adapters.s3_documents import S3DocumentStore
from bloodbank.domain import documents as rules
from bloodbank.domain.documents import DocumentKind
from bloodbank.domain.uploads import UploadTicket
from bloodbank.errors import DependencyUnavailable
from tests.conftest import REGION

PDF_1 = b"%PDF-1.4\n1 0 obj <<>> endobj\n%%EOF\n"
PDF_2 = b"%PDF-1.7\n% second version of the consent form\n%%EOF\n"


@dataclass
class Bucket:
    name: str
    kms_key_arn: str
    s3: Any
    store: S3DocumentStore


def _new_bucket(endpoint: str, *, require_tls: bool) -> Bucket:
    kms_key_arn = client("kms", endpoint, REGION).create_key(Description="documents")["KeyMetadata"]["Arn"]
    name = f"bloodbank-docs-{uuid.uuid4().hex[:12]}"
    assert ensure_documents_bucket(endpoint, REGION, name, kms_key_arn, require_tls=require_tls) is True
    s3 = s3_client(endpoint, REGION)
    return Bucket(name, kms_key_arn, s3, S3DocumentStore(s3, name, kms_key_arn))


@pytest.fixture
def bucket(moto_server: str) -> Bucket:
    return _new_bucket(moto_server, require_tls=False)


@pytest.fixture
def web() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as http:
        yield http


def post(web: httpx.Client, ticket: UploadTicket, content: bytes, name: str = "form.pdf") -> httpx.Response:
    """What a browser does with a ticket: the fields as they are, the file last."""
    return web.post(ticket.url, data=ticket.fields, files={"file": (name, content, ticket.content_type)})


def policy_of(ticket: UploadTicket) -> dict[str, Any]:
    policy: dict[str, Any] = json.loads(base64.b64decode(ticket.fields["policy"]))
    return policy


def new_key(kind: DocumentKind = DocumentKind.CONSENT_FORM) -> str:
    return rules.object_key(f"donor-{uuid.uuid4().hex[:8]}", kind, f"doc-{uuid.uuid4().hex[:8]}")


def test_the_ticket_policy_pins_key_type_size_and_encryption(bucket: Bucket) -> None:
    key = new_key()
    before = datetime.now(UTC).replace(microsecond=0)
    ticket = bucket.store.upload_ticket(key, "application/pdf", rules.MAX_BYTES, rules.UPLOAD_TTL_SECONDS)
    policy = policy_of(ticket)
    conditions = policy["conditions"]
    assert ["content-length-range", 1, 10 * 1024 * 1024] in conditions
    assert {"Content-Type": "application/pdf"} in conditions
    assert {"key": key} in conditions
    assert {"bucket": bucket.name} in conditions
    assert {"x-amz-server-side-encryption": "aws:kms"} in conditions
    assert {"x-amz-server-side-encryption-aws-kms-key-id": bucket.kms_key_arn} in conditions
    assert not any(isinstance(c, list) and c[0] == "starts-with" for c in conditions)
    # Signature Version 4 (S3 refuses SigV2 for SSE-KMS objects), and every field is signed.
    assert ticket.fields["x-amz-algorithm"] == "AWS4-HMAC-SHA256"
    assert "AWSAccessKeyId" not in ticket.fields
    for name in (
        "Content-Type",
        "x-amz-server-side-encryption",
        "x-amz-server-side-encryption-aws-kms-key-id",
    ):
        assert {name: ticket.fields[name]} in conditions
    # The ticket's expiry is the policy's, 15 minutes out.
    expiration = datetime.strptime(policy["expiration"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert ticket.expires_at == expiration
    assert before + timedelta(minutes=15) <= expiration <= before + timedelta(minutes=15, seconds=5)
    assert (ticket.key, ticket.content_type, ticket.max_bytes) == (key, "application/pdf", rules.MAX_BYTES)


def test_uploading_twice_makes_two_versions_each_downloadable(bucket: Bucket, web: httpx.Client) -> None:
    key = new_key()
    for content in (PDF_1, PDF_2):
        ticket = bucket.store.upload_ticket(key, "application/pdf", rules.MAX_BYTES, 900)
        response = post(web, ticket, content)
        assert response.status_code in (200, 201, 204), response.text

    entries = bucket.store.versions(rules.donor_prefix(rules.parse_key(key).donor_id))  # type: ignore[union-attr]
    assert [k for k, _ in entries] == [key, key]
    newest, oldest = (v for _, v in entries)
    assert (newest.latest, oldest.latest) == (True, False)
    assert (newest.size, oldest.size) == (len(PDF_2), len(PDF_1))
    assert newest.version_id != oldest.version_id
    assert newest.uploaded_at.tzinfo is not None

    [document] = rules.documents_of(rules.parse_key(key).donor_id, entries)  # type: ignore[union-attr]
    assert [v.version_id for v in document.versions] == [newest.version_id, oldest.version_id]

    for version, content in ((oldest, PDF_1), (newest, PDF_2)):
        url = bucket.store.download_url(key, version.version_id, rules.DOWNLOAD_TTL_SECONDS)
        assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in url
        assert "X-Amz-Expires=300" in url
        assert f"versionId={version.version_id}" in url
        response = web.get(url)
        assert response.status_code == 200
        assert response.content == content
        assert response.headers["content-disposition"] == "attachment"
        assert response.headers["cache-control"] == "private, no-store"


def test_uploads_are_encrypted_with_the_key_and_typed(bucket: Bucket, web: httpx.Client) -> None:
    key = new_key(DocumentKind.IDENTIFICATION)
    ticket = bucket.store.upload_ticket(key, "image/png", rules.MAX_BYTES, 900)
    assert post(web, ticket, b"\x89PNG\r\n\x1a\n", "id.png").status_code in (200, 201, 204)
    head = bucket.s3.head_object(Bucket=bucket.name, Key=key)
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"] == bucket.kms_key_arn
    assert head["ContentType"] == "image/png"


def test_objects_are_private(bucket: Bucket, web: httpx.Client, moto_server: str) -> None:
    key = new_key()
    ticket = bucket.store.upload_ticket(key, "application/pdf", rules.MAX_BYTES, 900)
    assert post(web, ticket, PDF_1).status_code in (200, 201, 204)
    assert web.get(f"{moto_server}/{bucket.name}/{key}").status_code == 403


def test_versions_are_read_page_by_page_and_deletions_left_out(bucket: Bucket, web: httpx.Client) -> None:
    donor = f"donor-{uuid.uuid4().hex[:8]}"
    keys = [rules.object_key(donor, DocumentKind.OTHER, f"doc-{i}") for i in range(3)]
    for key in keys:
        ticket = bucket.store.upload_ticket(key, "application/pdf", rules.MAX_BYTES, 900)
        assert post(web, ticket, PDF_1).status_code in (200, 201, 204)
    bucket.s3.delete_object(Bucket=bucket.name, Key=keys[0])  # a delete marker on top of doc-0
    paged = S3DocumentStore(bucket.s3, bucket.name, bucket.kms_key_arn, page_size=1)
    entries = paged.versions(rules.donor_prefix(donor))
    assert [k for k, _ in entries] == keys
    assert [v.latest for _, v in entries] == [False, True, True]
    # The trailing slash keeps donor "ab" out of donor "abc"'s listing.
    assert paged.versions(rules.donor_prefix(donor[:-1])) == []


def test_bucket_is_private_versioned_kms_encrypted_and_tls_only(moto_server: str) -> None:
    made = _new_bucket(moto_server, require_tls=True)
    s3, name = made.s3, made.name
    block = s3.get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"]
    assert block == {
        "BlockPublicAcls": True,
        "IgnorePublicAcls": True,
        "BlockPublicPolicy": True,
        "RestrictPublicBuckets": True,
    }
    assert s3.get_bucket_ownership_controls(Bucket=name)["OwnershipControls"]["Rules"] == [
        {"ObjectOwnership": "BucketOwnerEnforced"}
    ]
    assert s3.get_bucket_versioning(Bucket=name)["Status"] == "Enabled"
    [rule] = s3.get_bucket_encryption(Bucket=name)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rule["ApplyServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "aws:kms",
        "KMSMasterKeyID": made.kms_key_arn,
    }
    assert rule["BucketKeyEnabled"] is True
    [statement] = json.loads(s3.get_bucket_policy(Bucket=name)["Policy"])["Statement"]
    assert statement["Effect"] == "Deny"
    assert statement["Principal"] == "*"
    assert statement["Action"] == "s3:*"
    assert sorted(statement["Resource"]) == [f"arn:aws:s3:::{name}", f"arn:aws:s3:::{name}/*"]
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    [cors] = s3.get_bucket_cors(Bucket=name)["CORSRules"]
    assert "POST" in cors["AllowedMethods"]
    assert "x-amz-version-id" in cors["ExposeHeaders"]
    # Running it again changes nothing and says so.
    assert ensure_documents_bucket(moto_server, REGION, name, made.kms_key_arn) is False
    assert s3.get_bucket_versioning(Bucket=name)["Status"] == "Enabled"


def test_browsers_may_post_uploads_across_origins(
    bucket: Bucket, web: httpx.Client, moto_server: str
) -> None:
    preflight = web.options(
        f"{moto_server}/{bucket.name}",
        headers={"Origin": "https://app.example.org", "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status_code == 200
    assert "POST" in preflight.headers["access-control-allow-methods"]


def test_s3_failures_are_unavailable_without_naming_the_bucket(moto_server: str) -> None:
    name = f"bloodbank-missing-{uuid.uuid4().hex[:8]}"
    store = S3DocumentStore(s3_client(moto_server, REGION), name, "")
    with pytest.raises(DependencyUnavailable) as caught:
        store.versions("donors/donor-ann/")
    assert "NoSuchBucket" in str(caught.value)
    assert name not in str(caught.value)
    assert "donor-ann" not in str(caught.value)
