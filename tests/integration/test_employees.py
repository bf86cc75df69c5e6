"""Staff profiles: one contract for the fake, moto and DynamoDB Local (locking, search by prefix
with accents and case, departments, pages); then photos through ``handler.process_employee_photo``
with real-shaped S3 events against moto's S3 in process."""

from __future__ import annotations

import io
import urllib.parse
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import pytest
from moto import mock_aws
from PIL import ExifTags, Image

from bloodbank.adapters.provisioning import client
from bloodbank.adapters.s3_documents import S3DocumentStore
from bloodbank.adapters.s3_photos import S3PhotoFiles
from bloodbank.cursor import CursorCodec
from bloodbank.domain import employees as rules
from bloodbank.domain.employees import Employee, EmployeeRole, EmployeeStatus, PhotoUploadStatus
from bloodbank.errors import BadUserInput, Conflict
from bloodbank.fakes import InMemoryEmployees, InMemoryFieldCipher
from bloodbank.local import stack
from bloodbank.ports import EmployeeRepository
from bloodbank.storage import keys
from bloodbank.storage.employees import DynamoEmployees
from tests.conftest import PAGE_SECRET, REGION, S3World, World, moto_bucket
from tests.conftest import s3_event as shared_s3_event
from tests.integration.conftest import raw_reader
from tests.unit.test_employee_photos import encoded, exif_with_gps, two_halves
from tests.unit.test_employees import ADA_ID, ADMIN

NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
BUCKET = "bloodbank-employee-photos-test"


@dataclass
class Store:
    engine: str
    employees: EmployeeRepository
    raw: Any  # (pk, sk) -> the item as DynamoDB stores it, or None (memory)


def _dynamo(engine: str, endpoint: str | None) -> Store:
    name = f"bloodbank-{uuid.uuid4().hex[:12]}"
    binding = stack.open_table(endpoint, REGION, name)
    cursors = CursorCodec(PAGE_SECRET)
    return Store(engine, DynamoEmployees(binding, cursors, InMemoryFieldCipher()), raw_reader(endpoint, name))


@pytest.fixture(params=["memory", "moto", "dynamodb-local"])
def store(request: pytest.FixtureRequest) -> Iterator[Store]:
    if request.param == "memory":
        yield Store("memory", InMemoryEmployees(CursorCodec(PAGE_SECRET)), lambda pk, sk: None)
    elif request.param == "moto":
        with mock_aws():
            yield _dynamo("moto", None)
    else:
        yield _dynamo("dynamodb-local", request.getfixturevalue("dynamodb_local"))


def person(n: int, first: str, last: str, department: str | None = None, **more: Any) -> Employee:
    values = {"email": f"e{n}@example.org", "first_name": first, "last_name": last, **more}
    if department:
        values["department"] = department
    return rules.new_employee(
        f"emp-{n:03d}", rules.validate_new(values), NOW + timedelta(seconds=n), "admin-1", approved=True
    )


def test_round_trip_with_the_phone_sealed_and_one_profile_per_id(store: Store) -> None:
    ada = person(1, "Ada", "Okafor", "Collections", phone="+14155550123", role=EmployeeRole.NURSE)
    store.employees.create(ada)
    found = store.employees.get(ada.id, consistent=True)
    assert found is not None
    assert (found.phone, found.role, found.department, found.status) == (
        "+14155550123",
        EmployeeRole.NURSE,
        "Collections",
        EmployeeStatus.ACTIVE,
    )
    assert replace(found, private=ada.private) == ada
    raw = store.raw(keys.employee(ada.id).pk, "EMPLOYEE")
    if raw is not None:  # a raw read shows ciphertext, never the number
        assert "+14155550123" not in repr(raw)
        assert "B" in raw["phone"]
    with pytest.raises(Conflict):
        store.employees.create(replace(ada, first_name="Other"))


