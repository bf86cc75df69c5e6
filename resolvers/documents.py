"""Resolvers of donor documents: upload forms, a donor's documents, download links per version."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bloodbank.domain.documents import DocumentVersion, DonorDocument
from bloodbank.domain.donors import Donor
from bloodbank.domain.uploads import UploadTicket
from resolvers.context import ResolverEvent


@dataclass(frozen=True, slots=True)
class VersionOfDocument:
    """A version as the API shows it: it knows its document, so ``downloadUrl`` can be signed lazily."""

    document: DonorDocument
    version: DocumentVersion

    @property
    def version_id(self) -> str:
        return self.version.version_id

    @property
    def size(self) -> int:
        return self.version.size

    @property
    def uploaded_at(self) -> datetime:
        return self.version.uploaded_at

    @property
    def latest(self) -> bool:
        return self.version.latest


def request_donor_document_upload(event: ResolverEvent) -> UploadTicket:
    values = event.arguments["input"]
    return event.services.documents.request_upload(
        event.caller,
        values["donor_id"],
        values["kind"],
        values["content_type"],
        values.get("document_id"),
    )


def donor_documents(event: ResolverEvent) -> list[DonorDocument]:
    donor: Donor = event.source
    return event.services.documents.list(event.caller, donor.id)


def document_versions(event: ResolverEvent) -> list[VersionOfDocument]:
    document: DonorDocument = event.source
    return [VersionOfDocument(document, version) for version in document.versions]


def version_download_url(event: ResolverEvent) -> str:
    view: VersionOfDocument = event.source
    return event.services.documents.download_url(event.caller, view.document, view.version_id)
