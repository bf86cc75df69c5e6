"""The donor registry through HTTP: what each role sees, bad input, locking, pages, limits, masking."""

from __future__ import annotations

from typing import Any

import pytest
import strawberry
from strawberry.extensions import AddValidationRules

from bloodbank.domain.blood import BloodGroup
from schema.root import _LIMIT_RULES, MAX_DEPTH
from tests.conftest import Api, World, error_codes

DONOR_FIELDS = "id firstName lastName email phone bloodGroup siteId createdAt updatedAt version"
REGISTER = f"mutation($input: RegisterDonorInput!) {{ registerDonor(input: $input) {{ {DONOR_FIELDS} }} }}"
UPDATE = f"mutation($input: UpdateDonorInput!) {{ updateDonor(input: $input) {{ {DONOR_FIELDS} }} }}"
GET = f"query($id: ID!) {{ getDonor(id: $id) {{ {DONOR_FIELDS} }} }}"
LIST = """query($filter: DonorFilterInput, $limit: Int, $nextToken: String) {
  listDonors(filter: $filter, limit: $limit, nextToken: $nextToken) {
    items { id lastName bloodGroup siteId }
    nextToken
  }
}"""
INLINE_INPUT = '{firstName: "a", lastName: "b", email: "c@example.org", siteId: "site-north"}'
WALK_IN = {"firstName": "Ann", "lastName": "Lee", "email": "ann@example.org", "siteId": "site-north"}


def register(api: Api, token: str, **fields: Any) -> dict[str, Any]:
    body = api.gql(REGISTER, {"input": {**WALK_IN, **fields}}, token=token)
    assert "errors" not in body, body
    donor: dict[str, Any] = body["data"]["registerDonor"]
    return donor


def test_staff_register_a_walk_in_and_read_it_back(api: Api) -> None:
    staff = api.tokens("Staff")
    donor = register(api, staff, bloodGroup="O_NEG", phone="+1 (415) 555-0123")
    assert donor["bloodGroup"] == "O_NEG"
    assert donor["phone"] == "+14155550123"
    assert donor["version"] == 1
    assert donor["createdAt"].endswith("Z")
    assert api.gql(GET, {"id": donor["id"]}, token=staff)["data"]["getDonor"] == donor


def test_a_signed_in_donor_registers_themself_and_sees_only_themself(api: Api, world: World) -> None:
    me = api.tokens("Donors", sub="donor-sub-1")
    assert api.gql("{ me { id } }", token=me)["data"]["me"] is None
    donor = register(api, me)
    assert donor["id"] == "donor-sub-1"
    assert api.gql("{ me { id email } }", token=me)["data"]["me"] == {
        "id": "donor-sub-1",
        "email": "ann@example.org",
    }
    other = register(api, api.tokens("Staff"), email="bob@example.org", firstName="Bob")
    body = api.gql(GET, {"id": other["id"]}, token=me)
    assert error_codes(body) == ["FORBIDDEN"]
    assert body["data"] == {"getDonor": None}
    assert error_codes(api.gql(LIST, token=me)) == ["FORBIDDEN"]


def test_hospitals_never_see_donors(api: Api, world: World) -> None:
    donor = register(api, api.tokens("Staff"))
    hospital = api.tokens("Hospitals", sub="hospital-user")
    calls_before = list(world.donors.calls)
    for query, variables in ((GET, {"id": donor["id"]}), (LIST, None), ("{ me { id } }", None)):
        body = api.gql(query, variables, token=hospital)
        assert error_codes(body) == ["FORBIDDEN"], query
        assert "Ann" not in str(body)
    assert world.donors.calls == calls_before
    assert api.gql("{ listHospitals { id } }", token=hospital)["data"]["listHospitals"]


@pytest.mark.parametrize(
    ("fields", "bad_field"),
    [
        ({"bloodGroup": "Z_POS"}, "bloodGroup"),
        ({"email": "not-an-email"}, "input.email"),
        ({"email": "a@b"}, "input.email"),
        ({"phone": "555-0123"}, "input.phone"),
        ({"firstName": ""}, "input.firstName"),
        ({"lastName": "   "}, "input.lastName"),
        ({"firstName": "A" * 10_000}, "input.firstName"),
        ({"lastName": "Lee\u0000"}, "input.lastName"),
        ({"lastName": "Lee\u001b[2J"}, "input.lastName"),
        ({"siteId": "site-atlantis"}, "input.siteId"),
        ({"siteId": "DONOR#1"}, "input.siteId"),
        ({"email": None}, "email"),
    ],
    ids=[
        "blood-group",
        "email",
        "email-no-tld",
        "phone-local",
        "empty-first",
        "blank-last",
        "10k-chars",
        "nul",
        "ansi-escape",
        "unknown-site",
        "key-injection",
        "null-required",
    ],
)
def test_bad_input_is_refused_and_nothing_is_written(
    api: Api, world: World, fields: dict[str, Any], bad_field: str
) -> None:
    body = api.gql(REGISTER, {"input": {**WALK_IN, **fields}}, token=api.tokens("Staff"))
    assert error_codes(body) == ["BAD_USER_INPUT"]
    error = body["errors"][0]
    assert bad_field in error["message"] or bad_field in str(error["extensions"].get("fields"))
    assert world.donors.donors == {}
    assert body["data"] is None


