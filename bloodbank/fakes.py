"""In-memory stand-ins for the ports, for unit tests and benchmarks. Each records what it was asked.

They keep the same promises as the real adapters (conflicts, versions, page order and tokens), so
the repository contract tests run against them and against DynamoDB with the same assertions.
"""

from __future__ import annotations

import io
import itertools
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import IO, TypeVar

from bloodbank import sealing
from bloodbank.cursor import CursorCodec
from bloodbank.domain import inventory
from bloodbank.domain.alerts import NEVER, Announced, ShortageAlert
from bloodbank.domain.audit import AuditEvent, AuditFilter
from bloodbank.domain.blood import BloodGroup, Component
from bloodbank.domain.campaigns import Campaign, CampaignStatus, Stats, SuppressionReason, address_key
from bloodbank.domain.deliveries import Change, Delivery, Stage
from bloodbank.domain.documents import DocumentVersion
from bloodbank.domain.donations import BloodUnit, Donation, Reminder, UnitStatus
from bloodbank.domain.donors import Donor
from bloodbank.domain.email_templates import EmailTemplate
from bloodbank.domain.employees import Employee, EmployeeEvent, Search, matches
from bloodbank.domain.filters import Expr, canonical, evaluate
from bloodbank.domain.inventory import BloodRequest, LedgerEntry, LevelKey, RequestStatus, Threshold
from bloodbank.domain.mail import OutgoingEmail, QuotaExhausted, SendQuota, SendRejected, SendThrottled
from bloodbank.domain.notifications import ClaimLost, OutgoingMessage
from bloodbank.domain.organisations import Hospital, Site
from bloodbank.domain.recipients import ListMember, ListStatus, RecipientList
from bloodbank.domain.subscriptions import Connection, StoredSubscription
from bloodbank.domain.uploads import UploadTicket
from bloodbank.errors import BadUserInput, Conflict, DependencyUnavailable, FieldProblem, StaleWrite
from bloodbank.observability import MetricName
from bloodbank.ports import (
    ChunkMarker,
    FileTooLarge,
    IdempotencyRecord,
    InventoryWrite,
    Page,
    SealedFields,
    StockCounts,
    StoredFile,
    TestRecord,
)
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


class InMemoryDonations:
    """DinSequences, DonationRepository, UnitRepository and Reminders in memory (one lock per write)."""

    def __init__(self, donors: InMemoryDonorRepository, cursors: CursorCodec) -> None:
        self._donors = donors
        self._cursors = cursors
        self._lock = threading.Lock()
        self.sequences: dict[tuple[str, int], int] = {}
        self.donations: dict[str, Donation] = {}
        self.units: dict[str, BloodUnit] = {}
        self.reminders: dict[tuple[str, str], Reminder] = {}
        self.calls: list[tuple[str, object]] = []

    def next(self, facility_code: str, year: int) -> int:
        self.calls.append(("next", (facility_code, year)))
        with self._lock:
            key = (facility_code, year % 100)
            self.sequences[key] = self.sequences.get(key, 0) + 1
            return self.sequences[key]

    def record(
        self,
        donation: Donation,
        units: Sequence[BloodUnit],
        donor: Donor,
        previous: Donor,
        reminder: Reminder | None,
    ) -> None:
        self.calls.append(("record", donation.din))
        with self._lock:
            if not self._donors._site_known(donation.site_id):
                raise BadUserInput.of([FieldProblem("input.siteId", "is not a known site")])
            current = self._donors.donors.get(donor.id)
            if current is None or current.version != previous.version:
                raise Conflict("The donor's record changed while the donation was being recorded; try again")
            if donation.din in self.donations or any(u.id in self.units for u in units):
                raise DependencyUnavailable("donation identifiers collided")
            self.donations[donation.din] = donation
            self.units.update((u.id, u) for u in units)
            self._donors.donors[donor.id] = donor
            if reminder is not None:
                self.reminders[(reminder.donor_id, reminder.din)] = reminder

    def _of(self, donor_id: str) -> list[Donation]:
        return sorted(
            (d for d in self.donations.values() if d.donor_id == donor_id), key=lambda d: d.collected_at
        )

    def page(self, donor_id: str, limit: int, next_token: str | None) -> Page[Donation]:
        self.calls.append(("page", donor_id))
        scope = f"donations|{donor_id}"
        newest_first = list(reversed(self._of(donor_id)))
        start = int(str(self._cursors.decode(next_token, scope)["offset"])) if next_token else 0
        items = newest_first[start : start + limit]
        more = start + limit < len(newest_first)
        return Page(items, self._cursors.encode({"offset": start + limit}, scope) if more else None)

    def get_many(self, unit_ids: Sequence[str]) -> list[BloodUnit]:
        self.calls.append(("get_many", tuple(unit_ids)))
        return [self.units[u] for u in unit_ids if u in self.units]

    def due(self, day: date) -> list[Reminder]:
        self.calls.append(("due", day))
        return [r for r in self.reminders.values() if r.due_at.date() == day]

    def done(self, reminder: Reminder) -> None:
        self.calls.append(("done", reminder.din))
        self.reminders.pop((reminder.donor_id, reminder.din), None)


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


