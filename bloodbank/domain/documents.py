"""Donor documents: consent forms, medical questionnaires, identification, kept as files.

A document is one object in a private, versioned bucket; uploading again to the same document
makes a new version, and every version stays readable. The object key says whose document it is
and what kind, so listing a donor's documents is one prefix listing:

    donors/{donorId}/{kind}/{documentId}        e.g. donors/7f3c.../consent-form/9b1e...

Keys are built and parsed only here. Ids are checked with ``text.identifier`` (letters, digits,
``_ - . :``), so a client-supplied id can never add a ``/`` and reach another donor's folder.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import TypeVar

from bloodbank.domain import text
from bloodbank.domain.uploads import UploadTicket
from bloodbank.errors import BadUserInput, FieldProblem

__all__ = [
    "ALLOWED_CONTENT_TYPES",
    "DOWNLOAD_TTL_SECONDS",
    "MAX_BYTES",
    "UPLOAD_TTL_SECONDS",
    "DocumentKind",
    "DocumentRef",
    "DocumentVersion",
    "DonorDocument",
    "UploadRequest",
    "UploadTicket",
    "documents_of",
    "donor_prefix",
    "object_key",
    "parse_key",
    "validate_upload",
]

ALLOWED_CONTENT_TYPES = ("application/pdf", "image/jpeg", "image/png")
MAX_BYTES = 10 * 1024 * 1024  # 10 MiB: a scanned multi-page form, not a video
UPLOAD_TTL_SECONDS = 15 * 60  # an upload form is valid for 15 minutes
DOWNLOAD_TTL_SECONDS = 5 * 60  # a download link for 5: fetched right away, useless if leaked later
_ROOT = "donors"
_T = TypeVar("_T")


class DocumentKind(Enum):
    CONSENT_FORM = "CONSENT_FORM"
    MEDICAL_QUESTIONNAIRE = "MEDICAL_QUESTIONNAIRE"
    IDENTIFICATION = "IDENTIFICATION"
    OTHER = "OTHER"

    @property
    def segment(self) -> str:
        """How the kind is spelled in an object key: ``consent-form``."""
        return self.value.lower().replace("_", "-")


_BY_SEGMENT = {kind.segment: kind for kind in DocumentKind}


@dataclass(frozen=True, slots=True)
class DocumentRef:
    """Which document an object key names."""

    donor_id: str
    kind: DocumentKind
    document_id: str

    @property
    def key(self) -> str:
        return object_key(self.donor_id, self.kind, self.document_id)


@dataclass(frozen=True, slots=True)
class DocumentVersion:
    version_id: str
    size: int  # bytes
    uploaded_at: datetime
    latest: bool


@dataclass(frozen=True, slots=True)
class DonorDocument:
    """A donor's document with its versions, newest first."""

    id: str
    kind: DocumentKind
    versions: tuple[DocumentVersion, ...]
    donor_id: str

    @property
    def ref(self) -> DocumentRef:
        return DocumentRef(self.donor_id, self.kind, self.id)

    @property
    def updated_at(self) -> datetime:
        return self.versions[0].uploaded_at


@dataclass(frozen=True, slots=True)
class UploadRequest:
    """A validated request to upload a document (a new one when ``document_id`` is None)."""

    donor_id: str
    kind: DocumentKind
    content_type: str
    document_id: str | None


def object_key(donor_id: str, kind: DocumentKind, document_id: str) -> str:
    """The object key of a document; both ids must already be valid identifiers."""
    for value in (donor_id, document_id):
        text.identifier("id", value)  # never build a key from an unchecked id
    return f"{_ROOT}/{donor_id}/{kind.segment}/{document_id}"


def donor_prefix(donor_id: str) -> str:
    """The prefix of every key of one donor (with the trailing slash: ``ab`` is not ``abc``)."""
    text.identifier("id", donor_id)
    return f"{_ROOT}/{donor_id}/"


def parse_key(key: str) -> DocumentRef | None:
    """The document a key names, or None if the key does not follow the layout."""
    parts = key.split("/")
    if len(parts) != 4 or parts[0] != _ROOT or parts[2] not in _BY_SEGMENT:
        return None
    donor_id, document_id = parts[1], parts[3]
    try:
        text.identifier("id", donor_id)
        text.identifier("id", document_id)
    except text.Invalid:
        return None
    return DocumentRef(donor_id, _BY_SEGMENT[parts[2]], document_id)


def _kind(where: str, value: object) -> DocumentKind:
    if isinstance(value, DocumentKind):
        return value
    if isinstance(value, str) and value in DocumentKind.__members__:
        return DocumentKind[value]
    names = ", ".join(DocumentKind.__members__)
    raise text.Invalid(FieldProblem(where, f"must be one of {names}"))


def _content_type(where: str, value: object) -> str:
    allowed = ", ".join(ALLOWED_CONTENT_TYPES)
    cleaned = value.strip().lower() if isinstance(value, str) and len(value) <= 100 else ""
    if cleaned not in ALLOWED_CONTENT_TYPES:
        raise text.Invalid(FieldProblem(where, f"must be one of {allowed} (PDF, JPEG or PNG)"))
    return cleaned


def validate_upload(
    donor_id: str, kind: object, content_type: object, document_id: str | None, prefix: str = "input."
) -> UploadRequest:
    """Check an upload request, reporting every bad field at once (paths as the client spelled them)."""
    problems: list[FieldProblem] = []

    def check(name: str, rule: Callable[[str], _T]) -> _T | None:
        try:
            return rule(f"{prefix}{name}")
        except text.Invalid as bad:
            problems.append(bad.problem)
            return None

    donor = check("donorId", lambda where: text.identifier(where, str(donor_id)))
    kind_ = check("kind", lambda where: _kind(where, kind))
    type_ = check("contentType", lambda where: _content_type(where, content_type))
    document = None
    if document_id is not None:
        document = check("documentId", lambda where: text.identifier(where, document_id))
    if problems or donor is None or kind_ is None or type_ is None:
        raise BadUserInput.of(problems)
    return UploadRequest(donor_id=donor, kind=kind_, content_type=type_, document_id=document)


def documents_of(donor_id: str, entries: Iterable[tuple[str, DocumentVersion]]) -> list[DonorDocument]:
    """Group a listing of object versions into the donor's documents.

    Documents come newest first (by their latest upload), each with its versions newest first.
    Keys of other donors or outside the layout are ignored. The listing's own order (storage lists
    a key's versions newest first) breaks ties between uploads within the same second.
    """
    grouped: dict[DocumentRef, list[DocumentVersion]] = {}
    for key, version in entries:
        ref = parse_key(key)
        if ref is not None and ref.donor_id == donor_id:
            grouped.setdefault(ref, []).append(version)
    documents = [
        DonorDocument(
            id=ref.document_id,
            kind=ref.kind,
            versions=tuple(sorted(versions, key=lambda v: (v.latest, v.uploaded_at), reverse=True)),
            donor_id=ref.donor_id,
        )
        for ref, versions in grouped.items()
    ]
    documents.sort(key=lambda d: d.id)
    documents.sort(key=lambda d: d.updated_at, reverse=True)
    return documents
