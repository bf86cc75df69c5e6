"""Recipient lists: addresses uploaded as CSV, each with the values its e-mail is personalized with.

Pure rules, no I/O. The importer streams a file that may be hundreds of megabytes, so everything
here works on an iterator of byte chunks and never holds more than a chunk and one line:

- the encoding is detected from the first chunk (a BOM for UTF-8, UTF-16 or UTF-32; else UTF-8 if
  it decodes; else ``charset_normalizer``'s guess, Windows-1252 on a tie, since that is what Excel
  writes in the West). A file that starts in plain ASCII and turns out not to be UTF-8 later is
  decoded as the legacy encoding its later bytes suggest.
- the first record is the header: one ``email`` column (any case) and up to 49 other columns, whose
  names become the template variables of the list (identifier-like, so a template can use them).
- every other record becomes a ``Row``: OK with its normalized address and values, or why not.
  Duplicates and suppressed addresses are decided by the importer, which sees the whole file.

Addresses are normalized (``normalize``) so that the same mailbox always has the same
``campaigns.address_key``: members are keyed by it, and dedupe is case-insensitive.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from array import array
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import Any

from bloodbank.domain import text
from bloodbank.domain.email_templates import RESERVED_VARIABLES
from bloodbank.errors import BadUserInput, FieldProblem

MAX_UPLOAD_BYTES = 200 * 1024 * 1024  # 200 MiB: about four million rows of address and name
UPLOAD_CONTENT_TYPE = "text/csv"
UPLOAD_TTL_SECONDS = 15 * 60
REPORT_TTL_SECONDS = 5 * 60  # a report link: fetched right away
MAX_COLUMNS = 50
MAX_VALUE_LENGTH = 1000
MAX_LINE_CHARS = 1024 * 1024  # a "line" longer than this is not CSV (a binary file, one huge line)
SAMPLE_BYTES = 64 * 1024  # what the encoding is detected from
EMAIL_COLUMN = "email"
_COLUMN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_ROOT = "recipient-lists"
_UPLOAD_KEY = re.compile(
    r"recipient-lists/([A-Za-z0-9][A-Za-z0-9_.:-]{0,63})/uploads/([A-Za-z0-9_-]{1,64})\.csv"
)


class InvalidAddress(ValueError):
    """Not an address we can send to; the message says why (it never repeats the address)."""


def normalize(raw: str) -> str:
    """The address in the one form every store keys it by: syntax checked, no SMTPUTF8 mailbox
    (SES cannot send to one), an internationalized domain in punycode, all lower case."""
    value = raw.strip()
    if not value:
        raise InvalidAddress("the address is empty")
    if len(value) > text.MAX_EMAIL_LENGTH or text.has_control(value):
        raise InvalidAddress("not a valid e-mail address")
    from email_validator import EmailNotValidError, validate_email

    try:
        result = validate_email(value, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise InvalidAddress(str(exc)) from None
    return str(result.ascii_email or result.normalized).lower()


# --- lists and members -------------------------------------------------------------------------------
class ListStatus(Enum):
    EMPTY = "EMPTY"  # created; waiting for its upload
    IMPORTING = "IMPORTING"
    READY = "READY"  # imported: campaigns can use it
    FAILED = "FAILED"  # the file could not be used; ``failure`` says why


@dataclass(frozen=True, slots=True)
class ImportCounts:
    rows: int = 0  # data records in the file (the header and blank lines are not rows)
    imported: int = 0  # distinct, valid, not suppressed: the list's members
    duplicates: int = 0  # an address already seen earlier in the file
    invalid: int = 0  # a bad address, a wrong number of fields, a value too long
    suppressed: int = 0  # suppressed or unsubscribed addresses, skipped


@dataclass(frozen=True, slots=True)
class RecipientList:
    id: str
    name: str
    status: ListStatus
    variables: tuple[str, ...]  # the file's columns other than email, in file order
    counts: ImportCounts
    created_at: datetime
    updated_at: datetime
    created_by: str
    upload_id: str | None = None  # the upload the list takes (set when its form was handed out)
    report_key: str | None = None  # the per-row report of the import, when a row was not imported
    failure: str | None = None  # why the import FAILED


@dataclass(frozen=True, slots=True)
class ListMember:
    email: str  # normalized
    variables: Mapping[str, str]


def validate_new_list(values: Mapping[str, object]) -> str:
    """The name of a new list: 1-100 printable characters, spaces collapsed."""
    name = " ".join(str(values.get("name") or "").split())
    if not name or len(name) > text.MAX_NAME_LENGTH or text.has_control(name):
        raise BadUserInput.of([FieldProblem("input.name", "must be 1-100 printable characters")])
    return name


def new_list(list_id: str, name: str, at: datetime, by: str) -> RecipientList:
    return RecipientList(list_id, name, ListStatus.EMPTY, (), ImportCounts(), at, at, by)


# --- object keys ---------------------------------------------------------------------------------------
def upload_key(list_id: str, upload_id: str) -> str:
    return f"{_ROOT}/{list_id}/uploads/{upload_id}.csv"


def report_key(list_id: str, upload_id: str) -> str:
    return f"{_ROOT}/{list_id}/reports/{upload_id}.csv"


def parse_upload_key(key: str) -> tuple[str, str] | None:
    """(list id, upload id) of an upload's object key; None for any other key."""
    found = _UPLOAD_KEY.fullmatch(key)
    return (found.group(1), found.group(2)) if found else None


