"""Audit rules: which record a mutation names, filter checks, and the pending record's life."""

from __future__ import annotations

import ast
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bloodbank.cursor import CursorCodec
from bloodbank.domain import audit
from bloodbank.domain.audit import AuditFilter, Target, check_filter, inclusive, target_of
from bloodbank.domain.blood import BloodGroup
from bloodbank.domain.identity import Group, Identity
from bloodbank.errors import BadUserInput, Forbidden
from bloodbank.fakes import InMemoryAuditLog
from bloodbank.services.audit import AuditService
from bloodbank.storage import keys

AT = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)


def service() -> tuple[AuditService, InMemoryAuditLog]:
    log = InMemoryAuditLog(CursorCodec("x" * 32))
    ids = iter(f"audit-{n}" for n in range(100))
    return AuditService(log, lambda: AT, lambda: next(ids)), log


def who(*groups: Group, hospital: str | None = None) -> Identity:
    return Identity("user-1", "user", frozenset(groups), "access", hospital_id=hospital)


@pytest.mark.parametrize(
    ("arguments", "returns", "expected"),
    [
        ({"id": "r-1"}, "BloodRequest", Target("BloodRequest", "r-1")),
        ({"input": {"id": "d-1", "phone": "x"}}, "Donor", Target("Donor", "d-1")),
        ({"input": {"donor_id": "d-2", "kind": "X"}}, "UploadTicket", Target("Donor", "d-2")),
        ({"list_id": "l-1"}, "UploadTicket", Target("RecipientList", "l-1")),
        ({"input": {"first_name": "Ann"}}, "Donor", None),  # a create: storage names what it wrote
        ({"id": ""}, "Donor", None),
        ({"id": "x" * 500}, "Donor", Target("Donor", "x" * audit.MAX_ID)),
    ],
)
def test_the_record_a_mutation_names(
    arguments: dict[str, object], returns: str, expected: Target | None
) -> None:
    assert target_of(arguments, returns) == expected


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (keys.donor("d-1"), ("Donor", "d-1")),
        (keys.donation("d-1", AT, "W0000 26 000001"), ("Donation", "W0000 26 000001")),
        (keys.unit("u-1"), ("BloodUnit", "u-1")),
        (keys.blood_request("r-1"), ("BloodRequest", "r-1")),
        (
            keys.stock_level("site-north", BloodGroup.O_NEG, "RED_CELLS"),
            ("StockLevel", "site-north:O_NEG:RED_CELLS"),
        ),
        (keys.campaign("c-1"), ("Campaign", "c-1")),
        (keys.employee("e-1"), ("Employee", "e-1")),
        (keys.recipient_list("l-1"), ("RecipientList", "l-1")),
        (keys.donor_email("ann@example.org"), None),  # not a record of its own
        (keys.audit_event("a-1"), None),
    ],
)
def test_the_record_a_write_names(key: keys.Key, expected: tuple[str, str] | None) -> None:
    assert keys.audit_target(key) == expected


def test_filters_are_checked() -> None:
    assert check_filter(AuditFilter()) == []
    assert check_filter(AuditFilter(actor="a", action="registerDonor")) == []
    fields = {
        p.field
        for p in check_filter(
            AuditFilter(action="drop table", target_id="x", actor="a", since=AT, until=AT.replace(hour=8))
        )
    }
    assert fields == {"filter.action", "filter.targetType", "filter.actor", "filter.until"}
    assert [p.field for p in check_filter(AuditFilter(actor="x" * 201))] == ["filter.actor"]


def test_until_takes_in_its_whole_millisecond() -> None:
    shown = AT.replace(microsecond=410_000)
    assert inclusive(AuditFilter(until=shown)).until == shown.replace(microsecond=410_999)
    exact = AT.replace(microsecond=410_123)
    assert inclusive(AuditFilter(until=exact)).until == exact
    assert inclusive(AuditFilter()).until is None


def test_a_mutation_that_wrote_nothing_is_recorded_on_its_own() -> None:
    svc, log = service()
    with svc.mutation(
        who(Group.HOSPITALS, hospital="h-1"), "cancelBloodRequest", {"id": "r-1"}, "BloodRequest", "req-1"
    ):
        pass
    [event] = log.events
    assert (event.id, event.at, event.actor, event.groups) == ("audit-0", AT, "user-1", ("Hospitals",))
    assert (event.action, event.target, event.request_id) == (
        "cancelBloodRequest",
        Target("BloodRequest", "r-1"),
        "req-1",
    )
    assert event.hospital_id == "h-1"


def test_a_write_that_carried_the_record_is_not_recorded_twice() -> None:
    svc, log = service()
    with svc.mutation(who(Group.STAFF), "registerDonor", {"input": {}}, "Donor", "req-1"):
        scope = audit.pending.get()
        assert scope is not None
        assert scope.with_target(Target("Donor", "d-9")).target == Target("Donor", "d-9")
        scope.written = True  # what storage does once its transaction committed
    assert log.events == []
    assert audit.pending.get() is None


def test_a_failed_mutation_leaves_no_record() -> None:
    svc, log = service()
    with pytest.raises(BadUserInput), svc.mutation(who(Group.STAFF), "registerDonor", {}, "Donor", "req-1"):
        raise BadUserInput("no")
    assert log.events == []
    assert audit.pending.get() is None


def test_only_admins_read_the_trail() -> None:
    svc, _ = service()
    for groups in ((Group.STAFF,), (Group.DONORS,), (Group.HOSPITALS,)):
        with pytest.raises(Forbidden):
            svc.list(who(*groups), AuditFilter(), None, None)
    with pytest.raises(BadUserInput):
        svc.list(who(Group.ADMINS), AuditFilter(target_id="x"), None, None)
    assert svc.list(who(Group.ADMINS), AuditFilter(), None, None).items == []


def test_every_root_mutation_runs_through_call_so_every_mutation_is_audited() -> None:
    """``schema.calls.call`` holds the record pending for root mutations: no mutation may bypass it."""
    root = Path(__file__).resolve().parents[2] / "schema" / "root.py"
    tree = ast.parse(root.read_text())
    [mutation] = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Mutation"]
    methods = [n for n in mutation.body if isinstance(n, ast.FunctionDef)]
    assert len(methods) >= 27
    for method in methods:
        calls = [
            n
            for n in ast.walk(method)
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "call"
        ]
        assert calls, f"Mutation.{method.name} does not run through schema.calls.call"
