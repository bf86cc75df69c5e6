"""Recipient lists: create one, hand out the form to upload its CSV, import the upload.

A list takes one file. ``requestRecipientUpload`` records which upload the list expects (a new
form replaces the previous one while nothing was imported), and the import, started by the
bucket's ``ObjectCreated`` event, takes only that upload:

    EMPTY --(its upload arrives)--> IMPORTING --> READY    (members written, counts, report)
                                             \\--> FAILED   (the file cannot be used: why, in ``failure``)

The import streams the file (``domain.recipients``), so its memory does not grow with the file:
one chunk, a few hundred rows waiting to be checked against the suppressions (100 a request) and
written (BatchWriteItem, 25 a request), and the addresses seen so far as 8-byte digests to count
duplicates (``SeenAddresses``; members are keyed by address, so the table dedupes them anyway).
Rows that are not imported go to a CSV report (row, line, outcome, reason) streamed to a temporary
file and then stored beside the upload. A retried event does the same again: members are keyed by
address (rewritten, never doubled) and the counts come from the whole file each time, so they are
the same; a list already READY or FAILED for that upload is left as it is.

A failure of the file (not CSV, no email column, not one encoding) marks the list FAILED and is not
retried: a retry cannot mend it. A failure of a dependency (DynamoDB, S3) raises, so that Lambda
retries the event.
"""

from __future__ import annotations

import contextlib
import csv
import io
import logging
import tempfile
from dataclasses import dataclass, field, replace
from typing import IO

from bloodbank.domain import recipients as rules
from bloodbank.domain.campaigns import address_key
from bloodbank.domain.identity import Identity
from bloodbank.domain.recipients import (
    FileProblem,
    ImportCounts,
    ListMember,
    ListStatus,
    RecipientList,
    Row,
    RowOutcome,
    SeenAddresses,
)
from bloodbank.domain.uploads import UploadTicket
from bloodbank.errors import Conflict, NotFound
from bloodbank.ports import (
    Clock,
    DocumentStore,
    IdGenerator,
    Page,
    RecipientFiles,
    RecipientLists,
    Suppressions,
)
from bloodbank.services.donors import page_size
from bloodbank.services.email import checked_id, require_staff

log = logging.getLogger("bloodbank.recipients")