def test_optimistic_locking(store: Store) -> None:
    ada = person(1, "Ada", "Okafor")
    store.employees.create(ada)
    first = rules.apply_changes(ada, {"job_title": "Nurse"}, NOW)
    store.employees.save(first, ada)
    with pytest.raises(Conflict):
        store.employees.save(rules.apply_changes(ada, {"job_title": "Lost update"}, NOW), ada)
    now = store.employees.get(ada.id, consistent=True)
    assert now is not None
    assert (now.job_title, now.version) == ("Nurse", 2)


def test_search_by_prefix_ignores_case_and_accents_and_pages(store: Store) -> None:
    people = [
        person(1, "Zoë", "Ökafor", "Lab"),
        person(2, "Ada", "OKAFOR", "Collections"),
        person(3, "Ben", "Olsen", "lab"),
        person(4, "Chidi", "Okoro", "Lab"),
        person(5, "Dana", "Smith", "Lab"),
    ]
    for p in people:
        store.employees.create(p)
    pending = replace(person(6, "Ola", "Okafor"), status=EmployeeStatus.PENDING)
    store.employees.create(pending)

    def ids(query: str, department: str | None = None, status: EmployeeStatus | None = None) -> list[str]:
        return [e.id for e in store.employees.search(rules.search(query, department, status), 20, None).items]

    assert ids("okaf") == ["emp-002", "emp-006", "emp-001"]  # okafor ada < okafor ola < okafor zoe
    assert ids("ÓKAFOR Z") == ["emp-001"]
    assert ids("ok", status=EmployeeStatus.ACTIVE) == ["emp-002", "emp-001", "emp-004"]
    assert ids("o", department="LAB") == ["emp-001", "emp-004", "emp-003"]  # 'Lab' and 'lab' are one
    assert ids("", department="Lab") == ["emp-001", "emp-004", "emp-003", "emp-005"]
    assert ids("x") == []
    wanted = rules.search("o", None, EmployeeStatus.ACTIVE)
    seen: list[str] = []
    token: str | None = None
    while True:
        page = store.employees.search(wanted, 2, token)
        seen += [e.id for e in page.items]
        token = page.next_token
        if token is None:
            break
    assert seen == ["emp-002", "emp-001", "emp-004", "emp-003"]
    first = store.employees.search(wanted, 2, None)
    assert first.next_token is not None
    with pytest.raises(BadUserInput):
        store.employees.search(rules.search("ok", None, None), 2, first.next_token)


def test_a_change_of_name_or_department_moves_the_profile_in_the_indexes(store: Store) -> None:
    ada = person(1, "Ada", "Okafor", "Lab")
    store.employees.create(ada)
    moved = rules.apply_changes(ada, {"last_name": "Smith", "department": "Collections"}, NOW)
    store.employees.save(moved, ada)
    assert store.employees.search(rules.search("okafor", None, None), 5, None).items == []
    assert [
        e.id for e in store.employees.search(rules.search("smith", "collections", None), 5, None).items
    ] == ["emp-001"]
    assert store.employees.search(rules.search("", "lab", None), 5, None).items == []


# --- photos through the handler -------------------------------------------------------------------
def s3_event(key: str, size: int, name: str = "ObjectCreated:Post") -> dict[str, Any]:
    return shared_s3_event(key, size, BUCKET, name)


@pytest.fixture
def s3_world(world: World, handler: ModuleType) -> Iterator[S3World]:
    with moto_bucket(BUCKET) as (s3, key_arn):
        service = world.container.employees
        service.files = S3PhotoFiles(s3, BUCKET, key_arn)
        service.uploads = S3DocumentStore(s3, BUCKET, key_arn)
        service.bucket = BUCKET
        service.create(ADA_ID, {"email": "ada@example.org", "first_name": "Ada", "last_name": "Okafor"})
        yield S3World(world, handler, s3)