def test_all_field_problems_come_back_together(api: Api) -> None:
    body = api.gql(
        REGISTER,
        {"input": {**WALK_IN, "firstName": "", "email": "x", "phone": "1"}},
        token=api.tokens("Staff"),
    )
    fields = {f["field"] for f in body["errors"][0]["extensions"]["fields"]}
    assert fields == {"input.firstName", "input.email", "input.phone"}


def test_duplicate_email_is_a_conflict(api: Api) -> None:
    staff = api.tokens("Staff")
    register(api, staff)
    body = api.gql(REGISTER, {"input": {**WALK_IN, "email": "ANN@example.org"}}, token=staff)
    assert error_codes(body) == ["CONFLICT"]
    assert body["errors"][0]["extensions"]["errorType"] == "ConditionalCheckFailedException"


def test_update_with_optimistic_locking(api: Api) -> None:
    staff = api.tokens("Staff")
    donor = register(api, staff)
    first = api.gql(
        UPDATE, {"input": {"id": donor["id"], "expectedVersion": 1, "lastName": "Lee-Smith"}}, token=staff
    )
    assert first["data"]["updateDonor"]["version"] == 2
    stale = api.gql(
        UPDATE, {"input": {"id": donor["id"], "expectedVersion": 1, "firstName": "Annie"}}, token=staff
    )
    assert error_codes(stale) == ["CONFLICT"]
    current = api.gql(GET, {"id": donor["id"]}, token=staff)["data"]["getDonor"]
    assert (current["firstName"], current["lastName"], current["version"]) == ("Ann", "Lee-Smith", 2)
    cleared = api.gql(
        UPDATE, {"input": {"id": donor["id"], "expectedVersion": 2, "phone": None}}, token=staff
    )
    assert cleared["data"]["updateDonor"]["phone"] is None
    missing = api.gql(
        UPDATE, {"input": {"id": "nobody", "expectedVersion": 1, "firstName": "X"}}, token=staff
    )
    assert error_codes(missing) == ["NOT_FOUND"]


def test_donors_may_edit_themselves_but_not_their_blood_group(api: Api) -> None:
    me = api.tokens("Donors", sub="donor-sub-2")
    register(api, me)
    ok = api.gql(
        UPDATE, {"input": {"id": "donor-sub-2", "expectedVersion": 1, "phone": "+14155550199"}}, token=me
    )
    assert ok["data"]["updateDonor"]["phone"] == "+14155550199"
    refused = api.gql(
        UPDATE, {"input": {"id": "donor-sub-2", "expectedVersion": 2, "bloodGroup": "AB_POS"}}, token=me
    )
    assert error_codes(refused) == ["FORBIDDEN"]
    self_typed = api.gql(REGISTER, {"input": {**WALK_IN, "bloodGroup": "O_NEG"}}, token=api.tokens("Donors"))
    assert error_codes(self_typed) == ["FORBIDDEN"]


def test_list_filters_and_pages(api: Api) -> None:
    staff = api.tokens("Staff")
    groups = list(BloodGroup)
    for n in range(10):
        register(
            api,
            staff,
            lastName=f"Name{n:02d}",
            email=f"d{n}@example.org",
            bloodGroup=groups[n % 2].value,
            siteId=["site-north", "site-south"][n % 3 == 0],
        )
    seen, token, pages = [], None, 0
    while True:
        body = api.gql(LIST, {"limit": 3, "nextToken": token}, token=staff)["data"]["listDonors"]
        seen += [d["lastName"] for d in body["items"]]
        pages += 1
        token = body["nextToken"]
        if token is None:
            break
    assert seen == [f"Name{n:02d}" for n in range(10)]
    assert pages == 4
    south_neg = api.gql(
        LIST, {"filter": {"siteId": {"eq": "site-south"}, "bloodGroup": {"eq": "O_NEG"}}}, token=staff
    )["data"]["listDonors"]["items"]
    assert {(d["siteId"], d["bloodGroup"]) for d in south_neg} == {("site-south", "O_NEG")}
    assert [d["lastName"] for d in south_neg] == ["Name00", "Name06"]
    filtered = api.gql(LIST, {"filter": {"lastName": {"beginsWith": "Name0"}}, "limit": 4}, token=staff)
    assert len(filtered["data"]["listDonors"]["items"]) == 4  # filled to the limit


@pytest.mark.parametrize(
    ("variables", "needle"),
    [
        ({"limit": 0}, "between 1 and 100"),
        ({"limit": 101}, "between 1 and 100"),
        ({"nextToken": "forged"}, "nextToken"),
        ({"filter": {"lastName": {"between": ["A"]}}}, "two values"),
        ({"filter": {"and": []}}, "at least one"),
    ],
)
def test_bad_list_arguments(api: Api, variables: dict[str, Any], needle: str) -> None:
    body = api.gql(LIST, variables, token=api.tokens("Staff"))
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert needle in body["errors"][0]["message"]


