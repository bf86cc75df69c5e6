"""Recipient files: addresses normalized, encodings detected, CSV read as it streams, the import's
outcomes and counts (with fakes)."""

from __future__ import annotations

import codecs
from collections.abc import Iterator

import pytest

from bloodbank.cursor import CursorCodec
from bloodbank.domain import recipients as rules
from bloodbank.domain.campaigns import SuppressionReason, address_key
from bloodbank.domain.identity import Group, Identity
from bloodbank.domain.recipients import FileProblem, InvalidAddress, ListStatus, RowOutcome
from bloodbank.fakes import (
    FixedClock,
    InMemoryDocumentStore,
    InMemoryRecipientFiles,
    InMemoryRecipientLists,
    InMemorySuppressions,
    SequentialIds,
)
from bloodbank.services.recipients import RecipientListService
from tests.conftest import PAGE_SECRET

STAFF = Identity("staff-1", "s", frozenset({Group.STAFF}), "access")


def chunks(data: bytes, size: int = 7) -> Iterator[bytes]:
    return (data[i : i + size] for i in range(0, len(data), size))


def rows(data: bytes, size: int = 7) -> list[rules.Row]:
    return list(rules.open_csv(chunks(data, size)))


# --- addresses ------------------------------------------------------------------------------------
def test_normalize_lower_cases_and_puts_idn_domains_in_punycode() -> None:
    assert rules.normalize("  Ada.Lovelace@Example.ORG ") == "ada.lovelace@example.org"
    assert rules.normalize("jose@Bücher.de") == "jose@xn--bcher-kva.de"
    assert rules.normalize("JOSE@xn--bcher-kva.de") == "jose@xn--bcher-kva.de"


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ("josé@example.org", "Internationalized characters before the @-sign"),
        ("no-at-sign.example.org", "@-sign"),
        ("", "empty"),
        ("a@b@example.org", "@"),
        ("ada@example.org\n", "-"),
    ],
)
def test_normalize_refuses_smtputf8_and_bad_syntax(raw: str, says: str) -> None:
    if raw.endswith("\n"):
        assert rules.normalize(raw) == "ada@example.org"  # surrounding whitespace goes
        return
    with pytest.raises(InvalidAddress, match=says):
        rules.normalize(raw)


# --- encodings --------------------------------------------------------------------------------------
TEXT = "email,first_name,city\nzoe@example.org,Zoë,Zürich\nbjorn@example.org,Bjørn,Århus\n"


@pytest.mark.parametrize(
    ("encoded", "encoding"),
    [
        (TEXT.encode("utf-8"), "utf-8"),
        (codecs.BOM_UTF8 + TEXT.encode("utf-8"), "utf-8-sig"),
        (TEXT.encode("utf-16"), "utf-16"),  # with its BOM (little endian here)
        (codecs.BOM_UTF16_BE + TEXT.encode("utf-16-be"), "utf-16"),
        (TEXT.encode("latin-1"), "cp1252"),
        (TEXT.encode("cp1252"), "cp1252"),
    ],
)
def test_encodings_are_detected_and_decoded_in_chunks(encoded: bytes, encoding: str) -> None:
    reader = rules.open_csv(chunks(encoded, 5))  # chunks split characters and BOMs
    assert reader.encoding == encoding
    assert reader.variables == ("first_name", "city")
    got = [(r.email, r.values) for r in reader]
    assert got == [
        ("zoe@example.org", {"first_name": "Zoë", "city": "Zürich"}),
        ("bjorn@example.org", {"first_name": "Bjørn", "city": "Århus"}),
    ]


def test_a_file_ascii_at_first_and_latin_1_later_is_read_as_latin_1() -> None:
    head = "email,name\n" + "".join(f"p{i}@example.org,Plain\n" for i in range(5000))  # > the sample
    data = (head + "late@example.org,Françoise\n").encode("latin-1")
    found = rows(data, 4096)
    assert len(found) == 5001
    assert found[-1].values == {"name": "Françoise"}


def test_files_that_are_not_text_are_refused() -> None:
    with pytest.raises(FileProblem, match="workbook"):
        rules.open_csv([b"PK\x03\x04" + bytes(100)])
    with pytest.raises(FileProblem, match="not text"):
        rules.open_csv([b"email\n\x00\x01\x02"])
    with pytest.raises(FileProblem, match="empty"):
        rules.open_csv([])
    with pytest.raises(FileProblem, match="longer than 1 MiB"):
        list(rules.open_csv([b"email\n", b"x" * (2 * 1024 * 1024)]))
    with pytest.raises(FileProblem, match="larger than"):
        list(rules.open_csv([b"email\n" + b"a@example.org\n" * 100], max_bytes=100))


