"""Inventory and hospital supply: test results release or discard units, stock levels, requests
allocated first-expiry-first-out, issue, returns, transfers, the expiry sweep.

Every change is one conditional transaction (``InventoryStore.commit``). Reads only choose what to
try; the write's conditions decide, so two callers racing for a unit cannot both get it. A mutation
with a ``clientRequestToken`` writes its idempotency record in the same transaction: a retry (or a
duplicate sent at the same moment) has one effect and gets the same answer.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from enum import Enum
from typing import TypeVar

from bloodbank.domain import inventory as rules
from bloodbank.domain import text
from bloodbank.domain.alerts import NEVER, Announced, ShortageAlert
from bloodbank.domain.blood import BloodGroup, Component
from bloodbank.domain.donations import BloodUnit, UnitStatus
from bloodbank.domain.identity import Group, Identity
from bloodbank.domain.inventory import (
    BloodRequest,
    IllegalTransition,
    LedgerEntry,
    LevelKey,
    RequestStatus,
    StockLevel,
    TestMarker,
    TestOutcome,
    TestVerdict,
    Threshold,
    UnitChange,
    Urgency,
    WastageReason,
)
from bloodbank.domain.organisations import Hospital, Site
from bloodbank.errors import AppError, BadUserInput, Conflict, FieldProblem, Forbidden, NotFound, StaleWrite
from bloodbank.observability import DISCARDED
from bloodbank.ports import (
    Clock,
    DirectoryRepository,
    IdempotencyRecord,
    IdGenerator,
    InventoryStore,
    InventoryWrite,
    Metrics,
    Page,
    TestRecord,
)
from bloodbank.services.alerts import AlertService
from bloodbank.services.donors import page_size

log = logging.getLogger("bloodbank.inventory")

R = TypeVar("R")
ATTEMPTS = 8  # a write that lost a race is tried again with fresh reads this many times
MAX_TRANSFER = 40  # units in one transfer: one transaction (2 items a unit, 4 counters, 1 token)
SWEEP_CHUNK = 40  # units expired per transaction by the sweep
MAX_LEAD = timedelta(days=90)  # how far ahead a request may be placed
PAST_GRACE = timedelta(minutes=5)
MAX_REASON = 500
SYSTEM_SWEEP = "system:expiry-sweep"
SITE_CACHE_SECONDS = 60.0


@dataclass
class InventoryService:
    store: InventoryStore
    directory: DirectoryRepository
    clock: Clock
    new_id: IdGenerator
    on_issued: Callable[[BloodUnit], None] | None = None  # tell the donor (best effort)
    alerts: AlertService | None = None  # announces levels that cross into AMBER or RED, or recover
    sleep: Callable[[float], None] = time.sleep
    metrics: Metrics = DISCARDED
    _sites: dict[str, Site] = field(default_factory=dict)
    _hospitals: dict[str, Hospital] = field(default_factory=dict)
    _read_at: float = float("-inf")

    # --- reference data -------------------------------------------------------------------------
    def _reference(self) -> None:
        if time.monotonic() - self._read_at > SITE_CACHE_SECONDS:
            self._sites = {s.id: s for s in self.directory.sites()}
            self._hospitals = {h.id: h for h in self.directory.hospitals()}
            self._read_at = time.monotonic()

    def _site(self, site_id: str, where: str) -> Site:
        self._reference()
        site = self._sites.get(site_id)
        if site is None:
            self._read_at = float("-inf")  # a site added a moment ago: read again next time
            raise BadUserInput.of([FieldProblem(where, "is not a known site")])
        return site

    def _hospital(self, hospital_id: str, where: str) -> Hospital:
        self._reference()
        hospital = self._hospitals.get(hospital_id)
        if hospital is None:
            self._read_at = float("-inf")
            raise BadUserInput.of([FieldProblem(where, "is not a known hospital")])
        return hospital

    def hospital(self, hospital_id: str) -> Hospital | None:
        """A hospital from the cached reference data (nested fields on a page of requests)."""
        self._reference()
        return self._hospitals.get(hospital_id)

    # --- idempotency and retries ----------------------------------------------------------------
    def _run(
        self,
        identity: Identity,
        operation: str,
        token: object,
        arguments: Mapping[str, object],
        attempt: Callable[[IdempotencyRecord | None], R],
        replay: Callable[[str], R],
    ) -> R:
        """Run ``attempt`` until it commits (StaleWrite: it lost a race; read again), once per token."""
        record = None
        if token is not None:
            token = _token(token)
            scope = f"{identity.sub}|{operation}"
            fingerprint = _fingerprint(arguments)
            previous = self.store.idempotency(scope, token)
            if previous is not None:
                return self._replay(previous, fingerprint, replay)
            record = IdempotencyRecord(scope, token, fingerprint, "", self.clock())
        for n in range(ATTEMPTS):
            try:
                return attempt(record)
            except (StaleWrite, AppError) as failure:
                # The same request sent twice at once: its twin may have committed since our reads.
                if record is not None:
                    previous = self.store.idempotency(record.scope, record.token)
                    if previous is not None:
                        return self._replay(previous, record.fingerprint, replay)
                if isinstance(failure, AppError):
                    raise
            self.sleep(random.uniform(0, 0.01 * 2**n))  # noqa: S311 - jitter, not security
        raise Conflict("Stock is changing quickly and this change kept colliding with others; try again")

    @staticmethod
    def _replay(previous: IdempotencyRecord, fingerprint: str, replay: Callable[[str], R]) -> R:
        if previous.fingerprint != fingerprint:
            raise Conflict("This clientRequestToken was already used for a different request")
        return replay(previous.result)

    def _commit(self, write: InventoryWrite, record: IdempotencyRecord | None, result: str) -> None:
        if record is not None:
            write = replace(write, idempotency=replace(record, result=result))
        self.store.commit(write)
        self._changed(write)

    def _changed(self, write: InventoryWrite) -> None:
        """After a commit: the levels whose counters moved may have crossed a threshold."""
        deltas = rules.counter_deltas(write.units)
        touched = set(deltas.levels) | set(deltas.issued) | set(deltas.wasted)
        if touched:
            self.check_alerts(touched)

    # --- units ----------------------------------------------------------------------------------
    def get_unit(self, identity: Identity, unit_id: str) -> BloodUnit | None:
        """A unit by its id (DIN and product code, as labelled); a bare DIN of a single unit works too."""
        _staff(identity, "look up units")
        _label("din", unit_id)
        found = self.store.units([unit_id])
        if found:
            return found[0]
        siblings = self.store.units_of_donation(unit_id)
        if len(siblings) == 1:
            return siblings[0]
        if siblings:
            ids = ", ".join(u.id for u in siblings)
            raise BadUserInput.of([FieldProblem("din", f"labels {len(siblings)} units ({ids}): ask for one")])
        return None

    def units_by_id(self, unit_ids: Sequence[str]) -> list[BloodUnit | None]:
        found = {u.id: u for u in self.store.units(unit_ids)}
        return [found.get(u) for u in unit_ids]

    def list_units(
        self,
        identity: Identity,
        site_id: str | None,
        din: str | None,
        expiring_before: datetime | None,
        limit: int | None,
        next_token: str | None,
    ) -> Page[BloodUnit]:
        """A site's units in stock, first to expire first (or every unit of one DIN)."""
        _staff(identity, "list units")
        size = page_size(limit)
        if din is not None:
            _label("filter.din", din)  # a donation makes a handful of units: all of them, one page
            return Page(self.store.units_of_donation(din), None)
        if site_id is None:
            raise BadUserInput.of([FieldProblem("filter.siteId", "is required (or filter.din)")])
        self._site(site_id, "filter.siteId")
        return self.store.in_stock(site_id, expiring_before, size, next_token)

    def history(self, identity: Identity, unit: BloodUnit) -> list[LedgerEntry]:
        _staff(identity, "see a unit's history")
        return self.store.ledger(unit.id)

    def _unit(self, unit_id: object, where: str) -> BloodUnit:
        uid = _label(where, unit_id)
        found = self.store.units([uid])
        if not found:
            raise NotFound(f"No unit {uid}")
        return found[0]

    # --- test results ---------------------------------------------------------------------------
    def record_test_results(self, identity: Identity, values: Mapping[str, object]) -> list[BloodUnit]:
        """Merge results into the donation's record. All required negative with the group typed:
        its quarantined units become AVAILABLE. Any reactive or indeterminate result: every unit of
        the donation still on the shelves is DISCARDED."""
        _staff(identity, "record test results")
        din = _label("input.din", values.get("din"))
        results = _results(values.get("results"))
        group = values.get("blood_group")
        if group is not None and not isinstance(group, BloodGroup):
            raise BadUserInput.of([FieldProblem("input.bloodGroup", "is not a blood group")])

        def attempt(record: IdempotencyRecord | None) -> list[BloodUnit]:
            now = self.clock()
            units = self.store.units_of_donation(din)
            if not units:
                raise NotFound(f"No units are labelled with DIN {din}")
            previous = self.store.tests(din)
            merged = dict(previous.results) if previous else {}
            for marker, outcome in results.items():
                if marker in merged and merged[marker] is not outcome:
                    raise Conflict(
                        f"{marker.value} is already recorded as {merged[marker].value} for {din};"
                        " a result is never overwritten (record a confirmatory test as a new donation hold)"
                    )
                merged[marker] = outcome
            typed = previous.blood_group if previous else None
            if group is not None and typed is not None and group is not typed:
                raise Conflict(
                    f"{din} was already typed {typed.value}; a retype that disagrees needs investigation"
                )
            typed = typed or group
            known = {u.blood_group for u in units if u.blood_group is not None}
            if typed is not None and known - {typed}:
                raise Conflict(
                    f"The typing {typed.value} disagrees with the donor's recorded group;"
                    " resolve it before release"
                )
            jurisdiction = self._site(units[0].site_id, "input.din").jurisdiction
            verdict = rules.verdict(merged, jurisdiction)
            by = identity.sub
            changes: list[UnitChange] = []
            if verdict is TestVerdict.UNSAFE:
                bad = sorted(m.value for m, o in merged.items() if o is not TestOutcome.NEGATIVE)
                for u in units:
                    if u.status in rules.IN_STOCK:
                        changes.append(
                            rules.change(
                                u,
                                UnitStatus.DISCARDED,
                                at=now,
                                by=by,
                                why=f"screening not negative: {', '.join(bad)}",
                                wastage=WastageReason.TEST_REACTIVE,
                            )
                        )
            elif verdict is TestVerdict.SAFE and typed is not None:
                for u in units:
                    if u.status is UnitStatus.QUARANTINED and u.expires_at > now:
                        typed_unit = replace(u, blood_group=typed)
                        c = rules.change(
                            typed_unit, UnitStatus.AVAILABLE, at=now, by=by, why="screening negative"
                        )
                        changes.append(UnitChange(u, c.after, c.entry))
            tests = TestRecord(din, merged, typed, by, now, (previous.version + 1) if previous else 1)
            write = InventoryWrite(
                at=now,
                units=changes,
                tests=tests,
                tests_version=previous.version if previous else None,
                released=self._requests_losing([c.before for c in changes], now),
            )
            self._commit(write, record, din)
            after = {c.after.id: c.after for c in changes}
            return [after.get(u.id, u) for u in units]

        return self._run(
            identity,
            "recordTestResults",
            values.get("client_request_token"),
            values,
            attempt,
            lambda din_: self.store.units_of_donation(din_),
        )

    # --- discard, transfer, returns, transfusion ------------------------------------------------
    def discard(self, identity: Identity, values: Mapping[str, object]) -> BloodUnit:
        _staff(identity, "discard units")
        reason = values.get("reason")
        if not isinstance(reason, WastageReason):
            raise BadUserInput.of([FieldProblem("input.reason", "is required")])
        note = _note(values.get("note"), "input.note")

        def attempt(record: IdempotencyRecord | None) -> BloodUnit:
            now = self.clock()
            unit = self._unit(values.get("unit_id"), "input.unitId")
            if unit.status is UnitStatus.ISSUED:
                raise IllegalTransition(
                    f"Unit {unit.id} is ISSUED (at the hospital): use returnUnit when it comes back"
                )
            why = reason.value.replace("_", " ").lower() + (f": {note}" if note else "")
            c = rules.change(unit, UnitStatus.DISCARDED, at=now, by=identity.sub, why=why, wastage=reason)
            self._write_units([c], record, unit.id, request=self._released_from(unit, now))
            return c.after

        return self._run(
            identity, "discardUnit", values.get("client_request_token"), values, attempt, self._unit_replay
        )

    def _requests_losing(self, units: Sequence[BloodUnit], now: datetime) -> list[tuple[BloodRequest, int]]:
        """The requests of reserved units about to leave stock, each without them (and its version)."""
        by_request: dict[str, list[str]] = {}
        for u in units:
            if u.status is UnitStatus.RESERVED and u.request_id is not None:
                by_request.setdefault(u.request_id, []).append(u.id)
        found = []
        for request_id, unit_ids in sorted(by_request.items()):
            request = self.store.request(request_id)
            if request is not None:
                found.append((_without(request, unit_ids, now), request.version))
        return found

    def _released_from(self, unit: BloodUnit, now: datetime) -> tuple[BloodRequest, int] | None:
        """A reserved unit leaving stock leaves its request: the request, without it, to write too."""
        if unit.status is not UnitStatus.RESERVED or unit.request_id is None:
            return None
        request = self.store.request(unit.request_id)
        if request is None:
            return None
        return _without(request, [unit.id], now), request.version

    def _write_units(
        self,
        changes: Sequence[UnitChange],
        record: IdempotencyRecord | None,
        result: str,
        request: tuple[BloodRequest, int] | None = None,
    ) -> None:
        write = InventoryWrite(at=changes[0].entry.at, units=changes)
        if request is not None:
            write = replace(write, request=request[0], request_version=request[1])
        self._commit(write, record, result)

    def _unit_replay(self, unit_id: str) -> BloodUnit:
        return self._unit(unit_id, "unitId")

    def transfer(self, identity: Identity, values: Mapping[str, object]) -> list[BloodUnit]:
        """Move AVAILABLE units to another site: units and both sites' counters in one transaction."""
        _staff(identity, "transfer units")
        raw_ids = values.get("unit_ids")
        if not isinstance(raw_ids, list | tuple) or not raw_ids:
            raise BadUserInput.of([FieldProblem("input.unitIds", "must list at least one unit")])
        if len(raw_ids) > MAX_TRANSFER:
            raise BadUserInput.of(
                [FieldProblem("input.unitIds", f"at most {MAX_TRANSFER} units a transfer: split larger ones")]
            )
        unit_ids = [_label(f"input.unitIds[{n}]", u) for n, u in enumerate(raw_ids)]
        if len(set(unit_ids)) != len(unit_ids):
            raise BadUserInput.of([FieldProblem("input.unitIds", "lists a unit more than once")])
        destination = self._site(_ident("input.toSiteId", values.get("to_site_id")), "input.toSiteId")
        to_site = destination.id

        def attempt(record: IdempotencyRecord | None) -> list[BloodUnit]:
            now = self.clock()
            units = self.store.units(unit_ids)
            missing = sorted(set(unit_ids) - {u.id for u in units})
            if missing:
                raise NotFound(f"No unit {', '.join(missing)}")
            changes = []
            for u in units:
                if u.site_id == to_site:
                    raise BadUserInput.of([FieldProblem("input.toSiteId", f"unit {u.id} is already there")])
                if u.status is not UnitStatus.AVAILABLE:
                    raise IllegalTransition(f"Unit {u.id} is {u.status.value}: only AVAILABLE units move")
                self._check_screened_for(u, destination)
                changes.append(
                    rules.change(
                        u,
                        UnitStatus.AVAILABLE,
                        at=now,
                        by=identity.sub,
                        why=f"transfer to {to_site}",
                        site_id=to_site,
                    )
                )
            self._write_units(changes, record, ",".join(unit_ids))
            return [c.after for c in changes]

        return self._run(
            identity,
            "transferUnits",
            values.get("client_request_token"),
            values,
            attempt,
            lambda ids: self.store.units(ids.split(",")),
        )

    def _check_screened_for(self, unit: BloodUnit, destination: Site) -> None:
        """A unit crossing into another jurisdiction must carry the screening that one requires
        (a US unit has no HEV test, which UK sites need)."""
        if self._site(unit.site_id, "input.unitIds").jurisdiction is destination.jurisdiction:
            return
        tests = self.store.tests(unit.din)
        results = tests.results if tests else {}
        missing = rules.missing_markers(results, destination.jurisdiction)
        if missing:
            raise IllegalTransition(
                f"Unit {unit.id} was not screened for {', '.join(missing)}, which"
                f" {destination.jurisdiction.value} sites require: it cannot move to {destination.id}"
            )

    def return_unit(self, identity: Identity, values: Mapping[str, object]) -> BloodUnit:
        """An issued unit comes back unused: AVAILABLE again if in date and not out of storage too
        long, DISCARDED otherwise."""
        _staff(identity, "record returned units")
        minutes = values.get("minutes_out_of_storage")
        if not isinstance(minutes, int) or not 0 <= minutes <= 60 * 24 * 30:
            raise BadUserInput.of([FieldProblem("input.minutesOutOfStorage", "must be 0 or more minutes")])

        def attempt(record: IdempotencyRecord | None) -> BloodUnit:
            now = self.clock()
            unit = self._unit(values.get("unit_id"), "input.unitId")
            if unit.status is not UnitStatus.ISSUED:
                raise IllegalTransition(
                    f"Unit {unit.id} is {unit.status.value}: only ISSUED units are returned"
                )
            refused = rules.may_restock(unit, timedelta(minutes=minutes), now)
            if refused is None:
                c = rules.change(unit, UnitStatus.AVAILABLE, at=now, by=identity.sub, why="returned unused")
            else:
                reason = (
                    WastageReason.EXPIRED if unit.expires_at <= now else WastageReason.OUT_OF_STORAGE_TOO_LONG
                )
                c = rules.change(
                    unit,
                    UnitStatus.DISCARDED,
                    at=now,
                    by=identity.sub,
                    why=f"returned: {refused}",
                    wastage=reason,
                )
            self._write_units([c], record, unit.id)
            return c.after

        return self._run(
            identity, "returnUnit", values.get("client_request_token"), values, attempt, self._unit_replay
        )

    def confirm_transfusion(self, identity: Identity, values: Mapping[str, object]) -> BloodUnit:
        """The hospital confirms an issued unit was transfused (its own units only)."""

        def attempt(record: IdempotencyRecord | None) -> BloodUnit:
            now = self.clock()
            unit = self._unit(values.get("unit_id"), "input.unitId")
            if not identity.is_staff:
                request = self.store.request(unit.request_id) if unit.request_id else None
                if request is None or not _sees(identity, request):
                    raise NotFound(f"No unit {unit.id}")
            c = rules.change(unit, UnitStatus.TRANSFUSED, at=now, by=identity.sub, why="transfused")
            self._write_units([c], record, unit.id)
            return c.after

        return self._run(
            identity,
            "confirmTransfusion",
            values.get("client_request_token"),
            values,
            attempt,
            self._unit_replay,
        )

    # --- stock levels ---------------------------------------------------------------------------
    def stock_levels(
        self,
        identity: Identity,
        site_id: str | None,
        group: BloodGroup | None,
        component: Component | None,
    ) -> list[StockLevel]:
        """Every level asked for (zero where no unit ever was), from one read of the counters."""
        if not (identity.is_staff or identity.is_hospital):
            raise Forbidden("Only blood service staff and hospitals see stock levels")
        if site_id is not None:
            self._site(site_id, "siteId")
        return [level for level, _ in self._levels(site_id, group, component)]

    def _levels(
        self, site_id: str | None, group: BloodGroup | None = None, component: Component | None = None
    ) -> list[tuple[StockLevel, Announced]]:
        """The levels asked for with what was last announced of each: one Query of the counters."""
        self._reference()
        today = self.clock().date()
        since = today - timedelta(days=rules.MAX_WINDOW_DAYS - 1)
        counts = {c.key: c for c in self.store.stock(site_id, since)}
        sites = [site_id] if site_id else sorted(self._sites)
        groups = [group] if group else list(BloodGroup)
        components = [component] if component else list(Component)
        result = []
        for s in sites:
            for g in groups:
                for k in components:
                    key = LevelKey(s, g, k)
                    found = counts.get(key)
                    threshold = (found.threshold if found else None) or Threshold()
                    first = today - timedelta(days=threshold.window_days - 1)
                    issued = sum(n for d, n in (found.issued_by_day.items() if found else ()) if d >= first)
                    wasted = sum(n for d, n in (found.wasted_by_day.items() if found else ()) if d >= first)
                    available, reserved = (found.available, found.reserved) if found else (0, 0)
                    level = rules.level(key, available, reserved, threshold, issued, wasted)
                    result.append((level, found.announced if found else NEVER))
        return result

    def check_alerts(self, keys: set[LevelKey] | None = None) -> list[ShortageAlert]:
        """Announce the levels among ``keys`` (every level when None) whose status crossed: one
        Query per site. Never raises: the stock change it follows is already committed."""
        if self.alerts is None:
            return []
        raised: list[ShortageAlert] = []
        try:
            sites = sorted({k.site_id for k in keys}) if keys is not None else [None]
            for site in sites:
                for _ in range(3):  # another announcement won a race: read again and judge again
                    levels = [(lv, a) for lv, a in self._levels(site) if keys is None or _key(lv) in keys]
                    found, lost = self.alerts.consider(levels)
                    raised.extend(found)
                    if not lost:
                        break
        except Exception as exc:
            log.warning("shortage check failed", extra={"exception": type(exc).__name__})
        return raised

    def set_threshold(self, identity: Identity, values: Mapping[str, object]) -> StockLevel:
        if Group.ADMINS not in identity.groups:
            raise Forbidden("Only administrators set stock thresholds")
        site = self._site(_ident("input.siteId", values.get("site_id")), "input.siteId").id
        group, component = values.get("blood_group"), values.get("component")
        if not isinstance(group, BloodGroup) or not isinstance(component, Component):
            raise BadUserInput("input.bloodGroup and input.component are required")
        defaults = Threshold()
        threshold = Threshold(
            par_level=_int(values.get("par_level"), defaults.par_level),
            amber_days=_float(values.get("amber_days"), defaults.amber_days),
            red_days=_float(values.get("red_days"), defaults.red_days),
            window_days=_int(values.get("window_days"), defaults.window_days),
        )
        problems = rules.check_threshold(threshold)
        if problems:
            raise BadUserInput.of([FieldProblem(f, m) for f, m in problems])
        key = LevelKey(site, group, component)
        self.store.set_threshold(key, threshold)
        self.check_alerts({key})
        return self.stock_levels(identity, site, group, component)[0]

    # --- hospital requests ----------------------------------------------------------------------
    def create_request(self, identity: Identity, values: Mapping[str, object]) -> BloodRequest:
        now = self.clock()
        hospital_id = values.get("hospital_id")
        if identity.is_hospital and not identity.is_staff:
            if identity.hospital_id is None:
                raise Forbidden("Your user is not linked to a hospital; ask the blood service to link it")
            if hospital_id not in (None, identity.hospital_id):
                raise Forbidden("A hospital can only order blood for itself")
            hospital_id = identity.hospital_id
        elif not identity.is_staff:
            raise Forbidden("Only hospitals and blood service staff can request blood")
        if hospital_id is None:
            raise BadUserInput.of(
                [FieldProblem("input.hospitalId", "is required when staff order for a hospital")]
            )
        hospital = self._hospital(_ident("input.hospitalId", hospital_id), "input.hospitalId")
        request = _new_request(values, hospital, identity.sub, now, self.new_id())

        def attempt(record: IdempotencyRecord | None) -> BloodRequest:
            self._commit(InventoryWrite(at=now, request=request), record, request.id)
            return request

        return self._run(
            identity,
            "createBloodRequest",
            values.get("client_request_token"),
            values,
            attempt,
            lambda rid: self._request_or_gone(rid),
        )

    def _request_or_gone(self, request_id: str) -> BloodRequest:
        found = self.store.request(request_id)
        if found is None:
            raise NotFound(f"No blood request {request_id}")
        return found

    def get_request(self, identity: Identity, request_id: str) -> BloodRequest | None:
        _ident("id", request_id)
        found = self.store.request(request_id)
        if found is None or not _sees(identity, found):
            return None  # another hospital's request does not exist for this caller
        return found

    def _visible_request(self, identity: Identity, request_id: object) -> BloodRequest:
        rid = _ident("id", request_id)
        found = self.store.request(rid)
        if found is None or not _sees(identity, found):
            raise NotFound(f"No blood request {rid}")
        return found

    def list_requests(
        self,
        identity: Identity,
        hospital_id: str | None,
        status: RequestStatus | None,
        limit: int | None,
        next_token: str | None,
    ) -> Page[BloodRequest]:
        size = page_size(limit)
        if not identity.is_staff:
            if not identity.is_hospital or identity.hospital_id is None:
                raise Forbidden("Only hospitals and blood service staff see blood requests")
            if hospital_id not in (None, identity.hospital_id):
                raise Forbidden("A hospital sees only its own requests")
            hospital_id = identity.hospital_id
        elif hospital_id is not None:
            _ident("filter.hospitalId", hospital_id)
        return self.store.requests(hospital_id, status, size, next_token)

    def fulfil(self, identity: Identity, request_id: str, token: object = None) -> BloodRequest:
        """Reserve compatible units for what the request still needs, first expiry first out; what
        stock cannot cover stays outstanding (PARTIALLY_FULFILLED or PENDING)."""
        return self.allocate(identity, request_id, token)[0]

    def allocate(
        self, identity: Identity, request_id: str, token: object = None
    ) -> tuple[BloodRequest, list[BloodUnit]]:
        """``fulfil``, also giving the units it just reserved (empty when it reserved none)."""
        _staff(identity, "fulfil blood requests")
        reserved: list[BloodUnit] = []
        taken: set[str] = set()

        def attempt(record: IdempotencyRecord | None) -> BloodRequest:
            reserved.clear()
            now = self.clock()
            request = self._visible_request(identity, request_id)
            if request.status is RequestStatus.CANCELLED:
                raise IllegalTransition(f"Blood request {request.id} was cancelled")
            needed = request.outstanding
            chosen = self._choose(request, needed, now, taken) if needed else []
            if not chosen:  # nothing outstanding, or nothing compatible on the shelves: it stays as it is
                if record is not None:  # the token is spent all the same
                    self._commit(InventoryWrite(at=now), record, request.id)
                return request
            changes = [
                rules.change(
                    u,
                    UnitStatus.RESERVED,
                    at=now,
                    by=identity.sub,
                    why=f"reserved for request {request.id}",
                    request_id=request.id,
                )
                for u in chosen
            ]
            updated = rules.with_units(request, [u.id for u in chosen], now)
            write = InventoryWrite(at=now, units=changes, request=updated, request_version=request.version)
            try:
                self._commit(write, record, request.id)
            except StaleWrite as stale:
                # Units someone else took are not offered again, however late the index is.
                taken.update(u.id for u in chosen if f"unit {u.id}" in stale.failed)
                raise
            reserved.extend(c.after for c in changes)
            return updated

        request = self._run(
            identity, "fulfillBloodRequest", token, {"id": request_id}, attempt, self._request_or_gone
        )
        return request, list(reserved)

    def _choose(self, request: BloodRequest, needed: int, now: datetime, taken: set[str]) -> list[BloodUnit]:
        """Candidates in preference order: one index Query per compatible group until enough."""
        chosen: list[BloodUnit] = []
        for group in rules.donor_groups_for(request.component, request.blood_group):
            # Read a few more than needed: the index may still list units others just took.
            limit = needed + len(taken) + 4
            found = self.store.available_units(request.site_id, request.component, group, now, limit)
            found = [u for u in found if u.id not in taken]
            ordered = rules.allocation_order(found, request.component, request.blood_group, now)
            chosen.extend(ordered[: needed - len(chosen)])
            if len(chosen) >= needed:
                break
        return chosen

    def issue(self, identity: Identity, request_id: str, token: object = None) -> BloodRequest:
        """Send the request's reserved units out: RESERVED -> ISSUED, in one transaction."""
        _staff(identity, "issue blood")
        issued_units: list[BloodUnit] = []

        def attempt(record: IdempotencyRecord | None) -> BloodRequest:
            now = self.clock()
            request = self._visible_request(identity, request_id)
            if request.status is RequestStatus.CANCELLED:
                raise IllegalTransition(f"Blood request {request.id} was cancelled")
            waiting = [u for u in request.unit_ids if u not in request.issued_unit_ids]
            units = [
                u
                for u in self.store.units(waiting)
                if u.status is UnitStatus.RESERVED and u.request_id == request.id
            ]
            if not units:
                raise IllegalTransition(f"Blood request {request.id} has no reserved units to issue")
            changes = [
                rules.change(
                    u, UnitStatus.ISSUED, at=now, by=identity.sub, why=f"issued to {request.hospital_id}"
                )
                for u in units
            ]
            updated = replace(
                request,
                issued_unit_ids=(*request.issued_unit_ids, *(u.id for u in units)),
                updated_at=now,
                version=request.version + 1,
            )
            write = InventoryWrite(at=now, units=changes, request=updated, request_version=request.version)
            self._commit(write, record, request.id)
            self.metrics.count("UnitsIssued", len(changes))  # committed (a replayed token never gets here)
            issued_units[:] = [c.after for c in changes]
            return updated

        result = self._run(
            identity, "issueBloodRequest", token, {"id": request_id}, attempt, self._request_or_gone
        )
        for unit in issued_units:
            self._tell_donor(unit)
        return result

    def _tell_donor(self, unit: BloodUnit) -> None:
        if self.on_issued is None:
            return
        try:
            self.on_issued(unit)
        except Exception as exc:  # the blood went out: a message that failed must not undo that
            log.warning("donor not told of issue", extra={"unit": unit.id, "exception": type(exc).__name__})

    def cancel(
        self, identity: Identity, request_id: str, reason: str | None = None, token: object = None
    ) -> BloodRequest:
        """Cancel a request (staff, or the hospital that placed it); its reserved units go back."""
        if not (identity.is_staff or identity.is_hospital):
            raise Forbidden("Only hospitals and blood service staff can cancel requests")
        note = _note(reason, "reason")

        def attempt(record: IdempotencyRecord | None) -> BloodRequest:
            now = self.clock()
            request = self._visible_request(identity, request_id)
            if request.status is RequestStatus.CANCELLED:
                if record is not None:
                    self._commit(InventoryWrite(at=now), record, request.id)
                return request
            waiting = [u for u in request.unit_ids if u not in request.issued_unit_ids]
            if request.unit_ids and not waiting and request.outstanding == 0:
                raise IllegalTransition(
                    f"Every unit of request {request.id} was issued: return unused units instead"
                )
            changes = []
            for u in self.store.units(waiting):
                if u.status is UnitStatus.RESERVED and u.request_id == request.id:
                    to = UnitStatus.AVAILABLE if u.expires_at > now else UnitStatus.EXPIRED
                    changes.append(
                        rules.change(
                            u,
                            to,
                            at=now,
                            by=identity.sub,
                            why=f"request {request.id} cancelled",
                            wastage=WastageReason.EXPIRED if to is UnitStatus.EXPIRED else None,
                        )
                    )
            updated = replace(
                request,
                status=RequestStatus.CANCELLED,
                unit_ids=request.issued_unit_ids,
                cancel_reason=note,
                updated_at=now,
                version=request.version + 1,
            )
            write = InventoryWrite(at=now, units=changes, request=updated, request_version=request.version)
            self._commit(write, record, request.id)
            return updated

        return self._run(
            identity,
            "cancelBloodRequest",
            token,
            {"id": request_id, "reason": note},
            attempt,
            self._request_or_gone,
        )

    # --- the expiry sweep -----------------------------------------------------------------------
    def expire_due(self) -> int:
        """Expire every unit on the shelves past its expiry: one index Query per site, then
        transactions of at most SWEEP_CHUNK units (a reserved unit also leaves its request)."""
        self._read_at = float("-inf")
        self._reference()
        expired = 0
        for site_id in sorted(self._sites):
            now = self.clock()
            due: list[BloodUnit] = []
            token: str | None = None
            while True:
                # Units whose expiry is now have expired too (the bound of in_stock is exclusive).
                page = self.store.in_stock(site_id, now + timedelta(microseconds=1), 1000, token)
                due.extend(u for u in page.items if u.expires_at <= now)
                token = page.next_token
                if token is None:
                    break
            expired += self._expire(due, now)
        self.check_alerts()  # every level: recoveries held back by the quiet period are announced now
        return expired

    def _expire(self, due: list[BloodUnit], now: datetime) -> int:
        by_request: dict[str | None, list[BloodUnit]] = {}
        for u in due:
            key = u.request_id if u.status is UnitStatus.RESERVED else None
            by_request.setdefault(key, []).append(u)
        done = 0
        for request_id, units in by_request.items():
            for start in range(0, len(units), SWEEP_CHUNK):
                done += self._expire_chunk(request_id, units[start : start + SWEEP_CHUNK], now)
        return done

    def _expire_chunk(self, request_id: str | None, units: list[BloodUnit], now: datetime) -> int:
        pending = {u.id for u in units}
        for _ in range(ATTEMPTS):
            current = [
                u
                for u in self.store.units(sorted(pending))
                if u.status in rules.IN_STOCK and u.expires_at <= now
            ]
            if not current:
                return 0
            changes = [
                rules.change(
                    u,
                    UnitStatus.EXPIRED,
                    at=now,
                    by=SYSTEM_SWEEP,
                    why="expired",
                    wastage=WastageReason.EXPIRED,
                )
                for u in current
            ]
            write = InventoryWrite(at=now, units=changes)
            if request_id is not None:
                request = self.store.request(request_id)
                if request is not None:
                    reserved_here = [u.id for u in current if u.request_id == request_id]
                    write = replace(
                        write, request=_without(request, reserved_here, now), request_version=request.version
                    )
            try:
                self.store.commit(write)
                self._changed(write)
                return len(changes)
            except StaleWrite:
                self.sleep(random.uniform(0, 0.02))  # noqa: S311
        log.warning("expiry sweep gave up on a chunk after collisions", extra={"units": len(units)})
        return 0


