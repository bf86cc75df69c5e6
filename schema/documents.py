"""GraphQL types of donor documents: kinds, documents with their versions, and the upload input."""

from __future__ import annotations

from datetime import datetime

import strawberry

from bloodbank.domain import documents
from resolvers import documents as document_resolvers
from schema.calls import Ctx, call

DocumentKind = strawberry.enum(
    documents.DocumentKind,
    name="DocumentKind",
    description="What a donor document is: consent form, medical questionnaire, identification, other.",
)


@strawberry.type(description="One uploaded version of a donor document.")
class DocumentVersion:
    version_id: strawberry.ID
    size: int = strawberry.field(description="In bytes.")
    uploaded_at: datetime
    latest: bool = strawberry.field(description="True for the document's current version.")

    @strawberry.field(
        description=(
            "A link that downloads this version as an attachment, valid for 5 minutes. Ask again"
            " for a fresh one when needed; do not store it."
        )
    )
    def download_url(self, info: Ctx) -> str:
        return call(document_resolvers.version_download_url, info, source=self)


@strawberry.type(
    description=(
        "A file kept for a donor (consent form, medical questionnaire, ...). Uploading again to the"
        " same document adds a version; every version stays readable."
    )
)
class DonorDocument:
    id: strawberry.ID
    kind: DocumentKind  # type: ignore[valid-type]

    @strawberry.field(description="Every uploaded version, newest first.")
    def versions(self, info: Ctx) -> list[DocumentVersion]:
        return call(document_resolvers.document_versions, info, source=self)


@strawberry.input(
    description="Ask for a form to upload a donor's document: a new one, or a new version of documentId."
)
class RequestDonorDocumentUploadInput:
    donor_id: strawberry.ID
    kind: DocumentKind  # type: ignore[valid-type]
    content_type: str = strawberry.field(description="application/pdf, image/jpeg or image/png.")
    document_id: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET,
        description="Upload a new version of this document of the donor (same kind); omit for a new one.",
    )