# --- CSV --------------------------------------------------------------------------------------------
def test_quoted_fields_with_newlines_commas_and_quotes() -> None:
    data = b'Email,note\r\n"a@example.org","line one\r\nline two, with ""quotes"""\r\nb@example.org,x\r\n'
    first, second = rows(data, 3)
    assert first.values == {"note": 'line one\r\nline two, with "quotes"'}
    assert (first.number, first.line) == (2, 3)  # row 2 of the sheet ends on line 3 of the file
    assert (second.email, second.number, second.line) == ("b@example.org", 3, 4)


def test_row_outcomes_wrong_field_counts_bad_addresses_long_values_blank_lines() -> None:
    data = (
        "email,name\n"
        "ok@example.org,Ok\n"
        "\n"
        "short@example.org\n"
        "too@example.org,many,fields\n"
        "not-an-address,X\n"
        f"long@example.org,{'x' * 1001}\n"
    ).encode()
    outcomes = [(r.number, r.outcome) for r in rows(data)]
    assert outcomes == [
        (2, RowOutcome.OK),
        (3, RowOutcome.WRONG_FIELD_COUNT),
        (4, RowOutcome.WRONG_FIELD_COUNT),
        (5, RowOutcome.INVALID_ADDRESS),
        (6, RowOutcome.VALUE_TOO_LONG),
    ]
    assert "has 1 fields; the header has 2" in rows(data)[1].reason


def test_semicolon_and_tab_separated_files() -> None:
    assert rows(b"name;EMAIL\nAda;ada@example.org\n")[0].values == {"name": "Ada"}
    assert rows(b"email\tname\nada@example.org\tAda\n")[0].email == "ada@example.org"


@pytest.mark.parametrize(
    ("header", "says"),
    [
        (b"name,address\n", "no email column"),
        (b"email,e-mail,EMAIL\n", "more than one email column"),
        (b"email,first name\n", "not a usable variable name"),
        (b"email,unsubscribe_url\n", "may not be called"),
        (b"email,name,Name\n", "repeats the name"),
        (b"email," + b",".join(b"c%d" % i for i in range(50)) + b"\n", "at most 50"),
        (b"\n", "no header row"),
    ],
)
def test_header_problems_fail_the_file(header: bytes, says: str) -> None:
    with pytest.raises(FileProblem, match=says):
        rules.open_csv([header + b"a@example.org\n"])


def test_an_unclosed_quote_is_a_file_problem_not_a_crash() -> None:
    data = b'email,name\na@example.org,"never closed\n' + b"x" * 200_000 + b"\n"
    with pytest.raises(FileProblem, match="not valid CSV"):
        list(rules.open_csv(chunks(data, 65536)))


def test_seen_addresses_counts_each_key_once_and_grows() -> None:
    seen = rules.SeenAddresses(capacity=8)
    keys = [address_key(f"p{i}@example.org") for i in range(5000)]
    assert all(seen.add(k) for k in keys)
    assert not any(seen.add(k) for k in keys)
    assert len(seen) == 5000
    assert seen.nbytes <= 16 * 5000 * 2  # 8-byte slots, at most 3/4 full


def test_upload_keys_round_trip_and_nothing_else_parses() -> None:
    key = rules.upload_key("list-1", "up-2")
    assert key == "recipient-lists/list-1/uploads/up-2.csv"
    assert rules.parse_upload_key(key) == ("list-1", "up-2")
    assert rules.parse_upload_key("recipient-lists/list-1/reports/up-2.csv") is None
    assert rules.parse_upload_key("recipient-lists/../x/uploads/up.csv") is None
    assert rules.parse_upload_key("donors/d1/consent-form/x") is None


# --- the import -------------------------------------------------------------------------------------
class Setup:
    def __init__(self) -> None:
        self.lists = InMemoryRecipientLists(CursorCodec(PAGE_SECRET))
        self.files = InMemoryRecipientFiles(chunk_size=1000)
        self.suppressions = InMemorySuppressions()
        self.clock = FixedClock()
        self.service = RecipientListService(
            self.lists,
            self.files,
            InMemoryDocumentStore(clock=self.clock),
            self.suppressions,
            self.clock,
            SequentialIds("id"),
            bucket="docs",
        )

    def upload(self, data: bytes) -> tuple[str, str]:
        listed = self.service.create(STAFF, {"name": "Donors 2026"})
        ticket = self.service.request_upload(STAFF, listed.id)
        self.files.put(ticket.key, data)
        return listed.id, ticket.key


