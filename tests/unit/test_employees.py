"""Staff profiles: validation, who may change what, approval, search rules, and photo processing
with the in-memory fakes (the real Pillow renderer: it is pure)."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from bloodbank.adapters.images import PillowThumbnails
from bloodbank.cursor import CursorCodec
from bloodbank.domain import employees as rules
from bloodbank.domain.employees import EmployeeEventType, EmployeeRole, EmployeeStatus, PhotoUploadStatus
from bloodbank.domain.identity import Group, Identity
from bloodbank.errors import BadUserInput, Conflict, Forbidden, NotFound
from bloodbank.fakes import (
    FixedClock,
    InMemoryDocumentStore,
    InMemoryEmployees,
    InMemoryPhotoFiles,
    RecordingEmployeeEvents,
    SequentialIds,
)
from bloodbank.services.employees import EmployeeService
from tests.conftest import PAGE_SECRET

ADA = {"email": "ada@example.org", "first_name": "Ada", "last_name": "Okafor"}


def who(sub: str, *groups: Group) -> Identity:
    return Identity(sub=sub, username=sub, groups=frozenset(groups), token_use="access")


ADMIN = who("admin-1", Group.ADMINS)
ADA_ID = who("ada", Group.STAFF)
BEN_ID = who("ben", Group.STAFF)
DONOR = who("donor-1", Group.DONORS)


@pytest.fixture
def service() -> EmployeeService:
    return EmployeeService(
        InMemoryEmployees(CursorCodec(PAGE_SECRET)),
        InMemoryDocumentStore(),
        InMemoryPhotoFiles(),
        PillowThumbnails(),
        RecordingEmployeeEvents(),
        FixedClock(),
        SequentialIds("upload"),
    )


def events_of(service: EmployeeService) -> list[tuple[str, str, str]]:
    events = service.events
    assert isinstance(events, RecordingEmployeeEvents)
    return [(e.type.value, e.employee_id, e.status.value) for e in events.published]


# --- validation -----------------------------------------------------------------------------------
def test_a_new_profile_lists_every_bad_field_at_once() -> None:
    with pytest.raises(BadUserInput) as bad:
        rules.validate_new({"email": "not-an-address", "first_name": " ", "phone": "0207 946 0000"})
    fields = {p.field for p in bad.value.problems}
    assert fields == {"input.email", "input.firstName", "input.phone", "input.lastName"}
    assert any(p.message == "is required" for p in bad.value.problems if p.field == "input.lastName")


def test_values_are_normalized() -> None:
    cleaned = rules.validate_new(
        {**ADA, "phone": "+1 415 555 0123", "job_title": "  Senior   nurse ", "department": "Collections"}
    )
    assert cleaned["phone"] == "+14155550123"
    assert cleaned["job_title"] == "Senior nurse"


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"job_title": "x" * 101}, "input.jobTitle"),
        ({"department": "1234"}, "input.department"),
        ({"preferred_name": "\u202eevil"}, "input.preferredName"),
        ({"first_name": None}, "input.firstName"),
        ({"role": "BOSS"}, "input.role"),
    ],
)
def test_bad_changes_name_the_field(values: dict[str, object], field: str) -> None:
    with pytest.raises(BadUserInput) as bad:
        rules.validate_changes(values)
    assert [p.field for p in bad.value.problems] == [field]


def test_sort_name_and_department_ignore_case_and_accents() -> None:
    employee = rules.new_employee(
        "e1",
        {**ADA, "first_name": "Zoë", "last_name": "Ødegård", "department": "Lab — North"},
        FixedClock()(),
        "e1",
        approved=False,
    )
    assert employee.sort_name == "ødegard zoe"  # NFKD keeps ø (a letter of its own), drops the ring of å
    assert employee.department_key == "lab north"


# --- who may do what ------------------------------------------------------------------------------
def test_a_staff_member_creates_their_own_pending_profile(service: EmployeeService) -> None:
    created = service.create(ADA_ID, ADA)
    assert (created.id, created.status, created.version, created.created_by) == (
        "ada",
        EmployeeStatus.PENDING,
        1,
        "ada",
    )
    assert events_of(service) == [("EMPLOYEE_PROFILE_CREATED", "ada", "PENDING")]
    with pytest.raises(Conflict):
        service.create(ADA_ID, ADA)


def test_only_admins_create_for_others_or_set_role_and_department(service: EmployeeService) -> None:
    with pytest.raises(Forbidden):
        service.create(ADA_ID, ADA, employee_id="someone-else")
    with pytest.raises(Forbidden, match="role"):
        service.create(ADA_ID, {**ADA, "role": EmployeeRole.NURSE})
    with pytest.raises(Forbidden):
        service.create(DONOR, ADA)
    created = service.create(ADMIN, {**ADA, "department": "Lab", "role": EmployeeRole.NURSE}, "ada")
    assert (created.status, created.approved_by) == (EmployeeStatus.ACTIVE, "admin-1")
    assert events_of(service) == [
        ("EMPLOYEE_PROFILE_CREATED", "ada", "ACTIVE"),
        ("EMPLOYEE_PROFILE_APPROVED", "ada", "ACTIVE"),
    ]


def test_employees_change_their_own_fields_only(service: EmployeeService) -> None:
    service.create(ADA_ID, ADA)
    service.create(BEN_ID, {**ADA, "email": "ben@example.org", "first_name": "Ben"})
    with pytest.raises(Forbidden, match="own profile"):
        service.update(BEN_ID, "ada", 1, {"job_title": "Impostor"})
    with pytest.raises(Forbidden, match="role"):
        service.update(ADA_ID, "ada", 1, {"role": EmployeeRole.MANAGER})
    with pytest.raises(Forbidden, match="department"):
        service.update(ADA_ID, "ada", 1, {"department": "Board"})
    updated = service.update(ADA_ID, "ada", 1, {"preferred_name": "Addy", "phone": "+14155550123"})
    assert (updated.preferred_name, updated.phone, updated.version) == ("Addy", "+14155550123", 2)
    with pytest.raises(Conflict, match="version 2, you had 1"):
        service.update(ADA_ID, "ada", 1, {"job_title": "Nurse"})
    by_admin = service.update(ADMIN, "ada", 2, {"role": EmployeeRole.NURSE, "department": "Collections"})
    assert (by_admin.role, by_admin.department, by_admin.version) == (EmployeeRole.NURSE, "Collections", 3)
    with pytest.raises(NotFound):
        service.update(ADMIN, "nobody", 1, {"job_title": "Nurse"})


def test_approval_and_deactivation_are_for_admins(service: EmployeeService) -> None:
    service.create(ADA_ID, ADA)
    with pytest.raises(Forbidden):
        service.approve(ADA_ID, "ada")
    approved = service.approve(ADMIN, "ada")
    assert (approved.status, approved.approved_by, approved.version) == (EmployeeStatus.ACTIVE, "admin-1", 2)
    assert service.approve(ADMIN, "ada") == approved  # again: nothing changes, nothing announced
    assert [e[0] for e in events_of(service)] == ["EMPLOYEE_PROFILE_CREATED", "EMPLOYEE_PROFILE_APPROVED"]
    with pytest.raises(Forbidden):
        service.deactivate(BEN_ID, "ada")
    with pytest.raises(Forbidden, match="own"):
        service.deactivate(ADMIN, "admin-1")
    gone = service.deactivate(ADMIN, "ada")
    assert gone.status is EmployeeStatus.DEACTIVATED
    with pytest.raises(Forbidden, match="deactivated"):
        service.update(ADA_ID, "ada", gone.version, {"job_title": "Nurse"})


def test_colleagues_see_active_profiles_without_the_phone(service: EmployeeService) -> None:
    service.create(ADA_ID, {**ADA, "phone": "+14155550123"})
    assert service.get(BEN_ID, "ada") is None  # PENDING: only herself and admins
    assert service.get(ADA_ID, "ada") is not None
    service.approve(ADMIN, "ada")
    seen = service.get(BEN_ID, "ada")
    assert seen is not None
    assert service.phone(BEN_ID, seen) is None
    assert service.phone(ADA_ID, seen) == service.phone(ADMIN, seen) == "+14155550123"


def test_search_rules(service: EmployeeService) -> None:
    for sub, first, last, dept in [
        ("e1", "Zoë", "Ökafor", "Lab"),
        ("e2", "Ada", "okafor", "Collections"),
        ("e3", "Ben", "Olsen", "Lab"),
    ]:
        service.create(
            ADMIN,
            {"email": f"{sub}@example.org", "first_name": first, "last_name": last, "department": dept},
            sub,
        )
    service.create(
        who("e4", Group.STAFF), {"email": "e4@example.org", "first_name": "Ola", "last_name": "Okoro"}
    )
    names = [e.id for e in service.search(ADA_ID, "OKA", None, None, None, None).items]
    assert names == ["e2", "e1"]  # 'okafor ada' < 'okafor zoe'
    assert [e.id for e in service.search(ADA_ID, "o", "lab", None, None, None).items] == ["e1", "e3"]
    assert [e.id for e in service.search(ADMIN, "ok", None, None, None, None).items] == ["e2", "e1", "e4"]
    pending = service.search(ADMIN, None, None, EmployeeStatus.PENDING, None, None).items
    assert [e.id for e in pending] == ["e4"]
    with pytest.raises(Forbidden):
        service.search(ADA_ID, None, None, EmployeeStatus.PENDING, None, None)
    first = service.search(ADA_ID, "o", None, None, 1, None)
    assert first.next_token is not None
    second = service.search(ADA_ID, "o", None, None, 1, first.next_token)
    assert [e.id for e in second.items] == ["e1"]
    with pytest.raises(BadUserInput, match="different query"):
        service.search(ADA_ID, "ok", None, None, 1, first.next_token)
    with pytest.raises(BadUserInput):
        service.search(ADA_ID, "x" * 101, None, None, None, None)


# --- photos ---------------------------------------------------------------------------------------
def jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (640, 480), (10, 120, 200)).save(out, format="JPEG")
    return out.getvalue()


def test_a_photo_upload_ticket_is_for_images_and_ones_own_profile(service: EmployeeService) -> None:
    with pytest.raises(NotFound, match="create"):
        service.request_photo_upload(ADA_ID, "image/jpeg")
    service.create(ADA_ID, ADA)
    ticket = service.request_photo_upload(ADA_ID, "image/png")
    assert ticket.key == "employee-photos/uploads/ada/upload-000001"
    assert (ticket.content_type, ticket.max_bytes) == ("image/png", 5 * 1024 * 1024)
    with pytest.raises(BadUserInput) as bad:
        service.request_photo_upload(ADA_ID, "image/gif")
    assert [p.field for p in bad.value.problems] == ["contentType"]
    with pytest.raises(Forbidden):
        service.request_photo_upload(BEN_ID, "image/png", employee_id="ada")
    assert service.request_photo_upload(ADMIN, "image/webp", employee_id="ada").key.startswith(
        "employee-photos/uploads/ada/"
    )


def test_processing_records_thumbnails_or_the_rejection(service: EmployeeService) -> None:
    files = service.files
    assert isinstance(files, InMemoryPhotoFiles)
    service.create(ADA_ID, ADA)
    key = service.request_photo_upload(ADA_ID, "image/jpeg").key
    files.put(key, jpeg(), "image/jpeg")
    result = service.process_photo("", key)
    assert result.outcome == "ACCEPTED"
    ada = service.get(ADA_ID, "ada")
    assert ada is not None
    assert ada.photo is not None
    assert [(t.size, t.key) for t in ada.photo.thumbnails] == [
        (128, "employee-photos/thumbnails/ada/upload-000001-128.webp"),
        (512, "employee-photos/thumbnails/ada/upload-000001-512.webp"),
    ]
    assert all(files.objects[t.key].content_type == "image/webp" for t in ada.photo.thumbnails)
    assert service.process_photo("", key).outcome == "skipped"  # a redelivered event
    bad_key = service.request_photo_upload(ADA_ID, "image/jpeg").key
    files.put(bad_key, b"not an image", "image/jpeg")
    rejected = service.process_photo("", bad_key)
    assert (rejected.outcome, rejected.reason) == ("REJECTED", "the file is not a JPEG, PNG or WebP image")
    after = service.get(ADA_ID, "ada")
    assert after is not None
    assert after.photo == ada.photo  # the accepted photo stays
    assert after.last_upload is not None
    assert (after.last_upload.status, after.last_upload.reason) == (
        PhotoUploadStatus.REJECTED,
        rejected.reason,
    )
    assert service.process_photo("", "recipient-lists/x/uploads/y.csv").outcome == "skipped"
    assert service.process_photo("", "employee-photos/uploads/nobody/u1").outcome == "skipped"


def test_a_photo_landing_during_an_edit_is_applied_to_the_new_version(service: EmployeeService) -> None:
    files = service.files
    assert isinstance(files, InMemoryPhotoFiles)
    service.create(ADA_ID, ADA)
    key = service.request_photo_upload(ADA_ID, "image/jpeg").key
    files.put(key, jpeg(), "image/jpeg")
    repository = service.repository
    assert isinstance(repository, InMemoryEmployees)
    real_save = repository.save

    def edit_first(employee: rules.Employee, previous: rules.Employee) -> None:
        if repository.calls.count(("save", "ada")) == 0:  # the employee saves between read and write
            real_save(rules.apply_changes(previous, {"job_title": "Nurse"}, previous.updated_at), previous)
        real_save(employee, previous)

    repository.save = edit_first  # type: ignore[method-assign]
    assert service.process_photo("", key).outcome == "ACCEPTED"
    final = repository.get("ada")
    assert final is not None
    assert (final.job_title, final.photo is not None, final.version) == ("Nurse", True, 3)
    assert EmployeeEventType.PROFILE_CREATED.value in [e[0] for e in events_of(service)]


def test_the_sns_message_names_the_profile_by_id_with_attributes_to_filter_on() -> None:
    import json

    from bloodbank.adapters.sns import SnsEmployeeEvents
    from bloodbank.domain.employees import EmployeeEvent

    class Client:
        def __init__(self) -> None:
            self.published: list[dict[str, object]] = []

        def publish(self, **request: object) -> dict[str, str]:
            self.published.append(request)
            return {"MessageId": "m-1"}

    sns = Client()
    event = EmployeeEvent(
        EmployeeEventType.PROFILE_CREATED, "ada", EmployeeStatus.PENDING, "Collections", "ada", FixedClock()()
    )
    SnsEmployeeEvents(sns, "arn:aws:sns:us-east-1:123456789012:employees").publish(event)
    [request] = sns.published
    assert request["MessageAttributes"] == {
        "eventType": {"DataType": "String", "StringValue": "EMPLOYEE_PROFILE_CREATED"},
        "status": {"DataType": "String", "StringValue": "PENDING"},
        "department": {"DataType": "String", "StringValue": "Collections"},
    }
    assert json.loads(str(request["Message"])) == {
        "type": "EMPLOYEE_PROFILE_CREATED",
        "employeeId": "ada",
        "status": "PENDING",
        "department": "Collections",
        "by": "ada",
        "at": "2026-11-22T09:00:00Z",
    }
    SnsEmployeeEvents(sns, "").publish(event)  # no topic configured: nothing is sent
    assert len(sns.published) == 1


def test_a_failed_announcement_leaves_the_profile_created(service: EmployeeService) -> None:
    events = service.events
    assert isinstance(events, RecordingEmployeeEvents)
    events.fail_next = 1
    assert service.create(ADA_ID, ADA).status is EmployeeStatus.PENDING
    assert service.get(ADA_ID, "ada") is not None


def test_the_demo_profiles_seed_once() -> None:
    from bloodbank.local import seed

    employees = InMemoryEmployees(CursorCodec(PAGE_SECRET))
    assert seed.seed_employee(employees, "sub-staff", seed.DEMO_EMPLOYEES["staff"], FixedClock()())
    assert not seed.seed_employee(employees, "sub-staff", seed.DEMO_EMPLOYEES["staff"], FixedClock()())
    assert employees.employees["sub-staff"].status is EmployeeStatus.ACTIVE
