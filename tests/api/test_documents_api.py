"""Donor documents through HTTP: upload tickets, who may ask, bad input, listing with download links."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bloodbank.fakes import InMemoryDocumentStore
from tests.conftest import Api, World, error_codes

TICKET = """mutation($input: RequestDonorDocumentUploadInput!) {
  requestDonorDocumentUpload(input: $input) { url fields key contentType maxBytes expiresAt }
}"""
DOCUMENTS = """query($id: ID!) {
  getDonor(id: $id) { id documents { id kind versions { versionId size uploadedAt latest downloadUrl } } }
}"""
ANN = "donor-ann"
WALK_IN = {"firstName": "Ann", "lastName": "Lee", "email": "ann@example.org", "siteId": "site-north"}
REGISTER = "mutation($input: RegisterDonorInput!) { registerDonor(input: $input) { id } }"


def store_of(world: World) -> InMemoryDocumentStore:
    store = world.container.documents.store
    assert isinstance(store, InMemoryDocumentStore)
    return store


def registered(api: Api, sub: str = ANN, email: str = "ann@example.org") -> str:
    """A donor registered by themself; returns their token."""
    token = api.tokens("Donors", sub=sub)
    body = api.gql(REGISTER, {"input": {**WALK_IN, "email": email}}, token=token)
    assert "errors" not in body, body
    return token


def ask(api: Api, token: str, **fields: Any) -> dict[str, Any]:
    values = {"donorId": ANN, "kind": "CONSENT_FORM", "contentType": "application/pdf", **fields}
    return api.gql(TICKET, {"input": values}, token=token)


def test_a_donor_gets_an_upload_ticket_for_their_own_document(api: Api, world: World) -> None:
    ann = registered(api)
    body = ask(api, ann)
    assert "errors" not in body, body
    ticket = body["data"]["requestDonorDocumentUpload"]
    assert ticket["key"] == "donors/donor-ann/consent-form/donor-000001"
    assert (ticket["contentType"], ticket["maxBytes"]) == ("application/pdf", 10 * 1024 * 1024)
    assert ticket["expiresAt"] == "2026-11-22T09:15:00.000Z"
    fields = json.loads(ticket["fields"])  # AWSJSON: a string holding a JSON object
    assert fields["key"] == ticket["key"]
    assert fields["Content-Type"] == "application/pdf"
    assert ticket["url"].startswith("https://")
    assert store_of(world).calls == [("upload_ticket", ticket["key"])]


def test_staff_get_tickets_for_any_donor(api: Api) -> None:
    registered(api)
    for group in ("Staff", "Admins"):
        body = ask(api, api.tokens(group), kind="MEDICAL_QUESTIONNAIRE", contentType="image/jpeg")
        assert "errors" not in body, body
        assert body["data"]["requestDonorDocumentUpload"]["key"].startswith(
            "donors/donor-ann/medical-questionnaire/"
        )


def test_another_donor_is_forbidden(api: Api, world: World) -> None:
    registered(api)
    bob = registered(api, "donor-bob", "bob@example.org")
    body = ask(api, bob)
    assert error_codes(body) == ["FORBIDDEN"]
    assert body["data"] is None
    assert store_of(world).calls == []


def test_hospitals_are_forbidden_and_learn_nothing(api: Api, world: World) -> None:
    registered(api)
    hospital = api.tokens("Hospitals", sub="hospital-user")
    calls_before = list(world.donors.calls)
    body = ask(api, hospital)
    assert error_codes(body) == ["FORBIDDEN"]
    assert world.donors.calls == calls_before
    assert store_of(world).calls == []
    assert error_codes(api.gql(DOCUMENTS, {"id": ANN}, token=hospital)) == ["FORBIDDEN"]


def test_no_token_is_unauthenticated(api: Api) -> None:
    assert error_codes(ask(api, "")) == ["UNAUTHENTICATED"]


@pytest.mark.parametrize(
    ("fields", "bad_field"),
    [
        ({"contentType": "text/html"}, "input.contentType"),
        ({"contentType": "image/svg+xml"}, "input.contentType"),
        ({"contentType": "x" * 5000}, "input.contentType"),
        ({"documentId": "../../donor-bob/consent-form/doc"}, "input.documentId"),
        ({"donorId": "donors/donor-ann"}, "input.donorId"),
    ],
    ids=["html", "svg", "huge", "path-in-document-id", "path-in-donor-id"],
)
def test_bad_input_names_the_field(api: Api, world: World, fields: dict[str, Any], bad_field: str) -> None:
    registered(api)
    body = ask(api, api.tokens("Staff"), **fields)
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert [p["field"] for p in body["errors"][0]["extensions"]["fields"]] == [bad_field]
    assert store_of(world).calls == []


def test_every_bad_field_comes_back_together(api: Api) -> None:
    registered(api)
    body = ask(api, api.tokens("Staff"), contentType="video/mp4", documentId="a/b")
    assert error_codes(body) == ["BAD_USER_INPUT"]
    fields = {p["field"] for p in body["errors"][0]["extensions"]["fields"]}
    assert fields == {"input.contentType", "input.documentId"}


def test_an_unknown_kind_is_refused_by_the_schema(api: Api, world: World) -> None:
    body = ask(api, registered(api), kind="SELFIE")
    assert error_codes(body) == ["BAD_USER_INPUT"]
    assert "kind" in body["errors"][0]["message"]
    assert "DocumentKind" in body["errors"][0]["message"]
    assert store_of(world).calls == []


def test_an_unknown_donor_or_document_is_not_found(api: Api, world: World) -> None:
    staff = api.tokens("Staff")
    body = ask(api, staff, donorId="donor-zed")
    assert error_codes(body) == ["NOT_FOUND"]
    registered(api)
    body = ask(api, staff, documentId="doc-unknown")
    assert error_codes(body) == ["NOT_FOUND"]


def test_a_new_version_goes_to_the_same_document(api: Api, world: World) -> None:
    ann = registered(api)
    first = ask(api, ann)["data"]["requestDonorDocumentUpload"]
    store_of(world).upload(first["key"])
    body = ask(api, ann, documentId="donor-000001", contentType="image/png")
    assert body["data"]["requestDonorDocumentUpload"]["key"] == first["key"]
    wrong_kind = ask(api, ann, documentId="donor-000001", kind="OTHER")
    assert error_codes(wrong_kind) == ["BAD_USER_INPUT"]
    assert wrong_kind["errors"][0]["extensions"]["fields"][0]["field"] == "input.kind"


def test_documents_are_listed_on_the_donor_with_download_links(api: Api, world: World) -> None:
    ann = registered(api)
    store = store_of(world)
    consent = ask(api, ann)["data"]["requestDonorDocumentUpload"]["key"]
    first = store.upload(consent, size=111)
    world.clock.advance(minutes=1)
    questionnaire = ask(api, ann, kind="MEDICAL_QUESTIONNAIRE")["data"]["requestDonorDocumentUpload"]["key"]
    store.upload(questionnaire, size=222)
    world.clock.advance(minutes=1)
    second = store.upload(consent, size=333)

    for token in (ann, api.tokens("Staff")):
        body = api.gql(DOCUMENTS, {"id": ANN}, token=token)
        assert "errors" not in body, body
        documents = body["data"]["getDonor"]["documents"]
        assert [(d["id"], d["kind"]) for d in documents] == [
            ("donor-000001", "CONSENT_FORM"),
            ("donor-000002", "MEDICAL_QUESTIONNAIRE"),
        ]
        versions = documents[0]["versions"]
        assert [(v["versionId"], v["size"], v["latest"]) for v in versions] == [
            (second.version_id, 333, True),
            (first.version_id, 111, False),
        ]
        assert versions[0]["uploadedAt"] == "2026-11-22T09:02:00.000Z"
        assert versions[1]["downloadUrl"].endswith(f"{consent}?versionId={first.version_id}&expiresIn=300")
    me = api.gql("{ me { documents { id } } }", token=ann)
    assert [d["id"] for d in me["data"]["me"]["documents"]] == ["donor-000001", "donor-000002"]


def test_download_links_are_signed_only_when_asked_for(api: Api, world: World) -> None:
    ann = registered(api)
    store = store_of(world)
    store.upload(ask(api, ann)["data"]["requestDonorDocumentUpload"]["key"])
    body = api.gql(
        "query($id: ID!) { getDonor(id: $id) { documents { versions { versionId } } } }",
        {"id": ANN},
        token=ann,
    )
    assert "errors" not in body, body
    assert not [c for c in store.calls if c[0] == "download_url"]


def test_another_donor_cannot_list_documents(api: Api, world: World) -> None:
    registered(api)
    bob = registered(api, "donor-bob", "bob@example.org")
    body = api.gql(DOCUMENTS, {"id": ANN}, token=bob)
    assert error_codes(body) == ["FORBIDDEN"]
    assert not [c for c in store_of(world).calls if c[0] == "versions"]


def test_storage_outages_are_masked(api: Api, world: World) -> None:
    ann = registered(api)
    store_of(world).unavailable = True
    body = ask(api, ann)
    assert error_codes(body) == ["INTERNAL_SERVER_ERROR"]
    error = body["errors"][0]
    assert error["extensions"]["requestId"]
    assert "document store" not in error["message"]
    listed = api.gql(DOCUMENTS, {"id": ANN}, token=ann)
    assert error_codes(listed) == ["INTERNAL_SERVER_ERROR"]