@dataclass
class InMemoryFieldCipher:
    """Envelope encryption like KmsFieldCipher, with a local random master key in place of KMS.

    The data key is wrapped with AES-GCM bound to the context, so a wrong context fails as it does
    with KMS. ``calls`` records ("seal" | "unseal", context); ``unavailable`` makes both fail closed.
    """

    master_key: bytes = field(default_factory=lambda: os.urandom(sealing.KEY_BYTES), repr=False)
    unavailable: bool = False
    calls: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def seal(self, context: Mapping[str, str], fields: Mapping[str, str]) -> SealedFields:
        self.calls.append(("seal", dict(context)))
        if self.unavailable:
            raise DependencyUnavailable("KMS unavailable: fields not sealed")
        data_key = os.urandom(sealing.KEY_BYTES)
        sealer = sealing.Sealer(data_key)
        sealed = {name: sealer.seal(context, name, value) for name, value in fields.items()}
        return SealedFields(sealing.wrap_data_key(self.master_key, context, data_key), sealed)

    def unseal(self, context: Mapping[str, str], sealed: SealedFields) -> dict[str, str]:
        self.calls.append(("unseal", dict(context)))
        if self.unavailable:
            raise DependencyUnavailable("KMS unavailable: fields not unsealed")
        sealer = sealing.Sealer(sealing.unwrap_data_key(self.master_key, context, sealed.wrapped_key))
        return {name: sealer.open(context, name, value) for name, value in sealed.fields.items()}


# --- donor notifications ------------------------------------------------------------------------
@dataclass
class RecordingNotifier:
    """Records every message handed over; ``fail_next`` makes that many sends fail (DependencyUnavailable)."""

    sent: list[OutgoingMessage] = field(default_factory=list)
    fail_next: int = 0
    attempts: int = 0

    def send(self, message: OutgoingMessage) -> str:
        self.attempts += 1
        if self.fail_next > 0:
            self.fail_next -= 1
            raise DependencyUnavailable("SNS unreachable: simulated failure")
        self.sent.append(message)
        return f"msg-{len(self.sent):06d}"


@dataclass(frozen=True, slots=True)
class NotificationRecord:
    status: str  # CLAIMED | SENT, as DynamoNotificationLedger stores it
    claimed_at: datetime
    message_id: str | None = None
    sent_at: datetime | None = None


