"""In-memory stand-ins for the ports, for unit tests and benchmarks. Each records what it was asked.

They keep the same promises as the real adapters (conflicts, versions, page order and tokens), so
the repository contract tests run against them and against DynamoDB with the same assertions.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from bloodbank import sealing
from bloodbank.cursor import CursorCodec
from bloodbank.domain import inventory
from bloodbank.domain.alerts import NEVER, Announced, ShortageAlert
from bloodbank.domain.blood import BloodGroup, Component
from bloodbank.domain.campaigns import SuppressionReason
from bloodbank.domain.documents import DocumentVersion
from bloodbank.domain.donations import BloodUnit, Donation, Reminder, UnitStatus
from bloodbank.domain.donors import Donor
from bloodbank.domain.filters import Expr, canonical, evaluate
from bloodbank.domain.inventory import BloodRequest, LedgerEntry, LevelKey, RequestStatus, Threshold
from bloodbank.domain.notifications import ClaimLost, OutgoingMessage
from bloodbank.domain.organisations import Hospital, Site
from bloodbank.domain.subscriptions import Connection, StoredSubscription
from bloodbank.domain.uploads import UploadTicket
from bloodbank.errors import BadUserInput, Conflict, DependencyUnavailable, FieldProblem, StaleWrite
from bloodbank.ports import (
    IdempotencyRecord,
    InventoryWrite,
    Page,
    SealedFields,
    StockCounts,
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

    def post(self, endpoint: str, connection_id: str, message: Mapping[str, object]) -> bool:
        if connection_id in self.gone:
            return False
        with self._lock:
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
