"""Staff profiles through HTTP: onboarding and approval, who may change what, version conflicts,
search, photo upload forms and thumbnails' links, and the events announced."""

from __future__ import annotations

import io
import json
from typing import Any

from PIL import Image

from tests.conftest import Api, World, error_codes

FIELDS = """id email firstName lastName preferredName phone jobTitle department role status version
  approvedAt photo { uploadId thumbnails { size contentType url } } lastPhotoUpload { status reason }"""
CREATE = (
    f"mutation($input: CreateEmployeeProfileInput!) {{ createEmployeeProfile(input: $input) {{ {FIELDS} }} }}"
)
UPDATE = (
    f"mutation($input: UpdateEmployeeProfileInput!) {{ updateEmployeeProfile(input: $input) {{ {FIELDS} }} }}"
)
APPROVE = "mutation($id: ID!) { approveEmployee(id: $id) { id status version approvedAt } }"
DEACTIVATE = "mutation($id: ID!) { deactivateEmployee(id: $id) { id status } }"
MINE = f"{{ myEmployeeProfile {{ {FIELDS} }} }}"
GET = f"query($id: ID!) {{ getEmployee(id: $id) {{ {FIELDS} }} }}"
SEARCH = """query($q: String, $d: String, $s: EmployeeStatus, $limit: Int, $next: String) {
  searchEmployees(query: $q, department: $d, status: $s, limit: $limit, nextToken: $next) {
    items { id firstName lastName department status } nextToken } }"""
PHOTO = """mutation($type: String!, $id: ID) {
  requestEmployeePhotoUpload(contentType: $type, employeeId: $id) {
    url fields key contentType maxBytes expiresAt } }"""
ADA = {"email": "ada@example.org", "firstName": "Ada", "lastName": "Okafor", "phone": "+14155550123"}


def ok(body: dict[str, Any]) -> dict[str, Any]:
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data


def onboard(api: Api, sub: str, **values: Any) -> tuple[str, dict[str, Any]]:
    token = api.tokens("Staff", sub=sub)
    created = ok(api.gql(CREATE, {"input": {**ADA, "email": f"{sub}@example.org", **values}}, token=token))
    return token, created["createEmployeeProfile"]


def test_a_new_staff_member_onboards_and_an_admin_approves(api: Api, world: World) -> None:
    ada, created = onboard(api, "ada")
    assert (created["id"], created["status"], created["version"], created["phone"]) == (
        "ada",
        "PENDING",
        1,
        "+14155550123",
    )
    assert ok(api.gql(MINE, token=ada))["myEmployeeProfile"]["id"] == "ada"
    admin = api.tokens("Admins", sub="admin-1")
    approved = ok(api.gql(APPROVE, {"id": "ada"}, token=admin))["approveEmployee"]
    assert (approved["status"], approved["version"]) == ("ACTIVE", 2)
    assert [(e.type.value, e.employee_id) for e in world.employee_events.published] == [
        ("EMPLOYEE_PROFILE_CREATED", "ada"),
        ("EMPLOYEE_PROFILE_APPROVED", "ada"),
    ]
    assert "+14155550123" not in json.dumps([e.document() for e in world.employee_events.published])
    # A colleague sees her now, without her phone number.
    colleague = api.tokens("Staff", sub="ben")
    seen = ok(api.gql(GET, {"id": "ada"}, token=colleague))["getEmployee"]
    assert (seen["firstName"], seen["phone"]) == ("Ada", None)
    assert (
        ok(api.gql(DEACTIVATE, {"id": "ada"}, token=admin))["deactivateEmployee"]["status"] == "DEACTIVATED"
    )
    assert ok(api.gql(GET, {"id": "ada"}, token=colleague))["getEmployee"] is None


def test_staff_cannot_approve_deactivate_or_act_for_others(api: Api) -> None:
    onboard(api, "ada")
    ben, _ = onboard(api, "ben")
    assert error_codes(api.gql(APPROVE, {"id": "ada"}, token=ben)) == ["FORBIDDEN"]
    assert error_codes(api.gql(DEACTIVATE, {"id": "ada"}, token=ben)) == ["FORBIDDEN"]
    body = api.gql(CREATE, {"input": {**ADA, "id": "carol"}}, token=ben)
    assert error_codes(body) == ["FORBIDDEN"]
    assert error_codes(api.gql(MINE, token=api.tokens("Donors"))) == ["FORBIDDEN"]
    assert error_codes(api.gql(MINE)) == ["UNAUTHENTICATED"]


def test_an_employee_editing_someone_elses_profile_is_forbidden(api: Api, world: World) -> None:
    onboard(api, "ada")
    ben, _ = onboard(api, "ben")
    body = api.gql(UPDATE, {"input": {"id": "ada", "expectedVersion": 1, "jobTitle": "Impostor"}}, token=ben)
    assert error_codes(body) == ["FORBIDDEN"]
    assert body["data"] is None
    stored = world.employees.employees["ada"]
    assert (stored.job_title, stored.version) == (None, 1)


def test_role_or_department_by_a_non_admin_is_forbidden(api: Api, world: World) -> None:
    ada, _ = onboard(api, "ada")
    for change in ({"role": "MANAGER"}, {"department": "Board"}):
        body = api.gql(UPDATE, {"input": {"id": "ada", "expectedVersion": 1, **change}}, token=ada)
        assert error_codes(body) == ["FORBIDDEN"], change
    body = api.gql(CREATE, {"input": {**ADA, "role": "NURSE"}}, token=api.tokens("Staff", sub="carol"))
    assert error_codes(body) == ["FORBIDDEN"]
    admin = api.tokens("Admins", sub="admin-1")
    changed = ok(
        api.gql(
            UPDATE,
            {"input": {"id": "ada", "expectedVersion": 1, "role": "NURSE", "department": "Collections"}},
            token=admin,
        )
    )["updateEmployeeProfile"]
    assert (changed["role"], changed["department"], changed["version"]) == ("NURSE", "Collections", 2)