# --- helpers ---------------------------------------------------------------------------------------
def _key(level: StockLevel) -> LevelKey:
    return LevelKey(level.site_id, level.blood_group, level.component)


def _staff(identity: Identity, what: str) -> None:
    if not identity.is_staff:
        raise Forbidden(f"Only blood service staff can {what}")


def _sees(identity: Identity, request: BloodRequest) -> bool:
    return identity.is_staff or (identity.is_hospital and identity.hospital_id == request.hospital_id)


_LABEL = re.compile(r"[A-Za-z0-9*][A-Za-z0-9*_.:-]{0,63}")


def _label(where: str, value: object) -> str:
    """A DIN or unit id as labelled: like an id, but a DIN's check character may be ``*``."""
    label = str(value) if value is not None else ""
    if not _LABEL.fullmatch(label):
        raise BadUserInput.of([FieldProblem(where, "is not a DIN or unit id (such as W123426000042F-RC)")])
    return label


def _ident(where: str, value: object) -> str:
    try:
        return text.identifier(where, str(value) if value is not None else "")
    except text.Invalid as bad:
        raise BadUserInput.of([bad.problem]) from None


def _token(value: object) -> str:
    token = str(value)
    if not 1 <= len(token) <= 64 or text.has_control(token) or not token.isascii():
        raise BadUserInput.of(
            [FieldProblem("clientRequestToken", "must be 1-64 printable ASCII characters (a UUID is ideal)")]
        )
    return token


