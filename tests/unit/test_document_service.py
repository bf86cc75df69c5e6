"""Donor documents with in-memory fakes: who may do what, validation, keys, versions and their order."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bloodbank.cursor import CursorCodec
from bloodbank.domain import documents as rules
from bloodbank.domain.documents import DocumentKind, DocumentVersion
from bloodbank.domain.donors import Donor
from bloodbank.domain.identity import Group, Identity
from bloodbank.errors import BadUserInput, DependencyUnavailable, Forbidden, NotFound
from bloodbank.fakes import (
    FixedClock,
    InMemoryDirectory,
    InMemoryDocumentStore,
    InMemoryDonorRepository,
    SequentialIds,
)
from bloodbank.local import seed
from bloodbank.services.documents import DocumentService


def who(*groups: Group, sub: str) -> Identity:
    return Identity(sub=sub, username=sub, groups=frozenset(groups), token_use="access")


STAFF = who(Group.STAFF, sub="staff-1")
ADMIN = who(Group.ADMINS, sub="admin-1")
ANN = who(Group.DONORS, sub="donor-ann")
BOB = who(Group.DONORS, sub="donor-bob")
HOSPITAL = who(Group.HOSPITALS, sub="hospital-user")
NOBODY = who(sub="no-groups")
NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


def donor(donor_id: str) -> Donor:
    return Donor(
        id=donor_id,
        first_name="Ann",
        last_name="Lee",
        email=f"{donor_id}@example.org",
        blood_group=None,
        site_id="site-north",
        created_at=NOW,
        updated_at=NOW,
        version=1,
    )


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


@pytest.fixture
def store(clock: FixedClock) -> InMemoryDocumentStore:
    return InMemoryDocumentStore(clock=clock)


@pytest.fixture
def donors() -> InMemoryDonorRepository:
    repo = InMemoryDonorRepository(InMemoryDirectory(site_list=list(seed.SITES)), CursorCodec("x" * 40))
    for donor_id in ("donor-ann", "donor-bob"):
        repo.create(donor(donor_id))
    return repo


@pytest.fixture
def service(donors: InMemoryDonorRepository, store: InMemoryDocumentStore) -> DocumentService:
    return DocumentService(donors, store, SequentialIds("doc"))


# --- the rules ------------------------------------------------------------------------------------
def test_keys_follow_the_layout_and_parse_back() -> None:
    key = rules.object_key("donor-ann", DocumentKind.MEDICAL_QUESTIONNAIRE, "doc-1")
    assert key == "donors/donor-ann/medical-questionnaire/doc-1"
    assert rules.parse_key(key) == rules.DocumentRef("donor-ann", DocumentKind.MEDICAL_QUESTIONNAIRE, "doc-1")
    assert rules.donor_prefix("donor-ann") == "donors/donor-ann/"


@pytest.mark.parametrize(
    "key",
    [
        "donors/donor-ann/consent-form",
        "donors/donor-ann/consent-form/doc-1/extra",
        "donors/donor-ann/selfie/doc-1",
        "employees/donor-ann/consent-form/doc-1",
        "donors/../consent-form/doc-1",
        "donors/donor-ann/consent-form/",
    ],
)
def test_keys_outside_the_layout_parse_to_nothing(key: str) -> None:
    assert rules.parse_key(key) is None


@pytest.mark.parametrize("bad", ["", "a/b", "../x", "-x", "x" * 65, "a b"])
def test_a_key_is_never_built_from_an_unchecked_id(bad: str) -> None:
    with pytest.raises(ValueError, match="valid id"):
        rules.object_key(bad, DocumentKind.OTHER, "doc-1")
    with pytest.raises(ValueError, match="valid id"):
        rules.object_key("donor-ann", DocumentKind.OTHER, bad)


def test_every_bad_field_is_reported_at_once() -> None:
    with pytest.raises(BadUserInput) as caught:
        rules.validate_upload("a/b", "SELFIE", "text/html", "../other")
    assert [p.field for p in caught.value.problems] == [
        "input.donorId",
        "input.kind",
        "input.contentType",
        "input.documentId",
    ]
    assert "text/html" not in str(caught.value.extensions())


@pytest.mark.parametrize("given", ["application/pdf", " Application/PDF ", "image/jpeg", "image/png"])
def test_content_types_are_normalised(given: str) -> None:
    request = rules.validate_upload("donor-ann", "CONSENT_FORM", given, None)
    assert request.content_type == given.strip().lower()
    assert request.kind is DocumentKind.CONSENT_FORM


@pytest.mark.parametrize(
    "given", ["image/jpg", "application/pdf; charset=binary", "image/svg+xml", "", "x" * 1000]
)
def test_other_content_types_are_refused(given: str) -> None:
    with pytest.raises(BadUserInput, match=r"input\.contentType"):
        rules.validate_upload("donor-ann", DocumentKind.OTHER, given, None)


def test_documents_are_grouped_newest_first_with_versions_newest_first() -> None:
    def v(version_id: str, minute: int, latest: bool = False) -> DocumentVersion:
        return DocumentVersion(version_id, 10, NOW.replace(minute=minute), latest)

    entries = [
        ("donors/donor-ann/consent-form/doc-a", v("a2", 5, latest=True)),
        ("donors/donor-ann/consent-form/doc-a", v("a1", 1)),
        ("donors/donor-ann/other/doc-b", v("b1", 3, latest=True)),
        ("donors/donor-ann/other/doc-b", v("b0", 3)),  # same second: storage's order decides
        ("donors/donor-ann-2/other/doc-c", v("c1", 9, latest=True)),  # another donor's prefix
        ("donors/donor-ann/notes.txt", v("x", 9, latest=True)),  # not a document
    ]
    documents = rules.documents_of("donor-ann", entries)
    assert [(d.id, d.kind) for d in documents] == [
        ("doc-a", DocumentKind.CONSENT_FORM),
        ("doc-b", DocumentKind.OTHER),
    ]
    assert [v.version_id for v in documents[0].versions] == ["a2", "a1"]
    assert [v.version_id for v in documents[1].versions] == ["b1", "b0"]


# --- upload tickets -------------------------------------------------------------------------------
def test_a_donor_gets_a_ticket_for_a_new_document_of_their_own(
    service: DocumentService, store: InMemoryDocumentStore
) -> None:
    ticket = service.request_upload(ANN, "donor-ann", DocumentKind.CONSENT_FORM, "application/pdf")
    assert ticket.key == "donors/donor-ann/consent-form/doc-000001"
    assert (ticket.content_type, ticket.max_bytes) == ("application/pdf", 10 * 1024 * 1024)
    assert ticket.expires_at == datetime(2026, 11, 22, 9, 15, tzinfo=UTC)
    assert store.calls == [("upload_ticket", ticket.key)]


@pytest.mark.parametrize("staff", [STAFF, ADMIN], ids=["staff", "admin"])
def test_staff_get_tickets_for_any_donor(service: DocumentService, staff: Identity) -> None:
    ticket = service.request_upload(staff, "donor-bob", "IDENTIFICATION", "image/png")
    assert ticket.key.startswith("donors/donor-bob/identification/")


@pytest.mark.parametrize(
    ("identity", "donor_id"),
    [(BOB, "donor-ann"), (HOSPITAL, "donor-ann"), (NOBODY, "donor-ann"), (HOSPITAL, "hospital-user")],
    ids=["other-donor", "hospital", "no-group", "hospital-as-itself"],
)
def test_nobody_else_gets_a_ticket(
    service: DocumentService,
    store: InMemoryDocumentStore,
    donors: InMemoryDonorRepository,
    identity: Identity,
    donor_id: str,
) -> None:
    with pytest.raises(Forbidden):
        service.request_upload(identity, donor_id, DocumentKind.OTHER, "application/pdf")
    assert store.calls == []
    assert donors.calls[-1] == ("create", "donor-bob")  # not even a read


def test_a_hospital_is_refused_before_its_input_is_looked_at(service: DocumentService) -> None:
    with pytest.raises(Forbidden):
        service.request_upload(HOSPITAL, "a/b", "NOPE", "text/html")


def test_an_unknown_donor_is_not_found(service: DocumentService, store: InMemoryDocumentStore) -> None:
    with pytest.raises(NotFound, match="donor-zed"):
        service.request_upload(STAFF, "donor-zed", DocumentKind.OTHER, "application/pdf")
    assert store.calls == []


def test_a_donor_who_has_not_registered_is_not_found(service: DocumentService) -> None:
    newcomer = who(Group.DONORS, sub="donor-new")
    with pytest.raises(NotFound):
        service.request_upload(newcomer, "donor-new", DocumentKind.CONSENT_FORM, "application/pdf")


def test_bad_input_is_refused_before_storage_is_asked(
    service: DocumentService, store: InMemoryDocumentStore
) -> None:
    with pytest.raises(BadUserInput) as caught:
        service.request_upload(ANN, "donor-ann", "SELFIE", "video/mp4")
    assert {p.field for p in caught.value.problems} == {"input.kind", "input.contentType"}
    assert store.calls == []


def test_uploading_again_to_a_document_targets_the_same_key(
    service: DocumentService, store: InMemoryDocumentStore
) -> None:
    first = service.request_upload(ANN, "donor-ann", DocumentKind.CONSENT_FORM, "application/pdf")
    store.upload(first.key)
    again = service.request_upload(ANN, "donor-ann", DocumentKind.CONSENT_FORM, "image/png", "doc-000001")
    assert again.key == first.key
    assert again.content_type == "image/png"


def test_a_new_version_must_name_an_existing_document_of_that_donor(
    service: DocumentService, store: InMemoryDocumentStore
) -> None:
    bobs = service.request_upload(BOB, "donor-bob", DocumentKind.CONSENT_FORM, "application/pdf")
    store.upload(bobs.key)
    with pytest.raises(NotFound, match="no document"):
        service.request_upload(ANN, "donor-ann", DocumentKind.CONSENT_FORM, "application/pdf", "doc-000001")
    with pytest.raises(NotFound):
        service.request_upload(ANN, "donor-ann", DocumentKind.CONSENT_FORM, "application/pdf", "doc-999")


def test_a_new_version_keeps_the_documents_kind(
    service: DocumentService, store: InMemoryDocumentStore
) -> None:
    ticket = service.request_upload(ANN, "donor-ann", DocumentKind.CONSENT_FORM, "application/pdf")
    store.upload(ticket.key)
    with pytest.raises(BadUserInput, match="CONSENT_FORM") as caught:
        service.request_upload(ANN, "donor-ann", DocumentKind.OTHER, "application/pdf", "doc-000001")
    assert [p.field for p in caught.value.problems] == ["input.kind"]


def test_storage_failures_pass_through_as_unavailable(
    service: DocumentService, store: InMemoryDocumentStore
) -> None:
    store.unavailable = True
    with pytest.raises(DependencyUnavailable):
        service.request_upload(ANN, "donor-ann", DocumentKind.OTHER, "application/pdf")
    with pytest.raises(DependencyUnavailable):
        service.list(ANN, "donor-ann")


# --- listing and downloads ------------------------------------------------------------------------
def test_listing_shows_documents_and_versions_newest_first(
    service: DocumentService, store: InMemoryDocumentStore, clock: FixedClock
) -> None:
    consent = service.request_upload(ANN, "donor-ann", DocumentKind.CONSENT_FORM, "application/pdf")
    store.upload(consent.key, size=100)
    clock.advance(minutes=1)
    questionnaire = service.request_upload(STAFF, "donor-ann", "MEDICAL_QUESTIONNAIRE", "image/jpeg")
    store.upload(questionnaire.key, size=200)
    clock.advance(minutes=1)
    store.upload(consent.key, size=300)  # a new version: the consent form is the latest upload again
    bobs = service.request_upload(BOB, "donor-bob", DocumentKind.OTHER, "image/png")
    store.upload(bobs.key)

    documents = service.list(ANN, "donor-ann")
    assert [(d.id, d.kind) for d in documents] == [
        ("doc-000001", DocumentKind.CONSENT_FORM),
        ("doc-000002", DocumentKind.MEDICAL_QUESTIONNAIRE),
    ]
    assert [(v.size, v.latest) for v in documents[0].versions] == [(300, True), (100, False)]
    assert documents[0].versions[0].uploaded_at == datetime(2026, 11, 22, 9, 2, tzinfo=UTC)
    assert service.list(STAFF, "donor-ann") == documents
    assert ("versions", "donors/donor-ann/") in store.calls


def test_a_donor_without_documents_has_an_empty_list(service: DocumentService) -> None:
    assert service.list(ANN, "donor-ann") == []


@pytest.mark.parametrize("identity", [BOB, HOSPITAL, NOBODY], ids=["other-donor", "hospital", "no-group"])
def test_only_the_donor_and_staff_see_documents(
    service: DocumentService, store: InMemoryDocumentStore, identity: Identity
) -> None:
    with pytest.raises(Forbidden):
        service.list(identity, "donor-ann")
    assert store.calls == []


def test_download_links_name_the_version_and_expire_in_minutes(
    service: DocumentService, store: InMemoryDocumentStore
) -> None:
    ticket = service.request_upload(ANN, "donor-ann", DocumentKind.CONSENT_FORM, "application/pdf")
    first = store.upload(ticket.key)
    store.upload(ticket.key)
    [document] = service.list(ANN, "donor-ann")
    url = service.download_url(ANN, document, first.version_id)
    assert url.endswith(f"{ticket.key}?versionId={first.version_id}&expiresIn=300")
    assert store.calls[-1] == ("download_url", (ticket.key, first.version_id))
    with pytest.raises(Forbidden):
        service.download_url(BOB, document, first.version_id)
    with pytest.raises(Forbidden):
        service.download_url(HOSPITAL, document, first.version_id)
    with pytest.raises(NotFound):
        service.download_url(STAFF, document, "v-unknown")
