"""Donor documents: hand out upload forms, list a donor's documents, sign download links.

Only the donor themself and blood service staff may touch a donor's documents; hospitals never.
The bytes go straight between the client and storage: this service only decides who may do what,
where a file goes, and what it may be (see ``bloodbank.domain.documents``).
"""

from __future__ import annotations

from dataclasses import dataclass

from bloodbank.domain import documents as rules
from bloodbank.domain import text
from bloodbank.domain.documents import DocumentKind, DonorDocument
from bloodbank.domain.identity import Identity
from bloodbank.domain.uploads import UploadTicket
from bloodbank.errors import BadUserInput, FieldProblem, Forbidden, NotFound
from bloodbank.ports import DocumentStore, DonorRepository, IdGenerator


@dataclass
class DocumentService:
    donors: DonorRepository
    store: DocumentStore
    new_id: IdGenerator

    def request_upload(
        self,
        identity: Identity,
        donor_id: str,
        kind: DocumentKind | str,
        content_type: str,
        document_id: str | None = None,
    ) -> UploadTicket:
        """A form to upload one file of a donor: a new document, or a new version of ``document_id``."""
        if not (identity.is_staff or identity.is_donor):
            raise Forbidden("Only the donor and blood service staff can upload a donor's documents")
        request = rules.validate_upload(donor_id, kind, content_type, document_id)
        if not identity.may_see_donor(request.donor_id):
            raise Forbidden("Donors can only upload their own documents")
        if self.donors.get(request.donor_id) is None:
            raise NotFound(f"No donor with id {request.donor_id}")
        if request.document_id is None:
            key = rules.object_key(request.donor_id, request.kind, self.new_id())
        else:
            existing = self._document(request.donor_id, request.document_id)
            if existing.kind is not request.kind:
                raise BadUserInput.of(
                    [FieldProblem("input.kind", f"must be {existing.kind.value}, the document's kind")]
                )
            key = existing.ref.key
        return self.store.upload_ticket(key, request.content_type, rules.MAX_BYTES, rules.UPLOAD_TTL_SECONDS)

    def list(self, identity: Identity, donor_id: str) -> list[DonorDocument]:
        """The donor's documents, most recently uploaded first, each with its versions newest first."""
        if not identity.may_see_donor(donor_id):
            raise Forbidden("Only the donor and blood service staff can see a donor's documents")
        donor_id = self._donor_id(donor_id)
        return rules.documents_of(donor_id, self.store.versions(rules.donor_prefix(donor_id)))

    def download_url(self, identity: Identity, document: DonorDocument, version_id: str) -> str:
        """A link that downloads one version of a document for a few minutes."""
        if not identity.may_see_donor(document.donor_id):
            raise Forbidden("Only the donor and blood service staff can download a donor's documents")
        if version_id not in {v.version_id for v in document.versions}:
            raise NotFound("This document has no such version")
        return self.store.download_url(document.ref.key, version_id, rules.DOWNLOAD_TTL_SECONDS)

    def _document(self, donor_id: str, document_id: str) -> DonorDocument:
        for document in rules.documents_of(donor_id, self.store.versions(rules.donor_prefix(donor_id))):
            if document.id == document_id:
                return document
        raise NotFound(f"The donor has no document with id {document_id}")

    @staticmethod
    def _donor_id(value: str) -> str:
        try:
            return text.identifier("id", value)
        except text.Invalid as bad:
            raise BadUserInput.of([bad.problem]) from None