def test_a_token_does_not_work_with_another_filter(api: Api) -> None:
    staff = api.tokens("Staff")
    for n in range(3):
        register(api, staff, email=f"p{n}@example.org", siteId="site-north")
    token = api.gql(LIST, {"filter": {"siteId": {"eq": "site-north"}}, "limit": 1}, token=staff)["data"][
        "listDonors"
    ]["nextToken"]
    body = api.gql(
        LIST, {"filter": {"siteId": {"eq": "site-south"}}, "limit": 1, "nextToken": token}, token=staff
    )
    assert error_codes(body) == ["BAD_USER_INPUT"]


@pytest.mark.parametrize(
    ("query", "code", "error_type"),
    [
        ("{ listDonors { items { id } ", "BAD_USER_INPUT", "MalformedQueryException"),
        ("{ listDonors { items { nope } } }", "BAD_USER_INPUT", "ValidationError"),
        (
            "{ " + " ".join(f"a{n}: listSites {{ id }}" for n in range(16)) + " }",
            "BAD_USER_INPUT",
            "ValidationError",
        ),
        ("{ listSites { " + "id " * 2100 + "} }", "BAD_USER_INPUT", "MalformedQueryException"),
    ],
    ids=["syntax", "unknown-field", "too-many-aliases", "too-many-tokens"],
)
def test_malformed_and_abusive_queries(api: Api, query: str, code: str, error_type: str) -> None:
    body = api.gql(query, token=api.tokens("Staff"))
    assert error_codes(body)[0] == code
    assert body["errors"][0]["extensions"]["errorType"] == error_type


@strawberry.type
class _Node:
    id: int = 1

    @strawberry.field
    def child(self) -> _Node:
        return _Node()


@strawberry.type
class _CyclicQuery:
    @strawberry.field
    def node(self) -> _Node:
        return _Node()


def test_the_schemas_depth_rule_refuses_deep_queries() -> None:
    """Our types have no cycles yet, so the production rules are exercised on a cyclic schema."""
    limited = strawberry.Schema(_CyclicQuery, extensions=[lambda: AddValidationRules(list(_LIMIT_RULES))])

    def nested(depth: int) -> str:
        return "{ node { " + "child { " * (depth - 1) + "id" + " }" * depth + " }"

    assert limited.execute_sync(nested(MAX_DEPTH)).errors is None
    deep = limited.execute_sync(nested(MAX_DEPTH + 1))
    assert deep.errors
    assert "exceeds maximum operation depth" in deep.errors[0].message


def test_variables_of_the_wrong_type(api: Api) -> None:
    body = api.gql(LIST, {"limit": "ten"}, token=api.tokens("Staff"))
    assert error_codes(body) == ["BAD_USER_INPUT"]


def test_internal_errors_are_masked_and_logged_without_personal_data(
    api: Api, world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("ann@example.org table bloodbank-test pk DONOR#x")

    monkeypatch.setattr(world.donors, "get", broken)
    response = api.client.post(
        "/graphql",
        json={"query": '{ getDonor(id: "x") { id } }'},
        headers={"Authorization": api.tokens("Staff")},
    )
    body = response.json()
    error = body["errors"][0]
    request_id = response.headers["x-request-id"]
    assert error["extensions"] == {
        "code": "INTERNAL_SERVER_ERROR",
        "errorType": "InternalFailure",
        "requestId": request_id,
    }
    assert request_id in error["message"]
    for secret in ("ann@example.org", "bloodbank-test", "DONOR#", "RuntimeError", "Traceback"):
        assert secret not in response.text
    logged = capsys.readouterr().out
    assert request_id in logged
    assert "RuntimeError" in logged
    assert "ann@example.org" not in logged
    assert "DONOR#" not in logged


def test_graphiql_page_and_get_queries(api: Api) -> None:
    page = api.client.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert "graphiql" in page.text.lower()
    got = api.client.get(
        "/graphql", params={"query": "{ listSites { id } }"}, headers={"Authorization": api.tokens("Staff")}
    )
    assert [s["id"] for s in got.json()["data"]["listSites"]] == ["site-london", "site-north", "site-south"]
    mutation = api.client.get(
        "/graphql",
        params={"query": "mutation { registerDonor(input: " + INLINE_INPUT + ") { id } }"},
        headers={"Authorization": api.tokens("Staff")},
    )
    assert mutation.status_code in (400, 405)


def test_schema_shows_authorization_as_appsync_directives() -> None:
    from schema import schema

    sdl = str(schema)
    assert "listDonors(" in sdl
    assert '@aws_cognito_user_pools(cognito_groups: ["Admins", "Staff"])' in sdl
    assert 'me: Donor @aws_cognito_user_pools(cognito_groups: ["Donors"])' in sdl