class InMemoryNotificationLedger:
    """The ledger's promises in memory: one claim per (donor, key), even across threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.records: dict[tuple[str, str], NotificationRecord] = {}

    def claim(self, donor_id: str, key: str, at: datetime) -> bool:
        with self._lock:
            if (donor_id, key) in self.records:
                return False
            self.records[(donor_id, key)] = NotificationRecord("CLAIMED", at)
            return True

    def complete(self, donor_id: str, key: str, message_id: str, at: datetime) -> None:
        with self._lock:
            record = self.records.get((donor_id, key))
            if record is None or record.status != "CLAIMED":
                raise ClaimLost(f"no claim to complete for {key}")
            self.records[(donor_id, key)] = NotificationRecord("SENT", record.claimed_at, message_id, at)

    def release(self, donor_id: str, key: str) -> None:
        with self._lock:
            record = self.records.get((donor_id, key))
            if record is not None and record.status == "CLAIMED":
                del self.records[(donor_id, key)]


@dataclass
class InMemoryDocumentStore:
    """A versioned bucket in memory. ``upload`` does what a client's POST with a ticket does.

    ``calls`` records ("upload_ticket" | "versions" | "download_url", argument); ``unavailable``
    makes every call fail as S3 being down does.
    """

    clock: FixedClock = field(default_factory=FixedClock)
    unavailable: bool = False
    # Each key's versions, oldest first.
    objects: dict[str, list[DocumentVersion]] = field(default_factory=dict)
    calls: list[tuple[str, object]] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1), repr=False)

    def _check(self) -> None:
        if self.unavailable:
            raise DependencyUnavailable("document store unavailable")

    def upload_ticket(self, key: str, content_type: str, max_bytes: int, expires_in: int) -> UploadTicket:
        self.calls.append(("upload_ticket", key))
        self._check()
        return UploadTicket(
            url="https://uploads.example.test/",
            fields={"key": key, "Content-Type": content_type, "policy": "in-memory", "x-amz-signature": "-"},
            key=key,
            content_type=content_type,
            max_bytes=max_bytes,
            expires_at=self.clock() + timedelta(seconds=expires_in),
        )

    def upload(self, key: str, size: int = 1024) -> DocumentVersion:
        """Store a new latest version of ``key`` (a POST that storage accepted)."""
        versions = self.objects.setdefault(key, [])
        versions[:] = [DocumentVersion(v.version_id, v.size, v.uploaded_at, False) for v in versions]
        version = DocumentVersion(f"v{next(self._ids):04d}", size, self.clock(), True)
        versions.append(version)
        return version

    def versions(self, prefix: str) -> list[tuple[str, DocumentVersion]]:
        self.calls.append(("versions", prefix))
        self._check()
        return [
            (k, v) for k in sorted(self.objects) if k.startswith(prefix) for v in reversed(self.objects[k])
        ]

    def download_url(self, key: str, version_id: str, expires_in: int) -> str:
        self.calls.append(("download_url", (key, version_id)))
        self._check()
        return f"https://downloads.example.test/{key}?versionId={version_id}&expiresIn={expires_in}"


class InMemoryInventory:
    """InventoryStore in memory, sharing the units ``InMemoryDonations`` made. ``commit`` checks the
    same conditions as the DynamoDB transaction, under one lock, and writes all or nothing."""

    def __init__(self, donations: InMemoryDonations, cursors: CursorCodec) -> None:
        self._donations = donations
        self._cursors = cursors
        self._lock = threading.Lock()
        self.ledgers: dict[str, list[LedgerEntry]] = {}
        self.counters: dict[LevelKey, dict[UnitStatus, int]] = {}
        self.issued: dict[tuple[LevelKey, date], int] = {}
        self.wasted: dict[tuple[LevelKey, date], int] = {}
        self.thresholds: dict[LevelKey, Threshold] = {}
        self.requests_by_id: dict[str, BloodRequest] = {}
        self.test_records: dict[str, TestRecord] = {}
        self.tokens: dict[tuple[str, str], IdempotencyRecord] = {}
        self.announced: dict[LevelKey, Announced] = {}
        self.alert_list: list[ShortageAlert] = []
        self.calls: list[tuple[str, object]] = []

    @property
    def unit_map(self) -> dict[str, BloodUnit]:
        return self._donations.units

    def add_units(self, units: Sequence[BloodUnit]) -> None:
        """Put units on the shelves directly (tests), counting them as storage would."""
        with self._lock:
            for u in units:
                self.unit_map[u.id] = u
                key = inventory.level_key(u)
                if key is not None and u.status in inventory.COUNTED:
                    level = self.counters.setdefault(key, {})
                    level[u.status] = level.get(u.status, 0) + 1

    def units(self, unit_ids: Sequence[str]) -> list[BloodUnit]:
        self.calls.append(("units", tuple(unit_ids)))
        return [self.unit_map[u] for u in unit_ids if u in self.unit_map]

    def units_of_donation(self, din: str) -> list[BloodUnit]:
        self.calls.append(("units_of_donation", din))
        return sorted((u for u in self.unit_map.values() if u.din == din), key=lambda u: u.id)

    def available_units(
        self, site_id: str, component: Component, group: BloodGroup, after: datetime, limit: int
    ) -> list[BloodUnit]:
        self.calls.append(("available_units", (site_id, component, group)))
        found = [
            u
            for u in self.unit_map.values()
            if u.site_id == site_id
            and u.component is component
            and u.blood_group is group
            and u.status is UnitStatus.AVAILABLE
            and u.expires_at > after
        ]
        return sorted(found, key=lambda u: (u.expires_at, u.id))[:limit]

    def in_stock(
        self, site_id: str, expiring_before: datetime | None, limit: int, next_token: str | None
    ) -> Page[BloodUnit]:
        self.calls.append(("in_stock", site_id))
        scope = f"stock|{site_id}|{expiring_before.isoformat() if expiring_before else ''}"
        after = str(self._cursors.decode(next_token, scope)["after"]) if next_token else ""
        rows = sorted(
            (
                u
                for u in self.unit_map.values()
                if u.site_id == site_id
                and u.status in inventory.IN_STOCK
                and (expiring_before is None or u.expires_at < expiring_before)
            ),
            key=lambda u: (u.expires_at, u.id),
        )
        rows = [u for u in rows if f"{u.expires_at.isoformat()}#{u.id}" > after]
        page, more = rows[:limit], len(rows) > limit
        token = (
            self._cursors.encode({"after": f"{page[-1].expires_at.isoformat()}#{page[-1].id}"}, scope)
            if more
            else None
        )
        return Page(page, token)

    def ledger(self, unit_id: str) -> list[LedgerEntry]:
        return list(self.ledgers.get(unit_id, []))

    def commit(self, write: InventoryWrite) -> None:
        self.calls.append(("commit", len(write.units)))
        with self._lock:
            failed: set[str] = set()
            for c in write.units:
                current = self.unit_map.get(c.before.id)
                if (
                    current is None
                    or (current.version, current.status, current.site_id)
                    != (c.before.version, c.before.status, c.before.site_id)
                    or (c.needs_in_date and current.expires_at <= write.at)
                    or (c.needs_expired and current.expires_at > write.at)
                ):
                    failed.add(f"unit {c.before.id}")
            if write.request is not None:
                stored = self.requests_by_id.get(write.request.id)
                if (write.request_version is None) != (stored is None) or (
                    stored is not None and stored.version != write.request_version
                ):
                    failed.add("request")
            for released, version in write.released:
                stored = self.requests_by_id.get(released.id)
                if stored is None or stored.version != version:
                    failed.add(f"request {released.id}")
            if write.tests is not None:
                tests = self.test_records.get(write.tests.din)
                if (write.tests_version is None) != (tests is None) or (
                    tests is not None and tests.version != write.tests_version
                ):
                    failed.add("tests")
            record = write.idempotency
            if record is not None and (record.scope, record.token) in self.tokens:
                failed.add("idempotency")
            if failed:
                raise StaleWrite(failed)
            for c in write.units:
                self.unit_map[c.after.id] = c.after
                self.ledgers.setdefault(c.after.id, []).append(c.entry)
            deltas = inventory.counter_deltas(write.units)
            for key, moves in deltas.levels.items():
                level = self.counters.setdefault(key, {})
                for status, d in moves.items():
                    level[status] = level.get(status, 0) + d
            day = write.at.astimezone(UTC).date()
            for key, n in deltas.issued.items():
                self.issued[(key, day)] = self.issued.get((key, day), 0) + n
            for key, n in deltas.wasted.items():
                self.wasted[(key, day)] = self.wasted.get((key, day), 0) + n
            if write.request is not None:
                self.requests_by_id[write.request.id] = write.request
            for released, _ in write.released:
                self.requests_by_id[released.id] = released
            if write.tests is not None:
                self.test_records[write.tests.din] = write.tests
            if record is not None:
                self.tokens[(record.scope, record.token)] = record

    def stock(self, site_id: str | None, since: date) -> list[StockCounts]:
        self.calls.append(("stock", site_id))
        keys_seen = (
            set(self.announced)
            | set(self.counters)
            | set(self.thresholds)
            | {k for k, d in [*self.issued, *self.wasted] if d >= since}
        )
        return [
            StockCounts(
                key=k,
                available=self.counters.get(k, {}).get(UnitStatus.AVAILABLE, 0),
                reserved=self.counters.get(k, {}).get(UnitStatus.RESERVED, 0),
                threshold=self.thresholds.get(k),
                issued_by_day={d: n for (key, d), n in self.issued.items() if key == k and d >= since},
                wasted_by_day={d: n for (key, d), n in self.wasted.items() if key == k and d >= since},
                announced=self.announced.get(k, NEVER),
            )
            for k in sorted(keys_seen, key=lambda k: (k.site_id, k.blood_group.value, k.component.value))
            if site_id is None or k.site_id == site_id
        ]

    def announce(self, alert: ShortageAlert, previous: Announced) -> bool:
        self.calls.append(("announce", alert.id))
        key = LevelKey(alert.site_id, alert.blood_group, alert.component)
        with self._lock:
            if self.announced.get(key, NEVER).version != previous.version:
                return False
            self.announced[key] = Announced(alert.status, alert.raised_at, previous.version + 1)
            self.alert_list.append(alert)
            return True

    def alerts(self, site_id: str | None, limit: int, next_token: str | None) -> Page[ShortageAlert]:
        scope = f"alerts|{site_id or ''}"
        rows = sorted(
            (a for a in self.alert_list if site_id is None or a.site_id == site_id),
            key=lambda a: (a.raised_at, a.id),
            reverse=True,
        )
        if next_token:
            after = str(self._cursors.decode(next_token, scope)["after"])
            rows = [a for a in rows if f"{a.raised_at.isoformat()}#{a.id}" < after]
        page, more = rows[:limit], len(rows) > limit
        last = page[-1] if page else None
        token = (
            self._cursors.encode({"after": f"{last.raised_at.isoformat()}#{last.id}"}, scope)
            if more and last
            else None
        )
        return Page(page, token)

    def set_threshold(self, key: LevelKey, threshold: Threshold) -> None:
        self.calls.append(("set_threshold", key))
        self.thresholds[key] = threshold

    def request(self, request_id: str) -> BloodRequest | None:
        return self.requests_by_id.get(request_id)

    def requests(
        self, hospital_id: str | None, status: RequestStatus | None, limit: int, next_token: str | None
    ) -> Page[BloodRequest]:
        self.calls.append(("requests", (hospital_id, status)))
        scope = f"requests|{hospital_id or ''}|{status.value if status else ''}"
        rows = [
            r
            for r in self.requests_by_id.values()
            if (hospital_id is None or r.hospital_id == hospital_id)
            and (status is None or r.status is status)
        ]
        by_need = hospital_id is None and status is not None

        def order(r: BloodRequest) -> str:
            return f"{(r.needed_by if by_need else r.created_at).isoformat()}#{r.id}"

        rows.sort(key=order, reverse=not by_need)
        if next_token:
            after = str(self._cursors.decode(next_token, scope)["after"])
            rows = [r for r in rows if (order(r) > after if by_need else order(r) < after)]
        page, more = rows[:limit], len(rows) > limit
        token = self._cursors.encode({"after": order(page[-1])}, scope) if more else None
        return Page(page, token)

    def tests(self, din: str) -> TestRecord | None:
        return self.test_records.get(din)

    def idempotency(self, scope: str, token: str) -> IdempotencyRecord | None:
        return self.tokens.get((scope, token))


class InMemoryConnections:
    """Implements ``ConnectionStore``: connections and subscriptions in dicts, as the table keeps them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.by_id: dict[str, Connection] = {}
        self.subscriptions: dict[tuple[str, str], StoredSubscription] = {}

    def save_connection(self, connection: Connection) -> None:
        with self._lock:
            self.by_id[connection.id] = connection

    def connection(self, connection_id: str) -> Connection | None:
        return self.by_id.get(connection_id)

    def drop_connection(self, connection_id: str) -> None:
        with self._lock:
            self.by_id.pop(connection_id, None)
            for key in [k for k in self.subscriptions if k[0] == connection_id]:
                del self.subscriptions[key]

    def subscription_count(self, connection_id: str) -> int:
        return sum(1 for k in self.subscriptions if k[0] == connection_id)

    def save_subscription(self, subscription: StoredSubscription) -> bool:
        with self._lock:
            key = (subscription.connection_id, subscription.id)
            if key in self.subscriptions:
                return False
            self.subscriptions[key] = subscription
            return True

    def drop_subscription(self, connection_id: str, subscription_id: str) -> None:
        with self._lock:
            self.subscriptions.pop((connection_id, subscription_id), None)

    def subscriptions_for(self, site_id: str) -> Iterator[StoredSubscription]:
        with self._lock:
            found = [s for s in self.subscriptions.values() if s.wanted.site_id in (site_id, None)]
        yield from found

    def connections(self) -> Iterator[Connection]:
        yield from list(self.by_id.values())


