"""Inventory rules: the unit lifecycle, test results, compatibility, first-expiry-first-out allocation,
stock levels and days of supply, returns, and hospital requests. Pure: no I/O, no clock of its own.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import Enum

from bloodbank.domain.blood import BloodGroup, Component, Jurisdiction
from bloodbank.domain.donations import BloodUnit, UnitStatus
from bloodbank.errors import Conflict


# --- the unit lifecycle ---------------------------------------------------------------------------
class WastageReason(Enum):
    """Why a unit left stock without being transfused (a wastage report's categories)."""

    EXPIRED = "EXPIRED"
    TEST_REACTIVE = "TEST_REACTIVE"  # a reactive or indeterminate screening result on its donation
    DAMAGED = "DAMAGED"  # leaking or broken bag, clots, haemolysis seen on inspection
    TEMPERATURE_EXCURSION = "TEMPERATURE_EXCURSION"  # storage out of range
    OUT_OF_STORAGE_TOO_LONG = "OUT_OF_STORAGE_TOO_LONG"  # returned after its time out of storage
    RECALLED = "RECALLED"  # post-donation information, lookback
    OTHER = "OTHER"


S = UnitStatus
# Every legal move. Anything else is refused; the last three are final.
TRANSITIONS: Mapping[UnitStatus, frozenset[UnitStatus]] = {
    S.QUARANTINED: frozenset({S.AVAILABLE, S.DISCARDED, S.EXPIRED}),
    S.AVAILABLE: frozenset({S.AVAILABLE, S.RESERVED, S.DISCARDED, S.EXPIRED}),  # AVAILABLE: a transfer
    S.RESERVED: frozenset({S.AVAILABLE, S.ISSUED, S.DISCARDED, S.EXPIRED}),
    S.ISSUED: frozenset({S.TRANSFUSED, S.AVAILABLE, S.DISCARDED}),  # AVAILABLE: returned unused
    S.TRANSFUSED: frozenset(),
    S.DISCARDED: frozenset(),
    S.EXPIRED: frozenset(),
}
# Statuses in which a unit is on a site's shelves (the expiry sweep looks at these).
IN_STOCK = frozenset({S.QUARANTINED, S.AVAILABLE, S.RESERVED})
# Statuses counted by the stock level counters.
COUNTED = (S.AVAILABLE, S.RESERVED)
# Moves that may only happen while the unit is in date (nothing expired is released or sent out).
NEEDS_IN_DATE = frozenset({S.AVAILABLE, S.RESERVED, S.ISSUED})


class IllegalTransition(Conflict):
    """The unit's status does not allow this change."""

    error_type = "IllegalTransition"


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One change of one unit: immutable, written in the transaction that makes the change."""

    unit_id: str
    version: int  # the unit's version after the change: entries of a unit are numbered 2, 3, ...
    at: datetime
    by: str  # the user's sub, or "system:<job>"
    from_status: UnitStatus
    to_status: UnitStatus
    why: str  # what happened: "test results negative", "reserved for request ...", a wastage reason
    site_id: str
    to_site_id: str | None = None
    request_id: str | None = None
    wastage: WastageReason | None = None


@dataclass(frozen=True, slots=True)
class UnitChange:
    """A unit as read, as it will be, and the ledger entry saying why. Storage writes all three,
    on the condition that the unit is still as read (status, site, version) and, where the new
    status needs it, still in date (or, for the expiry sweep, past its expiry)."""

    before: BloodUnit
    after: BloodUnit
    entry: LedgerEntry

    @property
    def needs_in_date(self) -> bool:
        return self.after.status in NEEDS_IN_DATE

    @property
    def needs_expired(self) -> bool:
        return self.after.status is S.EXPIRED


def change(
    unit: BloodUnit,
    to: UnitStatus,
    *,
    at: datetime,
    by: str,
    why: str,
    site_id: str | None = None,
    request_id: str | None = None,
    wastage: WastageReason | None = None,
) -> UnitChange:
    """The change of ``unit`` to ``to``, or IllegalTransition. In-date moves are refused for expired
    units here too; storage checks the same against the stored expiry."""
    if to not in TRANSITIONS[unit.status]:
        raise IllegalTransition(
            f"Unit {unit.id} is {unit.status.value}: it cannot become {to.value}"
            + (" (that status is final)" if not TRANSITIONS[unit.status] else "")
        )
    if to in NEEDS_IN_DATE and unit.expires_at <= at:
        raise IllegalTransition(f"Unit {unit.id} expired at {unit.expires_at.isoformat()}: it cannot be used")
    if to is S.EXPIRED and unit.expires_at > at:
        raise IllegalTransition(f"Unit {unit.id} does not expire until {unit.expires_at.isoformat()}")
    new_site = site_id or unit.site_id
    keeps_request = to in (S.RESERVED, S.ISSUED, S.TRANSFUSED)
    after = replace(
        unit,
        status=to,
        site_id=new_site,
        request_id=(request_id or unit.request_id) if keeps_request else None,
        version=unit.version + 1,
    )
    entry = LedgerEntry(
        unit_id=unit.id,
        version=after.version,
        at=at,
        by=by,
        from_status=unit.status,
        to_status=to,
        why=why,
        site_id=unit.site_id,
        to_site_id=new_site if new_site != unit.site_id else None,
        request_id=request_id or unit.request_id,
        wastage=wastage,
    )
    return UnitChange(unit, after, entry)


# --- test results ---------------------------------------------------------------------------------
class TestMarker(Enum):
    """Mandatory screening of every donation for transfusion-transmissible infections."""

    __test__ = False  # not a pytest class

    HIV = "HIV"  # HIV-1/2 antibody and NAT
    HBV = "HBV"  # HBsAg, NAT (anti-HBc in the US)
    HCV = "HCV"  # antibody and NAT
    HTLV = "HTLV"  # HTLV-I/II antibody
    SYPHILIS = "SYPHILIS"
    WNV = "WNV"  # West Nile virus NAT (US)
    HEV = "HEV"  # hepatitis E NAT (UK)


class TestOutcome(Enum):
    __test__ = False

    NEGATIVE = "NEGATIVE"
    REACTIVE = "REACTIVE"
    INDETERMINATE = "INDETERMINATE"


_COMMON = frozenset({TestMarker.HIV, TestMarker.HBV, TestMarker.HCV, TestMarker.HTLV, TestMarker.SYPHILIS})
REQUIRED_MARKERS: Mapping[Jurisdiction, frozenset[TestMarker]] = {
    Jurisdiction.US: _COMMON | {TestMarker.WNV},  # 21 CFR 610.40
    Jurisdiction.UK: _COMMON | {TestMarker.HEV},  # JPAC Red Book
}


class TestVerdict(Enum):
    __test__ = False

    SAFE = "SAFE"  # every required marker negative: release
    UNSAFE = "UNSAFE"  # any reactive or indeterminate result: discard the donation's units
    PENDING = "PENDING"  # results still missing: keep in quarantine


def verdict(results: Mapping[TestMarker, TestOutcome], jurisdiction: Jurisdiction) -> TestVerdict:
    """UNSAFE as soon as any result is not negative (required or not); SAFE when all required are in."""
    if any(outcome is not TestOutcome.NEGATIVE for outcome in results.values()):
        return TestVerdict.UNSAFE
    if REQUIRED_MARKERS[jurisdiction] <= results.keys():
        return TestVerdict.SAFE
    return TestVerdict.PENDING


def missing_markers(results: Mapping[TestMarker, TestOutcome], jurisdiction: Jurisdiction) -> list[str]:
    return sorted(m.value for m in REQUIRED_MARKERS[jurisdiction] - results.keys())


# --- compatibility --------------------------------------------------------------------------------
G = BloodGroup
# Red cells (and whole blood): donor groups a patient may receive, the patient's own group first,
# then the same ABO with the other RhD, then O; O RhD negative, the universal and scarcest, last.
RED_CELLS: Mapping[BloodGroup, tuple[BloodGroup, ...]] = {
    G.O_NEG: (G.O_NEG,),
    G.O_POS: (G.O_POS, G.O_NEG),
    G.A_NEG: (G.A_NEG, G.O_NEG),
    G.A_POS: (G.A_POS, G.A_NEG, G.O_POS, G.O_NEG),
    G.B_NEG: (G.B_NEG, G.O_NEG),
    G.B_POS: (G.B_POS, G.B_NEG, G.O_POS, G.O_NEG),
    G.AB_NEG: (G.AB_NEG, G.A_NEG, G.B_NEG, G.O_NEG),
    G.AB_POS: (G.AB_POS, G.AB_NEG, G.A_POS, G.A_NEG, G.B_POS, G.B_NEG, G.O_POS, G.O_NEG),
}
# Whole blood carries the donor's plasma too: ABO identical only, RhD as for red cells.
WHOLE_BLOOD: Mapping[BloodGroup, tuple[BloodGroup, ...]] = {
    patient: tuple(g for g in RED_CELLS[patient] if g.value.split("_")[0] == patient.value.split("_")[0])
    for patient in G
}
# Plasma and cryo: the reverse rule on ABO (the donor's antibodies must not meet the patient's
# antigens); RhD does not matter. Identical group first, AB (universal plasma, scarce) last.
_PLASMA_ABO = {"O": ("O", "A", "B", "AB"), "A": ("A", "AB"), "B": ("B", "AB"), "AB": ("AB",)}
# Platelets: ABO identical first, then donors whose plasma suits the patient, then the rest
# (acceptable for platelets when nothing better is there); an RhD negative patient gets RhD negative.
_PLATELET_ABO = {
    "O": ("O", "A", "B", "AB"),
    "A": ("A", "AB", "B", "O"),
    "B": ("B", "AB", "A", "O"),
    "AB": ("AB", "A", "B", "O"),
}


def _by_abo(patient: BloodGroup, order: Mapping[str, tuple[str, ...]], *, rh_matters: bool) -> tuple[G, ...]:
    abo, rh = patient.value.split("_")
    other_rh = "POS" if rh == "NEG" else "NEG"
    result: list[BloodGroup] = []
    for donor_abo in order[abo]:
        result.append(G(f"{donor_abo}_{rh}"))
        if not rh_matters or rh == "POS":
            result.append(G(f"{donor_abo}_{other_rh}"))
    return tuple(result)


PLASMA: Mapping[BloodGroup, tuple[BloodGroup, ...]] = {
    p: _by_abo(p, _PLASMA_ABO, rh_matters=False) for p in G
}
PLATELETS: Mapping[BloodGroup, tuple[BloodGroup, ...]] = {
    p: _by_abo(p, _PLATELET_ABO, rh_matters=True) for p in G
}
COMPATIBLE: Mapping[Component, Mapping[BloodGroup, tuple[BloodGroup, ...]]] = {
    Component.RED_CELLS: RED_CELLS,
    Component.WHOLE_BLOOD: WHOLE_BLOOD,
    Component.PLASMA: PLASMA,
    Component.CRYO: PLASMA,
    Component.PLATELETS: PLATELETS,
}


def donor_groups_for(component: Component, patient: BloodGroup) -> tuple[BloodGroup, ...]:
    """Donor groups a patient of ``patient`` may receive ``component`` from, most preferred first."""
    return COMPATIBLE[component][patient]


def allocation_order(
    units: Iterable[BloodUnit], component: Component, patient: BloodGroup, now: datetime
) -> list[BloodUnit]:
    """Units that may be allocated, best first: compatible, AVAILABLE, in date; the preferred group
    first and, within a group, first expiry first out."""
    preference = {g: rank for rank, g in enumerate(donor_groups_for(component, patient))}
    usable = [
        u
        for u in units
        if u.component is component
        and u.status is S.AVAILABLE
        and u.expires_at > now
        and u.blood_group in preference
    ]
    return sorted(usable, key=lambda u: (preference[u.blood_group], u.expires_at, u.id))  # type: ignore[index]


# --- returns ---------------------------------------------------------------------------------------
# How long an issued unit may have been out of controlled storage and still go back on the shelf
# (the "30-minute rule" for red cells; plasma and cryo once thawed, platelets at room temperature).
MAX_TIME_OUT_OF_STORAGE: Mapping[Component, timedelta] = {
    Component.RED_CELLS: timedelta(minutes=30),
    Component.WHOLE_BLOOD: timedelta(minutes=30),
    Component.PLASMA: timedelta(minutes=30),
    Component.CRYO: timedelta(minutes=30),
    Component.PLATELETS: timedelta(minutes=60),
}


def may_restock(unit: BloodUnit, out_of_storage: timedelta, now: datetime) -> str | None:
    """None if a returned unit may go back to AVAILABLE; otherwise why not."""
    if unit.expires_at <= now:
        return "it has expired"
    limit = MAX_TIME_OUT_OF_STORAGE[unit.component]
    if out_of_storage > limit:
        return f"it was out of controlled storage longer than {int(limit.total_seconds() // 60)} minutes"
    return None


# --- stock levels ----------------------------------------------------------------------------------
class StockStatus(Enum):
    GREEN = "GREEN"
    AMBER = "AMBER"
    RED = "RED"


DEFAULT_AMBER_DAYS = 2.0
DEFAULT_RED_DAYS = 1.0
DEFAULT_WINDOW_DAYS = 7
MAX_WINDOW_DAYS = 28  # stockLevels reads this many days of daily issue counters


@dataclass(frozen=True, slots=True)
class Threshold:
    """Par level (units the site wants on the shelf) and the days-of-supply limits of one level."""

    par_level: int = 0
    amber_days: float = DEFAULT_AMBER_DAYS
    red_days: float = DEFAULT_RED_DAYS
    window_days: int = DEFAULT_WINDOW_DAYS  # trailing days over which the issue rate is measured


@dataclass(frozen=True, slots=True)
class LevelKey:
    site_id: str
    blood_group: BloodGroup
    component: Component


@dataclass(frozen=True, slots=True)
class StockLevel:
    site_id: str
    blood_group: BloodGroup
    component: Component
    available: int
    reserved: int
    threshold: Threshold
    issued_in_window: int  # units issued over the trailing window (today included)
    days_of_supply: float | None  # None: nothing was issued in the window, so no rate to divide by
    status: StockStatus
    wasted_in_window: int = 0  # units discarded or expired over the same window

    @property
    def issue_rate_per_day(self) -> float:
        return self.issued_in_window / self.threshold.window_days

    @property
    def par_level(self) -> int:
        return self.threshold.par_level


def days_of_supply(available: int, issued_in_window: int, window_days: int) -> float | None:
    if issued_in_window <= 0:
        return None
    return round(available / (issued_in_window / window_days), 2)


def stock_status(available: int, supply_days: float | None, threshold: Threshold) -> StockStatus:
    """RED under ``red_days`` of supply (or nothing left where a par level is set), AMBER under
    ``amber_days`` or below the par level, GREEN otherwise."""
    if threshold.par_level > 0 and available == 0:
        return StockStatus.RED
    if supply_days is not None and supply_days < threshold.red_days:
        return StockStatus.RED
    if supply_days is not None and supply_days < threshold.amber_days:
        return StockStatus.AMBER
    if available < threshold.par_level:
        return StockStatus.AMBER
    return StockStatus.GREEN


def level(
    key: LevelKey,
    available: int,
    reserved: int,
    threshold: Threshold,
    issued_in_window: int,
    wasted_in_window: int = 0,
) -> StockLevel:
    supply = days_of_supply(available, issued_in_window, threshold.window_days)
    return StockLevel(
        site_id=key.site_id,
        blood_group=key.blood_group,
        component=key.component,
        available=available,
        reserved=reserved,
        threshold=threshold,
        issued_in_window=issued_in_window,
        days_of_supply=supply,
        status=stock_status(available, supply, threshold),
        wasted_in_window=wasted_in_window,
    )


def check_threshold(threshold: Threshold) -> list[tuple[str, str]]:
    """(field, problem) pairs; empty when the threshold is sensible."""
    problems = []
    if not 0 <= threshold.par_level <= 100_000:
        problems.append(("input.parLevel", "must be between 0 and 100000 units"))
    for name, value in (("input.amberDays", threshold.amber_days), ("input.redDays", threshold.red_days)):
        if not math.isfinite(value) or not 0 <= value <= 365:
            problems.append((name, "must be a number of days between 0 and 365"))
    if threshold.red_days > threshold.amber_days:
        problems.append(("input.redDays", "must not be more than amberDays"))
    if not 1 <= threshold.window_days <= MAX_WINDOW_DAYS:
        problems.append(("input.windowDays", f"must be between 1 and {MAX_WINDOW_DAYS}"))
    return problems


def level_key(unit: BloodUnit) -> LevelKey | None:
    return LevelKey(unit.site_id, unit.blood_group, unit.component) if unit.blood_group else None


@dataclass(frozen=True, slots=True)
class CounterDeltas:
    """How the stock counters move for a set of unit changes (all in one transaction)."""

    levels: Mapping[LevelKey, Mapping[UnitStatus, int]]  # available/reserved deltas per level
    issued: Mapping[LevelKey, int]  # units newly issued, by the level they left
    wasted: Mapping[LevelKey, int] = field(default_factory=dict)  # typed units discarded or expired


def counter_deltas(changes: Sequence[UnitChange]) -> CounterDeltas:
    levels: dict[LevelKey, dict[UnitStatus, int]] = defaultdict(lambda: defaultdict(int))
    issued: dict[LevelKey, int] = defaultdict(int)
    wasted: dict[LevelKey, int] = defaultdict(int)
    for c in changes:
        before, after = level_key(c.before), level_key(c.after)
        if before is not None and c.before.status in COUNTED:
            levels[before][c.before.status] -= 1
        if after is not None and c.after.status in COUNTED:
            levels[after][c.after.status] += 1
        if before is not None and c.after.status is S.ISSUED and c.before.status is not S.ISSUED:
            issued[before] += 1
        if before is not None and c.after.status in (S.DISCARDED, S.EXPIRED):
            wasted[before] += 1
    moved = {
        k: {status: d for status, d in deltas.items() if d}
        for k, deltas in levels.items()
        if any(deltas.values())
    }
    return CounterDeltas(moved, {k: n for k, n in issued.items() if n}, dict(wasted))


# --- hospital requests -----------------------------------------------------------------------------
class Urgency(Enum):
    ROUTINE = "ROUTINE"
    URGENT = "URGENT"
    EMERGENCY = "EMERGENCY"


class RequestStatus(Enum):
    PENDING = "PENDING"
    PARTIALLY_FULFILLED = "PARTIALLY_FULFILLED"
    FULFILLED = "FULFILLED"
    CANCELLED = "CANCELLED"


MAX_QUANTITY = 40  # units in one request: one transaction allocates them all (DynamoDB's 100 items)


@dataclass(frozen=True, slots=True)
class BloodRequest:
    id: str
    hospital_id: str
    site_id: str  # the site that supplies the hospital
    blood_group: BloodGroup  # the patient's group
    component: Component
    quantity: int
    urgency: Urgency
    needed_by: datetime
    status: RequestStatus
    unit_ids: tuple[str, ...]  # allocated units (reserved, then issued), in allocation order
    created_by: str
    created_at: datetime
    updated_at: datetime
    version: int = 1
    issued_unit_ids: tuple[str, ...] = ()
    cancel_reason: str | None = None

    @property
    def outstanding(self) -> int:
        return 0 if self.status is RequestStatus.CANCELLED else max(0, self.quantity - len(self.unit_ids))


def status_after_allocation(quantity: int, allocated: int) -> RequestStatus:
    if allocated <= 0:
        return RequestStatus.PENDING
    return RequestStatus.FULFILLED if allocated >= quantity else RequestStatus.PARTIALLY_FULFILLED


def with_units(request: BloodRequest, unit_ids: Sequence[str], at: datetime) -> BloodRequest:
    allocated = (*request.unit_ids, *unit_ids)
    return replace(
        request,
        unit_ids=allocated,
        status=status_after_allocation(request.quantity, len(allocated)),
        updated_at=at,
        version=request.version + 1,
    )
