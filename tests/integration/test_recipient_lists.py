"""Recipient lists and templates: one contract for the fake, moto and DynamoDB Local; then the
import from S3 (moto, in process) through ``handler.import_recipients`` with real-shaped events."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import pytest
from moto import mock_aws

from bloodbank.adapters.s3_documents import S3DocumentStore
from bloodbank.adapters.s3_recipients import S3RecipientFiles
from bloodbank.cursor import CursorCodec
from bloodbank.domain import email_templates, recipients
from bloodbank.domain.campaigns import SuppressionReason, address_key
from bloodbank.domain.recipients import ImportCounts, ListMember, ListStatus
from bloodbank.errors import BadUserInput, Conflict
from bloodbank.fakes import InMemoryEmailTemplates, InMemoryRecipientLists
from bloodbank.local import stack
from bloodbank.ports import EmailTemplates, RecipientLists
from bloodbank.storage.recipients import DynamoRecipientLists
from bloodbank.storage.templates import DynamoEmailTemplates
from tests.conftest import PAGE_SECRET, REGION, S3World, World, moto_bucket
from tests.conftest import s3_event as shared_s3_event

NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


@dataclass
class Stores:
    engine: str
    lists: RecipientLists
    templates: EmailTemplates


def _dynamo(engine: str, endpoint: str | None) -> Stores:
    binding = stack.open_table(endpoint, REGION, f"bloodbank-{uuid.uuid4().hex[:12]}")
    cursors = CursorCodec(PAGE_SECRET)
    return Stores(engine, DynamoRecipientLists(binding, cursors), DynamoEmailTemplates(binding, cursors))


@pytest.fixture(params=["memory", "moto", "dynamodb-local"])
def stores(request: pytest.FixtureRequest) -> Iterator[Stores]:
    if request.param == "memory":
        cursors = CursorCodec(PAGE_SECRET)
        yield Stores("memory", InMemoryRecipientLists(cursors), InMemoryEmailTemplates(cursors))
    elif request.param == "moto":
        with mock_aws():
            yield _dynamo("moto", None)
    else:
        yield _dynamo("dynamodb-local", request.getfixturevalue("dynamodb_local"))


def a_list(n: int) -> recipients.RecipientList:
    return recipients.new_list(f"list-{n:03d}", f"List {n}", NOW + timedelta(seconds=n), "staff-1")


def test_lists_round_trip_page_newest_first_and_ids_are_unique(stores: Stores) -> None:
    for n in range(5):
        stores.lists.create(a_list(n))
    with pytest.raises(Conflict):
        stores.lists.create(a_list(2))
    assert stores.lists.get("list-003") == a_list(3)
    assert stores.lists.get("nope") is None
    pages, token = [], None
    while True:
        page = stores.lists.list(2, token)
        pages.append([item.id for item in page.items])
        if (token := page.next_token) is None:
            break
    assert pages == [["list-004", "list-003"], ["list-002", "list-001"], ["list-000"]]
    with pytest.raises(BadUserInput):
        stores.lists.list(2, "forged")


def test_save_is_conditional_on_status_and_upload(stores: Stores) -> None:
    stored = a_list(1)
    stores.lists.create(stored)
    waiting = replace(stored, upload_id="up-1")
    assert stores.lists.save(waiting, (ListStatus.EMPTY,))
    importing = replace(waiting, status=ListStatus.IMPORTING)
    assert not stores.lists.save(importing, (ListStatus.EMPTY,), "up-other")
    assert stores.lists.save(importing, (ListStatus.EMPTY,), "up-1")
    assert not stores.lists.save(importing, (ListStatus.EMPTY,), "up-1")  # not EMPTY any more
    done = replace(
        importing,
        status=ListStatus.READY,
        variables=("first_name", "city"),
        counts=ImportCounts(10, 7, 1, 1, 1),
        report_key="recipient-lists/list-001/reports/up-1.csv",
    )
    assert stores.lists.save(done, (ListStatus.IMPORTING,), "up-1")
    assert stores.lists.get(stored.id) == done


def test_members_dedupe_by_address_and_page_in_key_order(stores: Stores) -> None:
    stores.lists.create(a_list(1))
    members = [
        ListMember(f"p{i:03d}@example.org", {"first_name": f"P{i}", "city": "Zürich"}) for i in range(60)
    ]
    stores.lists.add_members("list-001", members)
    stores.lists.add_members("list-001", [ListMember("p007@example.org", {"first_name": "Again"})])
    stores.lists.add_members("list-001", [ListMember("bare@example.org", {})])
    seen: list[ListMember] = []
    token = None
    while True:
        page = stores.lists.members("list-001", 25, token)
        assert len(page.items) <= 25
        seen.extend(page.items)
        if (token := page.next_token) is None:
            break
    assert len(seen) == 61  # the second write of p007 replaced the first
    assert [address_key(m.email) for m in seen] == sorted(address_key(m.email) for m in seen)
    by_email = {m.email: dict(m.variables) for m in seen}
    assert by_email["p007@example.org"] == {"first_name": "Again"}
    assert by_email["p001@example.org"] == {"first_name": "P1", "city": "Zürich"}
    assert by_email["bare@example.org"] == {}
    assert stores.lists.members("list-other", 25, None).items == []


def test_templates_round_trip_and_page_newest_first(stores: Stores) -> None:
    made = []
    for n in range(3):
        draft = email_templates.validate_new(
            {"name": f"T{n}", "subject": "Hi {{ first_name }}", "html": "<p>{{ first_name }}</p>" * 2000}
        )
        made.append(email_templates.new_template(f"tpl-{n}", draft, NOW + timedelta(minutes=n), "staff-1"))
        stores.templates.create(made[-1])
    with pytest.raises(Conflict):
        stores.templates.create(made[0])
    assert stores.templates.get("tpl-1") == made[1]
    assert stores.templates.get("nope") is None
    first = stores.templates.list(2, None)
    assert [t.id for t in first.items] == ["tpl-2", "tpl-1"]
    assert [t.id for t in stores.templates.list(2, first.next_token).items] == ["tpl-0"]


# --- the import from S3 ---------------------------------------------------------------------------
BUCKET = "bloodbank-docs-test"


def s3_event(key: str, size: int, bucket: str = BUCKET, name: str = "ObjectCreated:Post") -> dict[str, Any]:
    return shared_s3_event(key, size, bucket, name)


@pytest.fixture
def s3_world(world: World, handler: ModuleType) -> Iterator[S3World]:
    with moto_bucket(BUCKET) as (s3, key_arn):
        service = world.container.recipient_lists
        service.files = S3RecipientFiles(s3, BUCKET, key_arn, chunk_bytes=4096)
        service.uploads = S3DocumentStore(s3, BUCKET, key_arn)
        service.bucket = BUCKET
        yield S3World(world, handler, s3)


def upload(env: S3World, body: bytes, name: str = "Donors 2026") -> tuple[str, str]:
    """Create a list, get its form, and store the file where the form says (moto does not run
    presigned POST policies in process: a put of the same key is what S3 would then hold)."""
    from tests.unit.test_recipients import STAFF

    service = env.world.container.recipient_lists
    created = service.create(STAFF, {"name": name})
    ticket = service.request_upload(STAFF, created.id)
    assert ticket.key == f"recipient-lists/{created.id}/uploads/{ticket.key.rsplit('/', 1)[1]}"
    assert (ticket.content_type, ticket.max_bytes) == ("text/csv", 200 * 1024 * 1024)
    env.s3.put_object(Bucket=BUCKET, Key=ticket.key, Body=body, ContentType="text/csv")
    return created.id, ticket.key


def test_an_upload_is_imported_from_a_real_shaped_s3_event(s3_world: S3World) -> None:
    suppressions = s3_world.world.container.suppressions
    suppressions.suppress(address_key("gone@example.org"), SuppressionReason.COMPLAINT, NOW)
    lines = ["email,first_name"] + [f"Person.{i}@Example.org,P{i}" for i in range(2000)]
    lines += ["person.5@example.org,Again", "gone@example.org,Gone", "broken,X", '"q@example.org","a\nb"']
    body = ("\n".join(lines) + "\n").encode("utf-16")
    list_id, key = upload(s3_world, body)
    event = s3_event(key, len(body))
    assert s3_world.handler.import_recipients(event, None) == {"READY": 1, "FAILED": 0, "skipped": 0}
    service = s3_world.world.container.recipient_lists
    stored = service.lists.get(list_id)
    assert stored is not None
    assert stored.status is ListStatus.READY
    assert stored.counts == ImportCounts(rows=2004, imported=2001, duplicates=1, invalid=1, suppressed=1)
    assert stored.report_key == key.replace("/uploads/", "/reports/")
    report = s3_world.s3.get_object(Bucket=BUCKET, Key=stored.report_key)
    assert report["ServerSideEncryption"] == "aws:kms"
    assert sorted(report["Body"].read().decode().splitlines()[1:]) == [
        "2002,2002,DUPLICATE,the same address is on an earlier row",
        "2003,2003,SUPPRESSED,the address is suppressed or unsubscribed",
        "2004,2004,INVALID_ADDRESS,An email address must have an @-sign.",
    ]
    # A redelivered event changes nothing and says so.
    assert s3_world.handler.import_recipients(event, None) == {"READY": 0, "FAILED": 0, "skipped": 1}
    assert service.lists.get(list_id) == stored


def test_a_key_with_spaces_arrives_encoded_and_other_events_are_skipped(s3_world: S3World) -> None:
    service = s3_world.world.container.recipient_lists
    event = s3_event("recipient-lists/some list/uploads/x y.csv", 10)
    assert event["Records"][0]["s3"]["object"]["key"] == "recipient-lists/some+list/uploads/x+y.csv"
    assert s3_world.handler.import_recipients(event, None)["skipped"] == 1  # not a key we hand out
    list_id, key = upload(s3_world, b"email\na@example.org\n")
    removed = s3_event(key, 10, name="ObjectRemoved:Delete")
    assert s3_world.handler.import_recipients(removed, None)["skipped"] == 1
    assert s3_world.handler.import_recipients({"Records": [{"nonsense": True}]}, None)["skipped"] == 1
    stored = service.lists.get(list_id)
    assert stored is not None
    assert stored.status is ListStatus.EMPTY


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"PK\x03\x04" + bytes(range(256)) * 40, "workbook"),
        (bytes(range(256)) * 40, "not text"),
        (b"name,phone\nAda,+14155550123\n", "no email column"),
        (b"email,name\n" + b"a@example.org,Ada\n" * 300, "larger than"),  # over the test's limit
        (b'email,name\na@example.org,"unclosed\n' + b"y" * 300_000, "not valid CSV"),
    ],
)
def test_oversized_and_garbled_files_fail_the_list_with_the_reason(
    s3_world: S3World, body: bytes, says: str
) -> None:
    service = s3_world.world.container.recipient_lists
    if says == "larger than":
        service.max_bytes = 4096
    list_id, key = upload(s3_world, body)
    assert s3_world.handler.import_recipients(s3_event(key, len(body)), None)["FAILED"] == 1
    stored = service.lists.get(list_id)
    assert stored is not None
    assert stored.status is ListStatus.FAILED
    assert stored.failure is not None
    assert says in stored.failure


def test_the_report_link_and_a_gone_upload(s3_world: S3World) -> None:
    from tests.unit.test_recipients import STAFF

    service = s3_world.world.container.recipient_lists
    list_id, key = upload(s3_world, b"email\nnot-an-address\n")
    s3_world.handler.import_recipients(s3_event(key, 30), None)
    stored = service.lists.get(list_id)
    assert stored is not None
    url = service.report_url(STAFF, stored)
    assert url is not None
    assert "X-Amz-Signature" in url
    assert "response-content-disposition=attachment" in url
    other_id, other_key = upload(s3_world, b"email\na@example.org\n", name="Other")
    s3_world.s3.delete_object(Bucket=BUCKET, Key=other_key)
    assert s3_world.handler.import_recipients(s3_event(other_key, 30), None)["FAILED"] == 1
    gone = service.lists.get(other_id)
    assert gone is not None
    assert gone.failure == "the uploaded file is gone: upload it again"
    assert io.BytesIO  # (imported for symmetry with the unit tests' helpers)
