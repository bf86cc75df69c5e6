"""Campaign e-mail through HTTP: templates, previews, recipient lists, their uploads and reports."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import Api, World, error_codes

CREATE_TEMPLATE = """mutation($input: CreateEmailTemplateInput!) {
  createEmailTemplate(input: $input) { id name subject html text variables createdAt createdBy }
}"""
GET_TEMPLATE = "query($id: ID!) { getEmailTemplate(id: $id) { id name variables } }"
LIST_TEMPLATES = (
    "query($t: String) { listEmailTemplates(limit: 2, nextToken: $t) { items { id } nextToken } }"
)
PREVIEW = (
    """query($id: ID!, $data: AWSJSON) { previewEmail(templateId: $id, data: $data) { subject html text } }"""
)
CREATE_LIST = "mutation($name: String!) { createRecipientList(input: {name: $name}) { id name status } }"
GET_LIST = """query($id: ID!) { getRecipientList(id: $id) {
  id name status variables failure reportUrl createdAt updatedAt
  counts { rows imported duplicates invalid suppressed } } }"""
LIST_LISTS = "query { listRecipientLists { items { id status } nextToken } }"
UPLOAD = """mutation($id: ID!) {
  requestRecipientUpload(listId: $id) { url fields key contentType maxBytes expiresAt } }"""

TEMPLATE = {
    "name": "Winter appeal",
    "subject": "{{ first_name }}, O negative is low",
    "html": "<p>Dear {{ first_name }},</p><a href='{{ unsubscribe_url }}'>Unsubscribe</a>",
    "text": "Dear {{ first_name }}, from {{ site }}",
}


def staff(api: Api) -> str:
    return api.tokens("Staff", sub="staff-1")


def data(body: dict[str, Any]) -> Any:
    assert "errors" not in body, body
    return body["data"]


def make_template(api: Api, **fields: Any) -> dict[str, Any]:
    created: dict[str, Any] = data(
        api.gql(CREATE_TEMPLATE, {"input": {**TEMPLATE, **fields}}, token=staff(api))
    )["createEmailTemplate"]
    return created


def test_staff_create_read_and_list_templates(api: Api) -> None:
    created = make_template(api)
    assert created["variables"] == ["first_name", "site", "unsubscribe_url"]
    assert created["createdBy"] == "staff-1"
    got = data(api.gql(GET_TEMPLATE, {"id": created["id"]}, token=api.tokens("Admins")))["getEmailTemplate"]
    assert got == {"id": created["id"], "name": "Winter appeal", "variables": created["variables"]}
    assert data(api.gql(GET_TEMPLATE, {"id": "nope"}, token=staff(api)))["getEmailTemplate"] is None
    for _ in range(2):
        make_template(api)
    first = data(api.gql(LIST_TEMPLATES, {}, token=staff(api)))["listEmailTemplates"]
    assert len(first["items"]) == 2
    rest = data(api.gql(LIST_TEMPLATES, {"t": first["nextToken"]}, token=staff(api)))["listEmailTemplates"]
    assert len(rest["items"]) == 1
    assert rest["nextToken"] is None


def test_preview_renders_what_a_recipient_receives(api: Api) -> None:
    template = make_template(api)
    values = json.dumps({"first_name": "<Ada>", "site": "Northgate"})
    out = data(api.gql(PREVIEW, {"id": template["id"], "data": values}, token=staff(api)))["previewEmail"]
    assert out["subject"] == "<Ada>, O negative is low"
    assert out["html"].startswith("<p>Dear &lt;Ada&gt;,</p><a href='https://unsubscribe.example.invalid/")
    assert out["text"] == "Dear <Ada>, from Northgate"


@pytest.mark.parametrize(
    ("values", "says"),
    [
        ({"first_name": "Ada"}, "site"),
        ({"first_name": "Ada\nBcc: x@example.org", "site": "N"}, "line break"),
        ({"first_name": {"nested": 1}, "site": "N"}, "data.first_name"),
        ([1, 2], "JSON object"),
    ],
)
def test_preview_with_missing_or_bad_values_is_bad_user_input(api: Api, values: Any, says: str) -> None:
    template = make_template(api)
    body = api.gql(PREVIEW, {"id": template["id"], "data": json.dumps(values)}, token=staff(api))
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert says in json.dumps(body["errors"][0])


def test_preview_of_an_unknown_template_is_not_found(api: Api) -> None:
    assert error_codes(api.gql(PREVIEW, {"id": "nope"}, token=staff(api))) == ["NOT_FOUND"]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"html": "<p>{{ first_name </p>"}, "input.html"),
        ({"text": "{% include 'x' %}"}, "input.text"),
        ({"subject": "two\nlines"}, "input.subject"),
        ({"name": ""}, "input.name"),
        ({"html": None, "text": None}, "input.html"),
    ],
)
def test_bad_templates_are_refused_naming_the_field(api: Api, fields: dict[str, Any], field: str) -> None:
    body = api.gql(CREATE_TEMPLATE, {"input": {**TEMPLATE, **fields}}, token=staff(api))
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert field in [p["field"] for p in body["errors"][0]["extensions"]["fields"]]
    assert body["data"] is None


def test_recipient_list_upload_import_and_report(api: Api, world: World) -> None:
    created = data(api.gql(CREATE_LIST, {"name": "Donors 2026"}, token=staff(api)))["createRecipientList"]
    assert created["status"] == "EMPTY"
    ticket = data(api.gql(UPLOAD, {"id": created["id"]}, token=staff(api)))["requestRecipientUpload"]
    assert ticket["key"].startswith(f"recipient-lists/{created['id']}/uploads/")
    assert ticket["key"].endswith(".csv")
    assert (ticket["contentType"], ticket["maxBytes"]) == ("text/csv", 209715200)
    assert json.loads(ticket["fields"])["key"] == ticket["key"]
    world.recipient_files.put(ticket["key"], b"email,first_name\nada@example.org,Ada\nbad,X\n")
    world.container.recipient_lists.import_upload("", ticket["key"])
    got = data(api.gql(GET_LIST, {"id": created["id"]}, token=staff(api)))["getRecipientList"]
    assert got["status"] == "READY"
    assert got["variables"] == ["first_name"]
    assert got["counts"] == {"rows": 2, "imported": 1, "duplicates": 0, "invalid": 1, "suppressed": 0}
    assert got["reportUrl"].startswith("https://downloads.example.test/recipient-lists/")
    assert got["failure"] is None
    listed = data(api.gql(LIST_LISTS, {}, token=staff(api)))["listRecipientLists"]
    assert listed["items"] == [{"id": created["id"], "status": "READY"}]
    # The list holds its recipients: another file goes to a new list.
    assert error_codes(api.gql(UPLOAD, {"id": created["id"]}, token=staff(api))) == ["CONFLICT"]


def test_upload_for_an_unknown_list_and_bad_names(api: Api) -> None:
    assert error_codes(api.gql(UPLOAD, {"id": "nope"}, token=staff(api))) == ["NOT_FOUND"]
    assert error_codes(api.gql(UPLOAD, {"id": "../other"}, token=staff(api))) == ["BAD_USER_INPUT"]
    assert error_codes(api.gql(CREATE_LIST, {"name": " "}, token=staff(api))) == ["BAD_USER_INPUT"]
    assert data(api.gql(GET_LIST, {"id": "nope"}, token=staff(api)))["getRecipientList"] is None


OPERATIONS = [
    (CREATE_TEMPLATE, {"input": TEMPLATE}),
    (GET_TEMPLATE, {"id": "x"}),
    (LIST_TEMPLATES, {}),
    (PREVIEW, {"id": "x"}),
    (CREATE_LIST, {"name": "x"}),
    (GET_LIST, {"id": "x"}),
    (LIST_LISTS, {}),
    (UPLOAD, {"id": "x"}),
]


@pytest.mark.parametrize("group", ["Donors", "Hospitals"])
@pytest.mark.parametrize(("query", "variables"), OPERATIONS)
def test_donors_and_hospitals_are_forbidden(
    api: Api, group: str, query: str, variables: dict[str, Any]
) -> None:
    assert error_codes(api.gql(query, variables, token=api.tokens(group))) == ["FORBIDDEN"]


@pytest.mark.parametrize(("query", "variables"), OPERATIONS)
def test_no_token_is_unauthenticated(api: Api, query: str, variables: dict[str, Any]) -> None:
    assert error_codes(api.gql(query, variables)) == ["UNAUTHENTICATED"]