def _fingerprint(arguments: Mapping[str, object]) -> str:
    def plain(v: object) -> object:
        if isinstance(v, Enum):
            return v.value
        if isinstance(v, datetime | date):
            return v.isoformat()
        if isinstance(v, Mapping):
            return {str(k): plain(x) for k, x in v.items() if k != "client_request_token"}
        if isinstance(v, list | tuple):
            return [plain(x) for x in v]
        return v

    body = json.dumps(plain(arguments), sort_keys=True, default=str)
    return hashlib.sha256(body.encode()).hexdigest()


def _note(value: object, where: str) -> str | None:
    if value is None:
        return None
    note = str(value).strip()
    if len(note) > MAX_REASON or text.has_control(note):
        raise BadUserInput.of([FieldProblem(where, f"must be at most {MAX_REASON} characters of plain text")])
    return note or None


def _int(value: object, default: int) -> int:
    if value is None:
        return default
    if not isinstance(value, int) or isinstance(value, bool):
        raise BadUserInput("expected a whole number")
    return value


def _float(value: object, default: float) -> float:
    if value is None:
        return default
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise BadUserInput("expected a number")
    return float(value)


def _results(raw: object) -> dict[TestMarker, TestOutcome]:
    if not isinstance(raw, list | tuple) or not raw:
        raise BadUserInput.of([FieldProblem("input.results", "must list at least one result")])
    results: dict[TestMarker, TestOutcome] = {}
    for n, entry in enumerate(raw):
        marker = entry.get("marker") if isinstance(entry, Mapping) else None
        outcome = entry.get("outcome") if isinstance(entry, Mapping) else None
        if not isinstance(marker, TestMarker) or not isinstance(outcome, TestOutcome):
            raise BadUserInput.of([FieldProblem(f"input.results[{n}]", "needs a marker and an outcome")])
        if marker in results and results[marker] is not outcome:
            raise BadUserInput.of(
                [
                    FieldProblem(
                        f"input.results[{n}]", f"{marker.value} is listed twice with different outcomes"
                    )
                ]
            )
        results[marker] = outcome
    return results