def report_of(setup: Setup, list_id: str) -> list[str]:
    stored = setup.lists.get(list_id)
    assert stored is not None
    assert stored.report_key is not None
    return setup.files.objects[stored.report_key].decode().splitlines()


def test_import_counts_every_outcome_and_reports_each_row_not_imported() -> None:
    setup = Setup()
    setup.suppressions.suppress(address_key("gone@example.org"), SuppressionReason.HARD_BOUNCE, setup.clock())
    data = (
        b"email,first_name\n"
        b"Ada@Example.org,Ada\n"
        b"ada@example.ORG,Ada again\n"  # the same mailbox
        b"gone@example.org,Gone\n"
        b"bad,Bad\n"
        b"short@example.org\n"
        b"bob@example.org,Bob\n"
    )
    list_id, key = setup.upload(data)
    result = setup.service.import_upload("docs", key)
    assert result.outcome == "READY"
    stored = setup.lists.get(list_id)
    assert stored is not None
    assert stored.status is ListStatus.READY
    assert stored.variables == ("first_name",)
    c = stored.counts
    assert (c.rows, c.imported, c.duplicates, c.invalid, c.suppressed) == (6, 2, 1, 2, 1)
    members = setup.lists.members(list_id, 10, None).items
    assert sorted(m.email for m in members) == ["ada@example.org", "bob@example.org"]
    assert {m.email: dict(m.variables) for m in members}["ada@example.org"] == {"first_name": "Ada"}
    report = report_of(setup, list_id)
    assert report[0] == "row,line,outcome,reason"
    assert sorted(line.split(",")[:3] for line in report[1:]) == [
        ["3", "3", "DUPLICATE"],
        ["4", "4", "SUPPRESSED"],
        ["5", "5", "INVALID_ADDRESS"],
        ["6", "6", "WRONG_FIELD_COUNT"],
    ]
    assert not any("example.org" in line for line in report)  # rows and reasons, no addresses


def test_a_retried_event_gives_the_same_counts_and_a_crash_mid_import_is_resumed() -> None:
    setup = Setup()
    data = ("email\n" + "".join(f"p{i % 700}@example.org\n" for i in range(1000))).encode()
    list_id, key = setup.upload(data)
    setup.lists.fail_after = 300  # DynamoDB goes away part-way: the event fails and is retried
    with pytest.raises(Exception, match="unavailable"):
        setup.service.import_upload("docs", key)
    stored = setup.lists.get(list_id)
    assert stored is not None
    assert stored.status is ListStatus.IMPORTING
    setup.lists.fail_after = None
    first = setup.service.import_upload("docs", key)
    again = setup.service.import_upload("docs", key)
    assert first.outcome == "READY"
    assert (again.outcome, again.reason) == ("skipped", "imported already")
    assert first.counts == again.counts
    assert (first.counts.imported, first.counts.duplicates) == (700, 300)
    assert len(setup.lists.member_items[list_id]) == 700
    assert max(setup.lists.batches) <= 25


def test_a_file_without_an_email_column_fails_the_list_and_another_file_may_be_uploaded() -> None:
    setup = Setup()
    list_id, key = setup.upload(b"name,phone\nAda,+1415\n")
    result = setup.service.import_upload("docs", key)
    assert result.outcome == "FAILED"
    stored = setup.lists.get(list_id)
    assert stored is not None
    assert stored.status is ListStatus.FAILED
    assert stored.failure is not None
    assert "no email column" in stored.failure
    assert "no email column" in report_of(setup, list_id)[-1]
    ticket = setup.service.request_upload(STAFF, list_id)  # nothing was imported: try again
    setup.files.put(ticket.key, b"email\nada@example.org\n")
    assert setup.service.import_upload("docs", ticket.key).outcome == "READY"
    assert setup.service.import_upload("docs", key).reason == "not the upload the list takes"


def test_uploads_the_list_does_not_take_are_skipped() -> None:
    setup = Setup()
    list_id, key = setup.upload(b"email\nada@example.org\n")
    assert setup.service.import_upload("other-bucket", key).reason == "not a recipient list upload"
    assert setup.service.import_upload("docs", "donors/x/consent-form/y").outcome == "skipped"
    assert setup.service.import_upload("docs", rules.upload_key("nope", "u1")).reason == "no such list"
    assert setup.service.import_upload("docs", rules.upload_key(list_id, "u-old")).outcome == "skipped"
    assert setup.files.opened == []