# --- rows ----------------------------------------------------------------------------------------------
class RowOutcome(Enum):
    OK = "OK"
    INVALID_ADDRESS = "INVALID_ADDRESS"
    WRONG_FIELD_COUNT = "WRONG_FIELD_COUNT"
    VALUE_TOO_LONG = "VALUE_TOO_LONG"
    DUPLICATE = "DUPLICATE"  # decided by the importer
    SUPPRESSED = "SUPPRESSED"  # decided by the importer


@dataclass(slots=True)
class Row:
    number: int  # the record's row in a spreadsheet: the header is row 1
    line: int  # the file's line where the record ends (quoted fields may span lines)
    outcome: RowOutcome
    email: str | None = None
    values: dict[str, str] = field(default_factory=dict)
    reason: str = ""


class FileProblem(Exception):
    """The whole file cannot be used (not text, not CSV, no email column, ...); says why and how
    to fix it, without quoting the file."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --- encoding ------------------------------------------------------------------------------------------
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_PREFERRED_LEGACY = ("cp1252", "latin_1", "iso8859_15")


def detect_encoding(sample: bytes) -> str:
    """The codec name of a file that starts with ``sample``; FileProblem if it is not text."""
    for bom, encoding in _BOMS:
        if sample.startswith(bom):
            return encoding
    if sample.startswith(b"PK\x03\x04") or sample.startswith(b"\xd0\xcf\x11\xe0"):
        raise FileProblem("the file is a spreadsheet workbook, not CSV: save it as CSV UTF-8 and upload that")
    if b"\x00" in sample:
        raise FileProblem("the file is not text (it holds NUL bytes): upload a CSV file")
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
    except UnicodeDecodeError:
        return _legacy_encoding(sample)
    return "utf-8"


def _legacy_encoding(sample: bytes) -> str:
    import charset_normalizer

    matches = charset_normalizer.from_bytes(sample)
    best = matches.best()
    if best is None:
        raise FileProblem("the file's text encoding could not be recognized: save it as CSV UTF-8")
    for match in matches:  # Windows-1252 on a tie: short samples fit several single-byte codecs
        tied = match.chaos == best.chaos and match.coherence == best.coherence
        if tied and match.encoding in _PREFERRED_LEGACY:
            return "cp1252"
    return str(best.encoding)


class _Decoder:
    """Decodes chunks as they come. A file whose first part was plain ASCII (so it looked like
    UTF-8) and whose later bytes are not UTF-8 switches to the legacy encoding those bytes suggest:
    the ASCII read so far means the same in either."""

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        self._decoder = codecs.getincrementaldecoder(encoding)()
        self._ascii_so_far = encoding == "utf-8"

    def decode(self, chunk: bytes, final: bool = False) -> str:
        try:
            decoded: str = self._decoder.decode(chunk, final)
        except UnicodeDecodeError:
            if not self._ascii_so_far:
                raise FileProblem(
                    f"the file is not valid {self.encoding} throughout: save it as CSV UTF-8"
                ) from None
            self.__init__(_legacy_encoding(chunk))  # type: ignore[misc]
            decoded = self._decoder.decode(chunk, final)
        if self._ascii_so_far and not chunk.isascii():
            self._ascii_so_far = False
        return decoded


def decoded(chunks: Iterable[bytes], max_bytes: int = MAX_UPLOAD_BYTES) -> tuple[str, Iterator[str]]:
    """The file's encoding and its text, chunk by chunk. FileProblem past ``max_bytes``."""
    source = iter(chunks)
    sample = bytearray()
    for chunk in source:
        sample += chunk
        if len(sample) >= SAMPLE_BYTES:
            break
    if not sample:
        raise FileProblem("the file is empty: upload a CSV file with a header row and an email column")
    decoder = _Decoder(detect_encoding(bytes(sample[:SAMPLE_BYTES])))

    def text_chunks() -> Iterator[str]:
        total = len(sample)
        if total > max_bytes:
            raise FileProblem(f"the file is larger than {_size(max_bytes)}")
        yield decoder.decode(bytes(sample))
        sample.clear()
        for chunk in source:
            total += len(chunk)
            if total > max_bytes:
                raise FileProblem(f"the file is larger than {_size(max_bytes)}")
            yield decoder.decode(chunk)
        yield decoder.decode(b"", final=True)

    return decoder.encoding, text_chunks()