def upload(
    env: S3World, body: bytes, content_type: str = "image/jpeg", ticket_type: str | None = None
) -> str:
    """Get a form and store the file where it says (moto does not run POST policies in process: a put
    of the same key, with the type the client sent, is what S3 would then hold)."""
    ticket = env.world.container.employees.request_photo_upload(ADA_ID, ticket_type or content_type)
    env.s3.put_object(Bucket=BUCKET, Key=ticket.key, Body=body, ContentType=content_type)
    return ticket.key


def profile(env: S3World) -> Employee:
    found = env.world.container.employees.get(ADMIN, "ada")
    assert found is not None
    return found


def test_a_good_jpeg_becomes_thumbnails_in_the_bucket(s3_world: S3World) -> None:
    key = upload(s3_world, encoded(two_halves(), "JPEG", exif=exif_with_gps()))
    assert s3_world.handler.process_employee_photo(s3_event(key, 1), None) == {
        "ACCEPTED": 1,
        "REJECTED": 0,
        "skipped": 0,
    }
    ada = profile(s3_world)
    assert ada.photo is not None
    assert ada.last_upload is not None
    assert ada.last_upload.status is PhotoUploadStatus.ACCEPTED
    for thumb in ada.photo.thumbnails:
        assert thumb.key.startswith("employee-photos/thumbnails/ada/")
        stored = s3_world.s3.get_object(Bucket=BUCKET, Key=thumb.key)
        assert stored["ContentType"] == "image/webp"
        assert stored["ServerSideEncryption"] == "aws:kms"
        image = Image.open(io.BytesIO(stored["Body"].read()))
        assert image.size == (thumb.size, thumb.size)
        assert not image.getexif()
    url = s3_world.world.container.employees.thumbnail_url(ada.photo.thumbnails[0])
    assert "X-Amz-Signature" in url
    assert "X-Amz-Expires=600" in url
    # A redelivered event does nothing more.
    assert s3_world.handler.process_employee_photo(s3_event(key, 1), None)["skipped"] == 1
    assert profile(s3_world).version == ada.version


def test_a_png_with_exif_loses_its_location(s3_world: S3World) -> None:
    data = encoded(two_halves(), "PNG", exif=exif_with_gps(orientation=6))
    assert Image.open(io.BytesIO(data)).getexif().get_ifd(ExifTags.IFD.GPSInfo)
    key = upload(s3_world, data, "image/png")
    assert s3_world.handler.process_employee_photo(s3_event(key, len(data)), None)["ACCEPTED"] == 1
    photo = profile(s3_world).photo
    assert photo is not None
    body = s3_world.s3.get_object(Bucket=BUCKET, Key=photo.thumbnails[1].key)["Body"].read()
    image = Image.open(io.BytesIO(body))
    assert not image.getexif().get_ifd(ExifTags.IFD.GPSInfo)
    assert "exif" not in image.info


@pytest.mark.parametrize(
    ("body", "content_type", "ticket_type", "says"),
    [
        (b"I am a text file named holiday.jpg\n", "image/jpeg", None, "not a JPEG, PNG or WebP"),
        (encoded(two_halves(), "JPEG")[:900], "image/jpeg", None, "truncated"),
        (b"\xff\xd8\xff" + bytes(5 * 1024 * 1024), "image/jpeg", None, "larger than 5 MiB"),
        (encoded(two_halves(), "GIF"), "image/gif", "image/jpeg", "only JPEG, PNG or WebP"),
    ],
    ids=["text-renamed-jpg", "truncated", "oversized", "wrong-type"],
)
def test_bad_uploads_are_rejected_with_the_reason_and_never_crash(
    s3_world: S3World, body: bytes, content_type: str, ticket_type: str | None, says: str
) -> None:
    good = upload(s3_world, encoded(two_halves(), "JPEG"))
    s3_world.handler.process_employee_photo(s3_event(good, 1), None)
    before = profile(s3_world).photo
    key = upload(s3_world, body, content_type, ticket_type)
    assert s3_world.handler.process_employee_photo(s3_event(key, len(body)), None) == {
        "ACCEPTED": 0,
        "REJECTED": 1,
        "skipped": 0,
    }
    ada = profile(s3_world)
    assert ada.last_upload is not None
    assert ada.last_upload.status is PhotoUploadStatus.REJECTED
    assert ada.last_upload.reason is not None
    assert says in ada.last_upload.reason
    assert ada.photo == before  # the accepted photo is still shown