class RecordingPoster:
    """Implements ``ConnectionPoster``: keeps what each connection was sent; ``gone`` ones refuse."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.sent: dict[str, list[dict[str, object]]] = {}
        self.gone: set[str] = set()
        self.closed: list[str] = []
        self.endpoints: set[str] = set()  # every endpoint posted to

    def post(self, endpoint: str, connection_id: str, message: Mapping[str, object]) -> bool:
        if connection_id in self.gone:
            return False
        with self._lock:
            self.endpoints.add(endpoint)
            self.sent.setdefault(connection_id, []).append(dict(message))
        return True

    def close(self, endpoint: str, connection_id: str) -> None:
        self.closed.append(connection_id)
        self.gone.add(connection_id)

    def of(self, connection_id: str, kind: str | None = None) -> list[dict[str, object]]:
        """What a connection was sent (of one message type)."""
        return [m for m in self.sent.get(connection_id, []) if kind is None or m.get("type") == kind]


class RecordingAlertPublisher:
    """Keeps every alert it was handed, in order."""

    def __init__(self) -> None:
        self.published: list[ShortageAlert] = []

    def publish(self, alert: ShortageAlert) -> None:
        self.published.append(alert)


class RecordingMetrics:
    """``Metrics`` in memory: ``counted`` holds every (name, value) in order, ``flushed`` each
    flush's totals (an empty flush records nothing, as the real one prints nothing)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counted: list[tuple[str, int]] = []
        self.flushed: list[dict[str, int]] = []
        self._pending: Counter[str] = Counter()

    def count(self, name: MetricName, value: int = 1) -> None:
        with self._lock:
            self.counted.append((name, value))
            self._pending[name] += value

    def flush(self) -> None:
        with self._lock:
            if self._pending:
                self.flushed.append(dict(self._pending))
            self._pending = Counter()

    def totals(self) -> dict[str, int]:
        """Everything counted so far, by name."""
        with self._lock:
            totals: Counter[str] = Counter()
            for name, value in self.counted:
                totals[name] += value
            return dict(totals)