SUPPRESSION_BATCH = 100  # addresses checked against the suppressions per request
WRITE_BATCH = 500  # members handed to the store at once (it writes 25 a request, several at a time)
REPORT_HEADER = ("row", "line", "outcome", "reason")


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What one import did: ``outcome`` is READY or FAILED for an import that ran, or ``skipped``
    with why (not a recipient upload, an unknown list, a replaced upload, done already)."""

    key: str
    outcome: str
    list_id: str | None = None
    counts: ImportCounts = field(default_factory=ImportCounts)
    reason: str = ""


class _Report:
    """The per-row report, written to a temporary file as rows come (never held in memory)."""

    def __init__(self) -> None:
        self.file: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
        self._text = io.TextIOWrapper(self.file, encoding="utf-8", newline="")
        self._writer = csv.writer(self._text)
        self._writer.writerow(REPORT_HEADER)
        self.lines = 0

    def add(self, row: Row, outcome: RowOutcome | None = None, reason: str | None = None) -> None:
        outcome = outcome or row.outcome
        self._writer.writerow((row.number, row.line, outcome.value, reason or row.reason))
        self.lines += 1

    def stopped(self, reason: str) -> None:
        self._writer.writerow(("", "", "FILE", f"the import stopped: {reason}"))
        self.lines += 1

    def rewound(self) -> IO[bytes]:
        self._text.flush()
        self.file.seek(0)
        return self.file

    def close(self) -> None:
        with contextlib.suppress(ValueError):  # the uploader may have closed the file already
            self._text.detach()
        self.file.close()


@dataclass
class _Import:
    """The running state of one import: counters, rows waiting for the suppression check, members
    waiting to be written."""

    service: RecipientListService
    list_id: str
    report: _Report = field(default_factory=_Report)
    seen: SeenAddresses = field(default_factory=SeenAddresses)
    rows: int = 0
    imported: int = 0
    duplicates: int = 0
    invalid: int = 0
    suppressed: int = 0
    unchecked: list[tuple[str, Row]] = field(default_factory=list)
    unwritten: list[ListMember] = field(default_factory=list)

    @property
    def counts(self) -> ImportCounts:
        return ImportCounts(self.rows, self.imported, self.duplicates, self.invalid, self.suppressed)

    def take(self, row: Row) -> None:
        self.rows += 1
        if row.outcome is not RowOutcome.OK:
            self.invalid += 1
            self.report.add(row)
            return
        key = address_key(row.email or "")
        if not self.seen.add(key):
            self.duplicates += 1
            self.report.add(row, RowOutcome.DUPLICATE, "the same address is on an earlier row")
            return
        self.unchecked.append((key, row))
        if len(self.unchecked) >= SUPPRESSION_BATCH:
            self.check()

    def check(self) -> None:
        """Leave out the suppressed addresses of the rows waiting; queue the others for writing."""
        if not self.unchecked:
            return
        suppressed = self.service.suppressions.suppressed([key for key, _ in self.unchecked])
        for key, row in self.unchecked:
            if key in suppressed:
                self.suppressed += 1
                self.report.add(row, RowOutcome.SUPPRESSED, "the address is suppressed or unsubscribed")
            else:
                self.unwritten.append(ListMember(row.email or "", row.values))
        self.unchecked.clear()
        if len(self.unwritten) >= self.service.write_batch:
            self.write()

    def write(self) -> None:
        if self.unwritten:
            self.service.lists.add_members(self.list_id, self.unwritten)
            self.imported += len(self.unwritten)
            self.unwritten = []

    def drain(self) -> None:
        self.check()
        self.write()


@dataclass
class RecipientListService:
    lists: RecipientLists
    files: RecipientFiles
    uploads: DocumentStore  # signs the upload forms (the documents bucket's presigned POST)
    suppressions: Suppressions
    clock: Clock
    new_id: IdGenerator
    bucket: str = ""  # where uploads land; events of another bucket are ignored ("": any)
    max_bytes: int = rules.MAX_UPLOAD_BYTES
    write_batch: int = WRITE_BATCH

    # --- the API ------------------------------------------------------------------------------------
    def create(self, identity: Identity, values: dict[str, object]) -> RecipientList:
        require_staff(identity, "create recipient lists")
        name = rules.validate_new_list(values)
        recipient_list = rules.new_list(self.new_id(), name, self.clock(), identity.sub)
        self.lists.create(recipient_list)
        return recipient_list

    def get(self, identity: Identity, list_id: str) -> RecipientList | None:
        require_staff(identity, "read recipient lists")
        return self.lists.get(checked_id("id", list_id))

    def list(self, identity: Identity, limit: int | None, next_token: str | None) -> Page[RecipientList]:
        require_staff(identity, "list recipient lists")
        return self.lists.list(page_size(limit), next_token)

    def request_upload(self, identity: Identity, list_id: str) -> UploadTicket:
        """A form to upload the list's CSV (up to 200 MiB), valid 15 minutes. The list then takes
        this upload only. Refused once an import wrote members: a list holds one file."""
        require_staff(identity, "upload recipient lists")
        current = self.lists.get(checked_id("listId", list_id))
        if current is None:
            raise NotFound(f"No recipient list with id {list_id}")
        if not self._takes_upload(current):
            raise Conflict(
                f"The list is {current.status.value} and holds recipients already: create a new list"
                " for another file"
            )
        upload_id = self.new_id()
        key = rules.upload_key(current.id, upload_id)
        ticket = self.uploads.upload_ticket(
            key, rules.UPLOAD_CONTENT_TYPE, rules.MAX_UPLOAD_BYTES, rules.UPLOAD_TTL_SECONDS
        )
        waiting = replace(
            current,
            status=ListStatus.EMPTY,
            upload_id=upload_id,
            counts=ImportCounts(),
            report_key=None,
            failure=None,
            updated_at=self.clock(),
        )
        if not self.lists.save(waiting, (current.status,), current.upload_id):
            raise Conflict("The list changed while the form was made (an import started?): read it again")
        return ticket

    @staticmethod
    def _takes_upload(current: RecipientList) -> bool:
        """EMPTY, or FAILED before anything was imported (a wrong file, e.g. without an email column)."""
        if current.status is ListStatus.EMPTY:
            return True
        return current.status is ListStatus.FAILED and current.counts.imported == 0

    def report_url(self, identity: Identity, recipient_list: RecipientList) -> str | None:
        """A link to the import's per-row report for a few minutes, when it has one."""
        require_staff(identity, "read recipient lists")
        if recipient_list.report_key is None:
            return None
        return self.files.download_url(recipient_list.report_key, rules.REPORT_TTL_SECONDS)

    def members(self, list_id: str, limit: int, next_token: str | None) -> Page[ListMember]:
        """A page of the list's members in key order (for the campaign sender)."""
        return self.lists.members(list_id, limit, next_token)

    # --- the import -------------------------------------------------------------------------------
    def import_upload(self, bucket: str, key: str) -> ImportResult:
        """Import the object ``key`` of ``bucket`` (an upload's ``ObjectCreated``) into its list."""
        parsed = rules.parse_upload_key(key)
        if parsed is None or (self.bucket and bucket != self.bucket):
            return ImportResult(key, "skipped", reason="not a recipient list upload")
        list_id, upload_id = parsed
        current = self.lists.get(list_id)
        if current is None:
            return ImportResult(key, "skipped", list_id, reason="no such list")
        if current.upload_id != upload_id:
            return ImportResult(key, "skipped", list_id, reason="not the upload the list takes")
        if current.status in (ListStatus.READY, ListStatus.FAILED):
            return ImportResult(key, "skipped", list_id, current.counts, "imported already")
        started = replace(current, status=ListStatus.IMPORTING, updated_at=self.clock())
        if not self.lists.save(started, (ListStatus.EMPTY, ListStatus.IMPORTING), upload_id):
            return ImportResult(key, "skipped", list_id, reason="the list changed meanwhile")
        return self._run(started, key, upload_id)

    def _run(self, started: RecipientList, key: str, upload_id: str) -> ImportResult:
        state = _Import(self, started.id)
        variables: tuple[str, ...] = ()
        failure: str | None = None
        try:
            try:
                recipients = rules.open_csv(self.files.open(key), self.max_bytes)
                variables = recipients.variables
                for row in recipients:
                    state.take(row)
            except FileProblem as bad:
                failure = bad.reason
                state.report.stopped(bad.reason)
            except LookupError:
                failure = "the uploaded file is gone: upload it again"
            state.drain()  # what was read before a failure stays: the report says where it stopped
            report = self._store_report(state.report, started.id, upload_id)
        finally:
            state.report.close()
        finished = replace(
            started,
            status=ListStatus.FAILED if failure else ListStatus.READY,
            variables=variables,
            counts=state.counts,
            report_key=report,
            failure=failure,
            updated_at=self.clock(),
        )
        if not self.lists.save(finished, (ListStatus.IMPORTING,), upload_id):
            log.warning("recipient import superseded", extra={"list_id": started.id, "upload_id": upload_id})
        counts = {name: getattr(state.counts, name) for name in ImportCounts.__dataclass_fields__}
        log.info(
            "recipient import",
            extra={"list_id": started.id, "upload_id": upload_id, "status": finished.status.value, **counts},
        )
        return ImportResult(key, finished.status.value, started.id, state.counts, failure or "")

    def _store_report(self, report: _Report, list_id: str, upload_id: str) -> str | None:
        if not report.lines:
            return None
        key = rules.report_key(list_id, upload_id)
        self.files.save(key, report.rewound(), rules.UPLOAD_CONTENT_TYPE)
        return key