def _size(count: int) -> str:
    return f"{count / (1024 * 1024):g} MiB" if count >= 1024 * 1024 else f"{count} bytes"


def lines(texts: Iterable[str]) -> Iterator[str]:
    """Lines with their ``\\n`` kept (what ``csv.reader`` needs for quoted line breaks), split only
    at ``\\n``; FileProblem for a line too long to be CSV."""
    carry = ""
    for piece in texts:
        buffer = carry + piece if carry else piece
        cut = buffer.rfind("\n") + 1
        carry = buffer[cut:]
        if len(carry) > MAX_LINE_CHARS:
            raise FileProblem("the file has a line longer than 1 MiB: it is not a CSV file")
        if cut:
            yield from io.StringIO(buffer[:cut], newline="\n")
    if carry:
        yield carry


# --- CSV -----------------------------------------------------------------------------------------------
def _delimiter(first_line: str) -> str:
    """Excel writes ``;`` where the decimal separator is a comma; tab-separated exports exist too."""
    counts = {d: first_line.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _columns(header: list[str]) -> tuple[int, list[str | None]]:
    """The email column's index and each column's variable name (None for an unnamed column)."""
    names = [h.strip().lstrip("\ufeff") for h in header]
    emails = [i for i, n in enumerate(names) if n.lower() == EMAIL_COLUMN]
    if not emails:
        raise FileProblem("the header row has no email column: name the column of addresses 'email'")
    if len(emails) > 1:
        raise FileProblem("the header row has more than one email column")
    if len(names) > MAX_COLUMNS:
        raise FileProblem(f"the file has {len(names)} columns; at most {MAX_COLUMNS} are allowed")
    variables: list[str | None] = []
    seen: set[str] = set()
    for i, name in enumerate(names):
        if i == emails[0] or not name:
            variables.append(None)
            continue
        if not _COLUMN_NAME.fullmatch(name):
            raise FileProblem(
                f"column {i + 1} of the header is not a usable variable name: use letters, digits and"
                " '_', starting with a letter (e.g. first_name)"
            )
        if name.lower() in RESERVED_VARIABLES:
            raise FileProblem(f"column {i + 1} may not be called {name}: every e-mail sets it itself")
        if name.lower() in seen:
            raise FileProblem(f"column {i + 1} repeats the name of an earlier column")
        seen.add(name.lower())
        variables.append(name)
    return emails[0], variables


class RecipientCsv:
    """A recipient file, read as it streams: ``encoding`` and ``variables`` once opened (the header
    is read by ``open_csv``), then each data record as a ``Row`` when iterated, once."""

    def __init__(self, encoding: str, reader: Any, header: list[str]) -> None:
        self.encoding = encoding
        self._reader = reader  # a csv.reader: iterates records, counts lines (line_num)
        self._email_at, self._names = _columns(header)
        self.variables = tuple(n for n in self._names if n is not None)

    def __iter__(self) -> Iterator[Row]:
        width = len(self._names)
        email_at = self._email_at
        named = [(i, n) for i, n in enumerate(self._names) if n is not None]
        number = 1
        try:
            for fields in self._reader:
                if not fields or (len(fields) == 1 and not fields[0].strip()):
                    continue  # a blank line
                number += 1
                line = self._reader.line_num
                if len(fields) != width:
                    reason = f"has {len(fields)} fields; the header has {width}"
                    yield Row(number, line, RowOutcome.WRONG_FIELD_COUNT, reason=reason)
                    continue
                values = {name: fields[i].strip() for i, name in named}
                if any(len(v) > MAX_VALUE_LENGTH for v in values.values()):
                    reason = f"a value is longer than {MAX_VALUE_LENGTH} characters"
                    yield Row(number, line, RowOutcome.VALUE_TOO_LONG, reason=reason)
                    continue
                try:
                    email = normalize(fields[email_at])
                except InvalidAddress as bad:
                    yield Row(number, line, RowOutcome.INVALID_ADDRESS, reason=str(bad))
                    continue
                yield Row(number, line, RowOutcome.OK, email, values)
        except csv.Error as exc:
            line = self._reader.line_num
            raise FileProblem(f"line {line}: the file is not valid CSV ({exc})") from None


def open_csv(chunks: Iterable[bytes], max_bytes: int = MAX_UPLOAD_BYTES) -> RecipientCsv:
    """Start reading a recipient file: detects the encoding and reads the header (FileProblem if
    either fails). Iterate the result for its rows."""
    encoding, texts = decoded(chunks, max_bytes)
    source = lines(texts)
    first = next(source, "")
    delimiter = _delimiter(first)

    def all_lines() -> Iterator[str]:
        yield first
        yield from source

    reader = csv.reader(all_lines(), delimiter=delimiter)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise FileProblem(f"the header row is not valid CSV ({exc})") from None
    if not header or not any(h.strip() for h in header):
        raise FileProblem("the file has no header row: the first line must name the columns, one 'email'")
    return RecipientCsv(encoding, reader, header)


# --- dedupe in bounded memory ------------------------------------------------------------------------
class SeenAddresses:
    """The addresses of a file seen so far, as 64-bit digests of their address keys in an
    open-addressing hash table (one ``array`` of 8-byte slots, at most 3/4 full): about 11-21
    bytes an address, against some 70 for a ``set`` of ints. Two different addresses share a
    digest with a probability of about n^2 / 2^65: 3 in 100 million for a million rows."""

    def __init__(self, capacity: int = 1 << 16) -> None:
        self._slots = array("Q", bytes(8 * capacity))
        self._mask = capacity - 1
        self._count = 0

    def __len__(self) -> int:
        return self._count

    @property
    def nbytes(self) -> int:
        return len(self._slots) * self._slots.itemsize

    def add(self, key: str) -> bool:
        """True if ``key`` (a ``campaigns.address_key``, hex) was not seen before."""
        digest = int(key[:16], 16) or 1  # 0 marks an empty slot
        slots, mask = self._slots, self._mask
        i = digest & mask
        while True:
            found = slots[i]
            if found == 0:
                break
            if found == digest:
                return False
            i = (i + 1) & mask
        slots[i] = digest
        self._count += 1
        if self._count * 4 > len(slots) * 3:
            self._grow()
        return True

    def _grow(self) -> None:
        old = self._slots
        self._slots = array("Q", bytes(16 * len(old)))
        self._mask = len(self._slots) - 1
        slots, mask = self._slots, self._mask
        for digest in old:
            if digest:
                i = digest & mask
                while slots[i]:
                    i = (i + 1) & mask
                slots[i] = digest