# --- donor appeals ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class AppealRecord:
    alert_id: str
    appealed_at: datetime


class InMemoryAppealLedger:
    """``AppealLedger`` in memory: the DynamoDB condition under one lock. ``calls`` records
    ("claim" | "release", donor id, alert id, outcome); ``unavailable`` makes claims fail."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.records: dict[str, AppealRecord] = {}
        self.calls: list[tuple[str, str, str, bool]] = []
        self.unavailable = False

    def claim(self, donor_id: str, alert_id: str, at: datetime, period: timedelta) -> bool:
        if self.unavailable:
            raise DependencyUnavailable("appeal ledger unavailable")
        with self._lock:
            held = self.records.get(donor_id)
            won = held is None or held.appealed_at < at - period or held.alert_id == alert_id
            if won:
                self.records[donor_id] = AppealRecord(alert_id, at)
            self.calls.append(("claim", donor_id, alert_id, won))
            return won

    def release(self, donor_id: str, alert_id: str) -> None:
        with self._lock:
            held = self.records.get(donor_id)
            released = held is not None and held.alert_id == alert_id
            if released:
                del self.records[donor_id]
            self.calls.append(("release", donor_id, alert_id, released))


class InMemoryAnnouncedLevels:
    """``AnnouncedLevels`` over ``InMemoryInventory.announced``; ``reads`` records each read."""

    def __init__(self, inventory: InMemoryInventory) -> None:
        self._inventory = inventory
        self.reads: list[LevelKey] = []

    def announced(self, key: LevelKey) -> Announced:
        self.reads.append(key)
        return self._inventory.announced.get(key, NEVER)


# --- campaigns ------------------------------------------------------------------------------------
class InMemoryCampaigns:
    """Implements ``CampaignStore`` and ``DeliveryLedger`` in dicts, with the same conditions (versions,
    put-if-absent, counted-once chunks) and counters as the table."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.by_id: dict[str, Campaign] = {}
        self.counters: dict[str, Counter[str]] = {}
        self.chunks: dict[tuple[str, int], ChunkMarker] = {}
        self.ledger: dict[tuple[str, str], Delivery] = {}
        self.writes = 0  # delivery writes that succeeded (tests count them)

    # CampaignStore
    def create(self, campaign: Campaign) -> None:
        with self._lock:
            if campaign.id in self.by_id:
                raise Conflict(f"campaign {campaign.id} exists")
            self.by_id[campaign.id] = campaign

    def get(self, campaign_id: str) -> Campaign | None:
        return self.by_id.get(campaign_id)

    def save(self, campaign: Campaign, previous: Campaign) -> bool:
        with self._lock:
            current = self.by_id.get(campaign.id)
            if current is None or current.version != previous.version:
                return False
            self.by_id[campaign.id] = campaign
            return True

    def campaigns(self, status: CampaignStatus | None, limit: int, next_token: str | None) -> Page[Campaign]:
        found = [c for c in self.by_id.values() if status is None or c.status is status]
        found.sort(key=lambda c: (c.created_at, c.id), reverse=True)
        start = int(next_token or 0)
        page = found[start : start + limit]
        return Page(page, str(start + limit) if start + limit < len(found) else None)

    def due(self, now: datetime) -> list[Campaign]:
        return [
            c
            for c in self.by_id.values()
            if c.status is CampaignStatus.SCHEDULED and c.send_at is not None and c.send_at <= now
        ]

    def stats(self, campaign_id: str) -> Stats:
        counted = self.counters.get(campaign_id, Counter())
        return Stats(**{name: counted[name] for name in Stats.__dataclass_fields__})

    def chunk(self, campaign_id: str, chunk: int) -> ChunkMarker | None:
        return self.chunks.get((campaign_id, chunk))

    def count_chunk(self, campaign_id: str, marker: ChunkMarker, at: datetime) -> bool:
        with self._lock:
            if (campaign_id, marker.chunk) in self.chunks:
                return False
            self.chunks[(campaign_id, marker.chunk)] = marker
            counted = self.counters.setdefault(campaign_id, Counter())
            counted["recipients"] += marker.recipients
            counted["queued"] += marker.recipients
            return True

    def chunk_enqueued(self, campaign_id: str, chunk: int) -> None:
        with self._lock:
            marker = self.chunks[(campaign_id, chunk)]
            self.chunks[(campaign_id, chunk)] = ChunkMarker(
                marker.chunk, marker.recipients, True, marker.next_token
            )

    # DeliveryLedger
    def add(self, deliveries: Sequence[Delivery]) -> int:
        added = 0
        with self._lock:
            for delivery in deliveries:
                key = (delivery.campaign_id, delivery.recipient)
                if key not in self.ledger:
                    self.ledger[key] = delivery
                    added += 1
        return added

    def delivery(self, campaign_id: str, recipient: str) -> Delivery | None:
        return self.ledger.get((campaign_id, recipient))

    def get_many(self, campaign_id: str, recipients: Sequence[str]) -> list[Delivery]:
        return [self.ledger[(campaign_id, r)] for r in recipients if (campaign_id, r) in self.ledger]

    def apply(self, change: Change, previous: Delivery) -> bool:
        delivery = change.delivery
        with self._lock:
            key = (delivery.campaign_id, delivery.recipient)
            current = self.ledger.get(key)
            if current is None or current.version != previous.version:
                return False
            self.ledger[key] = delivery
            self.writes += 1
            counted = self.counters.setdefault(delivery.campaign_id, Counter())
            for stage, change_by in change.deltas.items():
                counted[stage.value.lower()] += change_by
            return True

    def by_stage(
        self, campaign_id: str, stage: Stage | None, limit: int, next_token: str | None
    ) -> Page[Delivery]:
        found = sorted(
            (
                d
                for (c, _), d in self.ledger.items()
                if c == campaign_id and (stage is None or d.stage is stage)
            ),
            key=lambda d: d.recipient,
        )
        start = int(next_token or 0)
        page = found[start : start + limit]
        return Page(page, str(start + limit) if start + limit < len(found) else None)


