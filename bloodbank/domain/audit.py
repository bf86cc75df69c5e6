"""The audit trail: one record per successful mutation, written in the same transaction as its change.

A record says who (the caller's user id, groups and hospital), what (the mutation's name and the
record it changed), when, and under which request id. It holds no personal data: no names, e-mail
addresses or arguments, only ids. Admins read the trail with ``listAuditEvents``.

How a record reaches the transaction: while a mutation runs, ``pending`` holds its ``PendingAudit``.
The storage layer adds the record to the first write the mutation makes (a TransactWriteItems, or a
single conditional write turned into one) and marks it written. A mutation that wrote nothing in the
table (an upload form, an idempotent replay) gets the record on its own when it succeeds. A
mutation that fails writes no record, as it writes nothing else.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from bloodbank.errors import FieldProblem

MAX_ACTION = 64
_ACTION = re.compile(r"^[a-zA-Z][a-zA-Z0-9]{0,63}$")
MAX_ID = 200


@dataclass(frozen=True, slots=True)
class Target:
    """The record a mutation changed, by its GraphQL type and id."""

    type: str
    id: str


@dataclass(frozen=True, slots=True)
class AuditEvent:
    id: str
    at: datetime
    actor: str  # the caller's user id (Cognito sub)
    groups: tuple[str, ...]
    action: str  # the mutation, e.g. "fulfillBloodRequest"
    target: Target | None
    request_id: str
    hospital_id: str | None = None


@dataclass(slots=True)
class PendingAudit:
    """The record of the mutation now running, and whether a write has carried it yet."""

    event: AuditEvent
    written: bool = False

    def with_target(self, target: Target | None) -> AuditEvent:
        """The record, naming ``target`` when the mutation's arguments did not name one."""
        if self.event.target is not None or target is None:
            return self.event
        return replace(self.event, target=target)


pending: ContextVar[PendingAudit | None] = ContextVar("bloodbank_pending_audit", default=None)


@contextmanager
def recording(event: AuditEvent) -> Iterator[PendingAudit]:
    """Make ``event`` the pending record of the writes made inside the block."""
    scope = PendingAudit(event)
    token = pending.set(scope)
    try:
        yield scope
    finally:
        pending.reset(token)


# Arguments that name the record a mutation acts on, when it has no ``id`` of its own.
_ID_ARGUMENTS = {
    "donor_id": "Donor",
    "document_id": "DonorDocument",
    "list_id": "RecipientList",
    "campaign_id": "Campaign",
    "template_id": "EmailTemplate",
    "employee_id": "Employee",
}


def target_of(arguments: Mapping[str, Any], returns: str | None) -> Target | None:
    """The record named by a mutation's arguments: ``id`` (or ``input.id``) is of the type it returns;
    otherwise a known ``...Id`` argument. None when the arguments name none (a create: the storage
    layer names what it wrote)."""
    scopes = [arguments]
    if isinstance(arguments.get("input"), Mapping):
        scopes.append(arguments["input"])
    for scope in scopes:
        value = scope.get("id")
        if isinstance(value, str) and value and returns:
            return Target(returns, value[:MAX_ID])
    for scope in scopes:
        for name, kind in _ID_ARGUMENTS.items():
            value = scope.get(name)
            if isinstance(value, str) and value:
                return Target(kind, value[:MAX_ID])
    return None


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """``listAuditEvents``' filter: by who, by what, by which record, and a time range."""

    actor: str | None = None
    action: str | None = None
    target_type: str | None = None
    target_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def inclusive(f: AuditFilter) -> AuditFilter:
    """``until`` as the API shows instants (to the millisecond) takes in that whole millisecond, so a
    record's own ``at`` passed back as ``until`` finds it."""
    if f.until is None or f.until.microsecond % 1000:
        return f
    return replace(f, until=f.until + timedelta(microseconds=999))


def check_filter(f: AuditFilter) -> list[FieldProblem]:
    problems: list[FieldProblem] = []
    if f.action is not None and not _ACTION.match(f.action):
        problems.append(FieldProblem("filter.action", "is not a mutation name"))
    if f.target_id is not None and f.target_type is None:
        problems.append(FieldProblem("filter.targetType", "is required with targetId"))
    if f.target_id is not None and f.actor is not None:
        problems.append(FieldProblem("filter.actor", "cannot be combined with targetId; filter by one"))
    for name, value in (("actor", f.actor), ("targetType", f.target_type), ("targetId", f.target_id)):
        if value is not None and not 0 < len(value) <= MAX_ID:
            problems.append(FieldProblem(f"filter.{name}", f"must be 1 to {MAX_ID} characters"))
    if f.since is not None and f.until is not None and f.since > f.until:
        problems.append(FieldProblem("filter.until", "is before filter.from"))
    return problems
