"""In-memory stand-ins for the ports, for unit tests and benchmarks. Each records what it was asked.

They keep the same promises as the real adapters (conflicts, versions, page order and tokens), so
the repository contract tests run against them and against DynamoDB with the same assertions.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from bloodbank.cursor import CursorCodec
from bloodbank.domain.donors import Donor
from bloodbank.domain.filters import Expr, canonical, evaluate
from bloodbank.domain.organisations import Hospital, Site
from bloodbank.errors import BadUserInput, Conflict, DependencyUnavailable, FieldProblem
from bloodbank.ports import Page
from bloodbank.storage import keys
from bloodbank.storage.planning import FILTER_ATTRIBUTES, plan


@dataclass
class FixedClock:
    """A clock that only moves when told to."""

    now: datetime = field(default_factory=lambda: datetime(2026, 11, 22, 9, 0, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class SequentialIds:
    def __init__(self, prefix: str = "id") -> None:
        self._counter = itertools.count(1)
        self._prefix = prefix

    def __call__(self) -> str:
        return f"{self._prefix}-{next(self._counter):06d}"


@dataclass
class InMemoryDirectory:
    site_list: list[Site] = field(default_factory=list)
    hospital_list: list[Hospital] = field(default_factory=list)
    memberships: dict[str, str] = field(default_factory=dict)
    calls: list[tuple[str, object]] = field(default_factory=list)

    def sites(self) -> Sequence[Site]:
        self.calls.append(("sites", None))
        return sorted(self.site_list, key=lambda s: (s.name, s.id))

    def hospitals(self) -> Sequence[Hospital]:
        self.calls.append(("hospitals", None))
        return sorted(self.hospital_list, key=lambda h: (h.name, h.id))

    def hospital_of(self, user_sub: str) -> str | None:
        self.calls.append(("hospital_of", user_sub))
        return self.memberships.get(user_sub)


class InMemoryDonorRepository:
    def __init__(self, directory: InMemoryDirectory, cursors: CursorCodec) -> None:
        self._directory = directory
        self._cursors = cursors
        self._lock = threading.Lock()
        self.donors: dict[str, Donor] = {}
        self.calls: list[tuple[str, object]] = []
        self._order: dict[tuple[str, int], dict[str, str]] = {}

    def _site_known(self, site_id: str) -> bool:
        return any(s.id == site_id for s in self._directory.site_list)

    def _email_owner(self, email: str) -> str | None:
        return next((d.id for d in self.donors.values() if d.email.casefold() == email.casefold()), None)

    def get(self, donor_id: str, *, consistent: bool = False) -> Donor | None:
        self.calls.append(("get", donor_id))
        return self.donors.get(donor_id)

    def create(self, donor: Donor) -> None:
        self.calls.append(("create", donor.id))
        with self._lock:
            if not self._site_known(donor.site_id):
                raise BadUserInput.of([FieldProblem("input.siteId", "is not a known site")])
            if donor.id in self.donors:
                raise Conflict("This donor is already registered")
            if self._email_owner(donor.email) is not None:
                raise Conflict("Another donor is already registered with this e-mail address")
            self.donors[donor.id] = donor

    def update(self, donor: Donor, previous: Donor) -> None:
        self.calls.append(("update", donor.id))
        with self._lock:
            current = self.donors.get(donor.id)
            if current is None or current.version != previous.version:
                raise Conflict(
                    "The donor was changed by someone else since you read it; reload it and try again"
                )
            if not self._site_known(donor.site_id):
                raise BadUserInput.of([FieldProblem("input.siteId", "is not a known site")])
            owner = self._email_owner(donor.email)
            if owner not in (None, donor.id):
                raise Conflict("Another donor is already registered with this e-mail address")
            self.donors[donor.id] = donor

    def _sort_keys(self, d: Donor) -> dict[str, str]:
        """Where the donor sorts in each index, as the table's keys say (kept per version)."""
        cached = self._order.get((d.id, d.version))
        if cached is None:
            cached = {
                "gsi1": keys.donor_by_site(d.site_id, d.blood_group, d.sort_name, d.id).sk,
                "gsi2": keys.donor_by_group(d.blood_group, d.sort_name, d.id).sk,
                "gsi3": keys.all_donors(d.sort_name, d.id).sk,
            }
            self._order[(d.id, d.version)] = cached
        return cached

    def list(self, where: Expr | None, limit: int, next_token: str | None) -> Page[Donor]:
        self.calls.append(("list", canonical(where)))
        p = plan(where)
        scope = f"{p.scope}|{canonical(where)}"

        def order(d: Donor) -> str:
            return self._sort_keys(d)[p.index]

        def field_of(d: Donor) -> object:
            return lambda name: getattr(d, "id" if name == "id" else FILTER_ATTRIBUTES[name])

        after = str(self._cursors.decode(next_token, scope)["after"]) if next_token else ""
        rows = sorted(
            (d for d in self.donors.values() if where is None or evaluate(where, field_of(d))),  # type: ignore[arg-type]
            key=order,
        )
        rows = [d for d in rows if order(d) > after]
        page, more = rows[:limit], len(rows) > limit
        token = self._cursors.encode({"after": order(page[-1])}, scope) if more else None
        return Page(page, token)


@dataclass
class StaticKeySet:
    """A key set document served from memory; counts fetches and can be made to fail."""

    document: dict[str, object]
    fetches: int = 0
    down: bool = False

    def fetch(self) -> dict[str, object]:
        self.fetches += 1
        if self.down:
            raise DependencyUnavailable("key set unreachable")
        return self.document


@dataclass
class FakeProbe:
    name: str
    healthy: bool = True
    checks: int = 0

    def check(self) -> None:
        self.checks += 1
        if not self.healthy:
            raise ConnectionError(f"{self.name} down")