class RecordingQueue:
    """Implements ``CampaignQueue``: keeps the jobs; ``drain(handle)`` runs them in order, as SQS
    would deliver them (``duplicate_every`` delivers every Nth job twice)."""

    def __init__(self, *, duplicate_every: int | None = None) -> None:
        self.jobs: list[dict[str, object]] = []
        self.sent = 0
        self.duplicate_every = duplicate_every

    def send(self, jobs: Sequence[Mapping[str, object]]) -> None:
        for job in jobs:
            self.jobs.append(dict(job))
            self.sent += 1
            if self.duplicate_every and self.sent % self.duplicate_every == 0:
                self.jobs.append(dict(job))

    def drain(self, handle: Callable[[Mapping[str, object]], None], limit: int = 100_000) -> int:
        """Runs queued jobs (and those they queue) until none is left; a job that raises goes back
        to the end of the queue, as SQS redelivers it. The number of jobs run."""
        ran = 0
        while self.jobs and ran < limit:
            job = self.jobs.pop(0)
            ran += 1
            try:
                handle(job)
            except BaseException:  # a crash too: the message was never deleted
                self.jobs.append(job)
                raise
        return ran


class InMemorySuppressions:
    """Implements ``Suppressions`` in a dict: key -> (reason, at); transient bounce counts apart."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.entries: dict[str, tuple[SuppressionReason, datetime]] = {}
        self.transient: dict[str, int] = {}

    def suppressed(self, keys: Sequence[str]) -> set[str]:
        return {k for k in keys if k in self.entries}

    def suppress(self, key: str, reason: SuppressionReason, at: datetime) -> bool:
        with self._lock:
            if key in self.entries:
                return False
            self.entries[key] = (reason, at)
            return True

    def count_transient(self, key: str, at: datetime) -> int:
        with self._lock:
            self.transient[key] = self.transient.get(key, 0) + 1
            return self.transient[key]


class RecordingMailer:
    """Implements ``MailSender`` in memory: ``sent`` holds (message id, e-mail) of every message SES
    would have taken, ``attempts`` every call. What SES may do is configurable:

    - ``throttle_every``: every Nth call is throttled (3: calls 3, 6, 9... raise ``SendThrottled``);
    - ``rate``: a token bucket of ``rate`` sends a second (burst ``max(1, rate)``) on ``clock``
      (seconds, monotonic; inject a fake one): a call without a token is throttled;
    - ``rejected``: address -> reason, sent to those raises ``SendRejected(reason)``;
    - ``quota``: after that many sends, ``QuotaExhausted`` (and ``send_quota`` says so);
    - ``fail_after``: after that many sends, every call raises ``failure`` (a crash, an outage);
      with ``fail_after_sending`` the message is recorded first (SES took it, the caller never heard).
    """

    def __init__(
        self,
        *,
        throttle_every: int | None = None,
        rate: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        rejected: Mapping[str, str] | None = None,
        quota: int | None = None,
        max_send_rate: float = 14.0,
        fail_after: int | None = None,
        failure: BaseException | None = None,
        fail_after_sending: bool = False,
    ) -> None:
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self.throttle_every = throttle_every
        self.rate = rate
        self.clock = clock
        self.rejected = dict(rejected or {})
        self.quota = quota
        self.max_send_rate = max_send_rate
        self.fail_after = fail_after
        self.failure = failure or DependencyUnavailable("injected mailer failure")
        self.fail_after_sending = fail_after_sending
        self.sent: list[tuple[str, OutgoingEmail]] = []
        self.attempts: list[OutgoingEmail] = []
        self.throttled = 0
        self._tokens = max(1.0, rate or 1.0)
        self._filled_at = clock()

    def send(self, email: OutgoingEmail) -> str:
        with self._lock:
            self.attempts.append(email)
            failing = self.fail_after is not None and len(self.sent) >= self.fail_after
            if failing and not self.fail_after_sending:
                raise self.failure
            if not failing:
                self._refuse(email)
            message_id = f"msg-{next(self._ids):06d}"
            self.sent.append((message_id, email))
            if failing:
                raise self.failure
            return message_id

    def _refuse(self, email: OutgoingEmail) -> None:
        """Raise what SES would answer this call instead of sending it, if anything."""
        if email.to in self.rejected:
            raise SendRejected(self.rejected[email.to])
        if self.quota is not None and len(self.sent) >= self.quota:
            raise QuotaExhausted("daily quota exhausted")
        if self.throttle_every and len(self.attempts) % self.throttle_every == 0:
            self.throttled += 1
            raise SendThrottled("every Nth call")
        if self.rate is not None and not self._take_token():
            self.throttled += 1
            raise SendThrottled("maximum sending rate exceeded")

    def _take_token(self) -> bool:
        assert self.rate is not None
        now = self.clock()
        burst = max(1.0, self.rate)
        self._tokens = min(burst, self._tokens + (now - self._filled_at) * self.rate)
        self._filled_at = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True

    def send_quota(self) -> SendQuota:
        with self._lock:
            max_24h = float(self.quota) if self.quota is not None else -1.0
            rate = self.rate if self.rate is not None else self.max_send_rate
            return SendQuota(max_24h=max_24h, max_send_rate=rate, sent_last_24h=float(len(self.sent)))

    def sent_to(self, address: str) -> list[OutgoingEmail]:
        return [e for _, e in self.sent if e.to == address]


# --- audit trail -----------------------------------------------------------------------------------


class InMemoryAuditLog:
    """Implements ``AuditLog`` in a list (``events``, in the order written)."""

    def __init__(self, cursors: CursorCodec) -> None:
        self._cursors = cursors
        self.events: list[AuditEvent] = []

    def record(self, event: AuditEvent) -> None:
        if all(e.id != event.id for e in self.events):
            self.events.append(event)

    def list(self, f: AuditFilter, limit: int, next_token: str | None) -> Page[AuditEvent]:
        def matches(e: AuditEvent) -> bool:
            target = e.target
            return (
                (f.actor is None or e.actor == f.actor)
                and (f.action is None or e.action == f.action)
                and (f.target_type is None or (target is not None and target.type == f.target_type))
                and (f.target_id is None or (target is not None and target.id == f.target_id))
                and (f.since is None or e.at >= f.since)
                and (f.until is None or e.at <= f.until)
            )

        def position(e: AuditEvent) -> str:
            return f"{e.at.isoformat()}#{e.id}"

        ordered = sorted((e for e in self.events if matches(e)), key=position, reverse=True)
        if next_token:
            after = str(self._cursors.decode(next_token, "audit")["after"])
            ordered = [e for e in ordered if position(e) < after]
        page, more = ordered[:limit], len(ordered) > limit
        token = self._cursors.encode({"after": position(page[-1])}, "audit") if more and page else None
        return Page(page, token)


# --- campaigns: e-mail templates and recipient lists ----------------------------------------------


_Row = TypeVar("_Row", EmailTemplate, RecipientList)


def _newest_first(
    cursors: CursorCodec, scope: str, rows: list[_Row], limit: int, token: str | None
) -> Page[_Row]:
    """A page of ``rows`` (newest first, by creation time then id) after ``token``."""

    def position(row: _Row) -> str:
        return f"{row.created_at.isoformat()}#{row.id}"

    ordered = sorted(rows, key=lambda r: (r.created_at, r.id), reverse=True)
    if token:
        after = str(cursors.decode(token, scope)["after"])
        ordered = [r for r in ordered if position(r) < after]
    page, more = ordered[:limit], len(ordered) > limit
    return Page(page, cursors.encode({"after": position(page[-1])}, scope) if more and page else None)


class InMemoryEmailTemplates:
    """Implements ``EmailTemplates`` in a dict."""

    def __init__(self, cursors: CursorCodec) -> None:
        self._cursors = cursors
        self.templates: dict[str, EmailTemplate] = {}

    def create(self, template: EmailTemplate) -> None:
        if template.id in self.templates:
            raise Conflict(f"A template with id {template.id} exists already")
        self.templates[template.id] = template

    def get(self, template_id: str) -> EmailTemplate | None:
        return self.templates.get(template_id)

    def list(self, limit: int, next_token: str | None) -> Page[EmailTemplate]:
        return _newest_first(self._cursors, "templates", list(self.templates.values()), limit, next_token)


class InMemoryRecipientLists:
    """Implements ``RecipientLists`` in dicts: members by address key, read in key order.

    ``batches`` records the size of each write (at most 25, as BatchWriteItem); ``fail_after``
    makes ``add_members`` fail as DynamoDB being down does, once that many members were written."""

    def __init__(self, cursors: CursorCodec) -> None:
        self._cursors = cursors
        self._lock = threading.Lock()
        self.lists: dict[str, RecipientList] = {}
        self.member_items: dict[str, dict[str, ListMember]] = {}
        self.batches: list[int] = []
        self.fail_after: int | None = None

    def create(self, recipient_list: RecipientList) -> None:
        with self._lock:
            if recipient_list.id in self.lists:
                raise Conflict(f"A recipient list with id {recipient_list.id} exists already")
            self.lists[recipient_list.id] = recipient_list

    def get(self, list_id: str) -> RecipientList | None:
        return self.lists.get(list_id)

    def list(self, limit: int, next_token: str | None) -> Page[RecipientList]:
        return _newest_first(self._cursors, "recipient-lists", list(self.lists.values()), limit, next_token)

    def save(
        self, recipient_list: RecipientList, expected: Sequence[ListStatus], upload_id: str | None = None
    ) -> bool:
        with self._lock:
            stored = self.lists.get(recipient_list.id)
            if stored is None or stored.status not in expected:
                return False
            if upload_id is not None and stored.upload_id != upload_id:
                return False
            self.lists[recipient_list.id] = recipient_list
            return True

    def add_members(self, list_id: str, members: Sequence[ListMember]) -> None:
        with self._lock:
            stored = self.member_items.setdefault(list_id, {})
            for start in range(0, len(members), 25):
                batch = members[start : start + 25]
                if self.fail_after is not None and sum(self.batches) + len(batch) > self.fail_after:
                    raise DependencyUnavailable("member write failed: unavailable")
                self.batches.append(len(batch))
                for member in batch:
                    stored[address_key(member.email)] = member

    def members(self, list_id: str, limit: int, next_token: str | None) -> Page[ListMember]:
        scope = f"members|{list_id}"
        stored = self.member_items.get(list_id, {})
        ordered = sorted(stored)
        if next_token:
            after = str(self._cursors.decode(next_token, scope)["after"])
            ordered = [k for k in ordered if k > after]
        page, more = ordered[:limit], len(ordered) > limit
        token = self._cursors.encode({"after": page[-1]}, scope) if more and page else None
        return Page([stored[k] for k in page], token)


class InMemoryRecipientFiles:
    """Implements ``RecipientFiles`` in a dict of bytes. ``open`` yields ``chunk_size`` pieces and
    records the largest piece it handed out; ``put`` stores an object (what a client's upload does)."""

    def __init__(self, chunk_size: int = 64 * 1024) -> None:
        self.objects: dict[str, bytes] = {}
        self.content_types: dict[str, str] = {}
        self.chunk_size = chunk_size
        self.opened: list[str] = []

    def put(self, key: str, body: bytes) -> None:
        self.objects[key] = body

    def open(self, key: str) -> Iterator[bytes]:
        if key not in self.objects:
            raise LookupError(key)
        self.opened.append(key)
        body = self.objects[key]
        return (body[i : i + self.chunk_size] for i in range(0, len(body), self.chunk_size))

    def save(self, key: str, body: IO[bytes], content_type: str) -> None:
        out = io.BytesIO()
        while piece := body.read(1024 * 1024):
            out.write(piece)
        self.objects[key] = out.getvalue()
        self.content_types[key] = content_type

    def download_url(self, key: str, expires_in: int) -> str:
        return f"https://downloads.example.test/{key}?expiresIn={expires_in}"


# --- employees ----------------------------------------------------------------------------------
class InMemoryEmployees:
    """EmployeeRepository in memory: the same conflicts, order and page tokens as DynamoEmployees."""

    def __init__(self, cursors: CursorCodec) -> None:
        self._cursors = cursors
        self._lock = threading.Lock()
        self.employees: dict[str, Employee] = {}
        self.calls: list[tuple[str, object]] = []

    def get(self, employee_id: str, *, consistent: bool = False) -> Employee | None:
        self.calls.append(("get", employee_id))
        return self.employees.get(employee_id)

    def create(self, employee: Employee) -> None:
        self.calls.append(("create", employee.id))
        with self._lock:
            if employee.id in self.employees:
                raise Conflict("This employee already has a profile: change it with updateEmployeeProfile")
            self.employees[employee.id] = employee

    def save(self, employee: Employee, previous: Employee) -> None:
        self.calls.append(("save", employee.id))
        with self._lock:
            current = self.employees.get(employee.id)
            if current is None or current.version != previous.version:
                raise Conflict(
                    "The profile was changed by someone else since you read it; reload it and try again"
                )
            self.employees[employee.id] = employee

    def search(self, wanted: Search, limit: int, next_token: str | None) -> Page[Employee]:
        self.calls.append(("search", wanted.scope))

        def order(e: Employee) -> str:
            return keys.employees_by_name(e.sort_name, e.id).sk

        after = str(self._cursors.decode(next_token, wanted.scope)["after"]) if next_token else ""
        rows = sorted((e for e in self.employees.values() if matches(e, wanted)), key=order)
        rows = [e for e in rows if order(e) > after]
        page, more = rows[:limit], len(rows) > limit
        token = self._cursors.encode({"after": order(page[-1])}, wanted.scope) if more else None
        return Page(page, token)


@dataclass
class InMemoryPhotoFiles:
    """PhotoFiles in memory: ``put`` does what a client's POST does. ``calls`` records each use."""

    objects: dict[str, StoredFile] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    unavailable: bool = False

    def put(self, key: str, data: bytes, content_type: str) -> None:
        self.objects[key] = StoredFile(data, content_type)

    def read(self, key: str, max_bytes: int) -> StoredFile:
        self.calls.append(("read", key))
        if self.unavailable:
            raise DependencyUnavailable("photo files unavailable")
        found = self.objects.get(key)
        if found is None:
            raise LookupError("no such upload")
        if len(found.data) > max_bytes:
            raise FileTooLarge(len(found.data))
        return found

    def write(self, key: str, data: bytes, content_type: str) -> None:
        self.calls.append(("write", key))
        if self.unavailable:
            raise DependencyUnavailable("photo files unavailable")
        self.objects[key] = StoredFile(data, content_type)

    def url(self, key: str, expires_in: int) -> str:
        self.calls.append(("url", key))
        return f"https://photos.example.test/{key}?expiresIn={expires_in}"


@dataclass
class RecordingEmployeeEvents:
    """Records every employee event published; ``fail_next`` makes that many fail."""

    published: list[EmployeeEvent] = field(default_factory=list)
    fail_next: int = 0

    def publish(self, event: EmployeeEvent) -> None:
        if self.fail_next > 0:
            self.fail_next -= 1
            raise DependencyUnavailable("SNS unreachable: simulated failure")
        self.published.append(event)