def _new_request(
    values: Mapping[str, object], hospital: Hospital, by: str, now: datetime, request_id: str
) -> BloodRequest:
    problems = []
    group, component, urgency = values.get("blood_group"), values.get("component"), values.get("urgency")
    quantity = values.get("quantity")
    if not isinstance(group, BloodGroup):
        problems.append(FieldProblem("input.bloodGroup", "is required"))
    if not isinstance(component, Component):
        problems.append(FieldProblem("input.component", "is required"))
    if not isinstance(quantity, int) or isinstance(quantity, bool) or not 1 <= quantity <= rules.MAX_QUANTITY:
        problems.append(
            FieldProblem(
                "input.quantity",
                f"must be 1-{rules.MAX_QUANTITY} units (place larger orders as several requests)",
            )
        )
    if urgency is not None and not isinstance(urgency, Urgency):
        problems.append(FieldProblem("input.urgency", "is not an urgency"))
    needed_by = values.get("needed_by") or now
    if not isinstance(needed_by, datetime):
        problems.append(FieldProblem("input.neededBy", "must be a date and time"))
    elif needed_by < now - PAST_GRACE:
        problems.append(FieldProblem("input.neededBy", "must not be in the past"))
    elif needed_by > now + MAX_LEAD:
        problems.append(FieldProblem("input.neededBy", "must be within 90 days"))
    if problems:
        raise BadUserInput.of(problems)
    assert isinstance(group, BloodGroup)
    assert isinstance(component, Component)
    assert isinstance(quantity, int)
    assert isinstance(needed_by, datetime)
    return BloodRequest(
        id=request_id,
        hospital_id=hospital.id,
        site_id=hospital.site_id,
        blood_group=group,
        component=component,
        quantity=quantity,
        urgency=urgency if isinstance(urgency, Urgency) else Urgency.ROUTINE,
        needed_by=max(needed_by, now),
        status=RequestStatus.PENDING,
        unit_ids=(),
        created_by=by,
        created_at=now,
        updated_at=now,
    )


def _without(request: BloodRequest, unit_ids: Sequence[str], now: datetime) -> BloodRequest:
    """The request after some of its reserved units left it (expired, discarded)."""
    gone = set(unit_ids)
    kept = tuple(u for u in request.unit_ids if u not in gone)
    status = request.status
    if status is not RequestStatus.CANCELLED:
        status = rules.status_after_allocation(request.quantity, len(kept))
    return replace(request, unit_ids=kept, status=status, updated_at=now, version=request.version + 1)