def test_own_changes_with_a_stale_version_are_a_conflict(api: Api) -> None:
    ada, _ = onboard(api, "ada")
    first = api.gql(
        UPDATE,
        {"input": {"id": "ada", "expectedVersion": 1, "preferredName": "Addy", "phone": None}},
        token=ada,
    )
    changed = ok(first)["updateEmployeeProfile"]
    assert (changed["preferredName"], changed["phone"], changed["version"]) == ("Addy", None, 2)
    stale = api.gql(UPDATE, {"input": {"id": "ada", "expectedVersion": 1, "jobTitle": "Nurse"}}, token=ada)
    assert error_codes(stale) == ["CONFLICT"]
    assert stale["errors"][0]["extensions"]["errorType"] == "ConditionalCheckFailedException"


def test_bad_fields_are_listed(api: Api) -> None:
    body = api.gql(
        CREATE,
        {"input": {"email": "nope", "firstName": "", "lastName": "Okafor", "phone": "12"}},
        token=api.tokens("Staff", sub="ada"),
    )
    assert error_codes(body) == ["BAD_USER_INPUT"]
    fields = {f["field"] for f in body["errors"][0]["extensions"]["fields"]}
    assert fields == {"input.email", "input.firstName", "input.phone"}
    assert "nope" not in body["errors"][0]["message"]


def test_search_by_prefix_and_department(api: Api) -> None:
    admin = api.tokens("Admins", sub="admin-1")
    for sub, first, last, dept in [
        ("e1", "Zoë", "Ökafor", "Lab"),
        ("e2", "Ada", "okafor", "Collections"),
        ("e3", "Ben", "Olsen", "Lab"),
    ]:
        values = {
            "id": sub,
            "email": f"{sub}@example.org",
            "firstName": first,
            "lastName": last,
            "department": dept,
        }
        ok(api.gql(CREATE, {"input": values}, token=admin))
    onboard(api, "e4", lastName="Okoro")  # PENDING: staff do not find it
    staff = api.tokens("Staff", sub="e3")

    def ids(token: str, **variables: Any) -> list[str]:
        found = ok(api.gql(SEARCH, variables, token=token))["searchEmployees"]
        return [e["id"] for e in found["items"]]

    assert ids(staff, q="OKA") == ["e2", "e1"]
    assert ids(staff, q="okafor z") == ["e1"]
    assert ids(staff, d="lab") == ["e1", "e3"]
    assert ids(staff, q="o", d="Lab") == ["e1", "e3"]
    assert ids(admin, q="ok") == ["e2", "e1", "e4"]
    assert ids(admin, s="PENDING") == ["e4"]
    assert error_codes(api.gql(SEARCH, {"s": "PENDING"}, token=staff)) == ["FORBIDDEN"]
    page = ok(api.gql(SEARCH, {"q": "o", "limit": 1}, token=staff))["searchEmployees"]
    assert page["nextToken"]
    rest = ok(api.gql(SEARCH, {"q": "o", "limit": 5, "next": page["nextToken"]}, token=staff))[
        "searchEmployees"
    ]
    assert [e["id"] for e in rest["items"]] == ["e1", "e3"]
    assert error_codes(api.gql(SEARCH, {"q": "z", "next": page["nextToken"]}, token=staff)) == [
        "BAD_USER_INPUT"
    ]


def test_photo_upload_forms_take_images_only(api: Api, world: World) -> None:
    ada, _ = onboard(api, "ada")
    ticket = ok(api.gql(PHOTO, {"type": "image/jpeg"}, token=ada))["requestEmployeePhotoUpload"]
    assert ticket["key"].startswith("employee-photos/uploads/ada/")
    assert (ticket["contentType"], ticket["maxBytes"]) == ("image/jpeg", 5 * 1024 * 1024)
    assert json.loads(ticket["fields"])["key"] == ticket["key"]
    for refused in ("image/gif", "application/pdf", "text/plain", "image/svg+xml"):
        body = api.gql(PHOTO, {"type": refused}, token=ada)
        assert error_codes(body) == ["BAD_USER_INPUT"], refused
        assert body["errors"][0]["extensions"]["fields"][0]["field"] == "contentType"
    ben, _ = onboard(api, "ben")
    assert error_codes(api.gql(PHOTO, {"type": "image/png", "id": "ada"}, token=ben)) == ["FORBIDDEN"]
    no_profile = api.tokens("Staff", sub="carol")
    assert error_codes(api.gql(PHOTO, {"type": "image/png"}, token=no_profile)) == ["NOT_FOUND"]

    # The photo lands and is processed (as the bucket's trigger does): the profile links thumbnails.
    out = io.BytesIO()
    Image.new("RGB", (800, 600), (200, 30, 30)).save(out, format="JPEG")
    world.photo_files.put(ticket["key"], out.getvalue(), "image/jpeg")
    assert world.container.employees.process_photo("", ticket["key"]).outcome == "ACCEPTED"
    mine = ok(api.gql(MINE, token=ada))["myEmployeeProfile"]
    assert mine["lastPhotoUpload"] == {"status": "ACCEPTED", "reason": None}
    thumbs = mine["photo"]["thumbnails"]
    assert [(t["size"], t["contentType"]) for t in thumbs] == [(128, "image/webp"), (512, "image/webp")]
    assert all("expiresIn=600" in t["url"] for t in thumbs)