def test_other_records_and_keys_are_skipped(s3_world: S3World) -> None:
    handler = s3_world.handler
    assert (
        handler.process_employee_photo(s3_event("employee-photos/uploads/a b/c d", 1), None)["skipped"] == 1
    )
    key = upload(s3_world, encoded(two_halves(), "JPEG"))
    assert handler.process_employee_photo(s3_event(key, 1, name="ObjectRemoved:Delete"), None)["skipped"] == 1
    assert handler.process_employee_photo({"Records": [{"nonsense": True}]}, None)["skipped"] == 1
    assert (
        handler.process_employee_photo(s3_event("employee-photos/thumbnails/ada/x-128.webp", 1), None)[
            "skipped"
        ]
        == 1
    )
    assert profile(s3_world).last_upload is None


def test_the_local_bucket_notifies_both_upload_queues_in_one_configuration() -> None:
    """The local server's stand-in for the two S3 triggers: one notification configuration with a
    queue per prefix (putting a second configuration would have replaced the first)."""
    import json

    from bloodbank.adapters.provisioning import RECIPIENT_UPLOADS, UploadRoute, ensure_upload_notifications

    photos = UploadRoute("photos-test", rules.UPLOADS_PREFIX)
    with moto_bucket(BUCKET) as (s3, _):
        urls = ensure_upload_notifications(None, REGION, BUCKET, (RECIPIENT_UPLOADS, photos))
        configured = s3.get_bucket_notification_configuration(Bucket=BUCKET)["QueueConfigurations"]
        assert len(configured) == 2
        s3.put_object(Bucket=BUCKET, Key=rules.upload_key("ada", "u1"), Body=b"x")
        s3.put_object(Bucket=BUCKET, Key="recipient-lists/l1/uploads/u2.csv", Body=b"email\n")
        s3.put_object(Bucket=BUCKET, Key=rules.thumbnail_key("ada", "u1", 128), Body=b"x")
        sqs = client("sqs", None, REGION)

        def keys_heard(url: str) -> list[str]:
            messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
            bodies = [json.loads(m["Body"]) for m in messages]
            return [
                urllib.parse.unquote_plus(r["s3"]["object"]["key"])
                for b in bodies
                for r in b.get("Records", [])
            ]

        assert keys_heard(urls[photos.queue_name]) == [rules.upload_key("ada", "u1")]
        assert keys_heard(urls[RECIPIENT_UPLOADS.queue_name]) == ["recipient-lists/l1/uploads/u2.csv"]


def test_the_local_server_processes_photo_uploads_from_the_bucket_notifications(s3_world: S3World) -> None:
    """What ``bloodbank serve`` does in place of the S3 trigger: the bucket notifies a queue, a
    thread of LocalWorkers hands each record to the photo processing."""
    import time

    from bloodbank.adapters.provisioning import RECIPIENT_UPLOADS, UploadRoute, ensure_upload_notifications
    from bloodbank.local.workers import LocalWorkers

    photos = UploadRoute("photos-local", rules.UPLOADS_PREFIX)
    urls = ensure_upload_notifications(None, REGION, BUCKET, (RECIPIENT_UPLOADS, photos))
    workers = LocalWorkers(
        s3_world.world.container, client("sqs", None, REGION), "", "", urls[photos.queue_name]
    )
    workers.start()
    try:
        upload(s3_world, encoded(two_halves(), "JPEG", exif=exif_with_gps()))
        deadline = time.monotonic() + 20
        while profile(s3_world).photo is None and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        workers.stop()
    photo = profile(s3_world).photo
    assert photo is not None
    assert [t.size for t in photo.thumbnails] == [128, 512]
