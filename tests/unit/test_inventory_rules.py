"""Inventory rules, table-driven: compatibility and preference, FEFO allocation, the unit lifecycle,
test verdicts, returns, stock status and days of supply, counter deltas."""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from bloodbank.domain import inventory
from bloodbank.domain.blood import BloodGroup, Component, Jurisdiction
from bloodbank.domain.donations import BloodUnit, UnitStatus
from bloodbank.domain.inventory import (
    COMPATIBLE,
    MAX_WINDOW_DAYS,
    PLASMA,
    PLATELETS,
    RED_CELLS,
    TRANSITIONS,
    WHOLE_BLOOD,
    IllegalTransition,
    LevelKey,
    RequestStatus,
    StockStatus,
    TestMarker,
    TestOutcome,
    TestVerdict,
    Threshold,
    UnitChange,
    WastageReason,
    allocation_order,
    change,
    check_threshold,
    counter_deltas,
    days_of_supply,
    level,
    may_restock,
    missing_markers,
    status_after_allocation,
    stock_status,
    verdict,
    with_units,
)
from bloodbank.errors import Conflict

G = BloodGroup
S = UnitStatus
C = Component
AT = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
ALL_GROUPS = list(BloodGroup)


def unit(
    uid: str = "W123426000001-RC",
    *,
    group: BloodGroup | None = G.O_NEG,
    component: Component = C.RED_CELLS,
    status: UnitStatus = S.AVAILABLE,
    site: str = "site-north",
    expires_in: timedelta = timedelta(days=10),
    version: int = 1,
    request_id: str | None = None,
) -> BloodUnit:
    return BloodUnit(
        id=uid,
        din=uid.split("-")[0],
        component=component,
        blood_group=group,
        status=status,
        site_id=site,
        donor_id="donor-1",
        collected_at=AT - timedelta(days=1),
        expires_at=AT + expires_in,
        version=version,
        request_id=request_id,
    )


# --- compatibility, from first principles ---------------------------------------------------------
_ANTIGENS = {"O": frozenset(), "A": frozenset("A"), "B": frozenset("B"), "AB": frozenset("AB")}


def _abo(g: BloodGroup) -> str:
    return g.value.split("_")[0]


def _rh_pos(g: BloodGroup) -> bool:
    return g.value.endswith("POS")


def red_cells_ok(patient: BloodGroup, donor: BloodGroup) -> bool:
    """The donor's red cells carry no ABO antigen the patient lacks; RhD positive only to RhD positive."""
    return _ANTIGENS[_abo(donor)] <= _ANTIGENS[_abo(patient)] and (_rh_pos(patient) or not _rh_pos(donor))


def plasma_ok(patient: BloodGroup, donor: BloodGroup) -> bool:
    """The reverse: the donor's plasma has no antibody against the patient's antigens; RhD irrelevant."""
    return _ANTIGENS[_abo(patient)] <= _ANTIGENS[_abo(donor)]


def whole_blood_ok(patient: BloodGroup, donor: BloodGroup) -> bool:
    return _abo(patient) == _abo(donor) and red_cells_ok(patient, donor)


PAIRS = list(itertools.product(ALL_GROUPS, ALL_GROUPS))


@pytest.mark.parametrize(("patient", "donor"), PAIRS, ids=[f"{p.value}<-{d.value}" for p, d in PAIRS])
def test_red_cells_matrix(patient: BloodGroup, donor: BloodGroup) -> None:
    assert (donor in RED_CELLS[patient]) is red_cells_ok(patient, donor)
    assert COMPATIBLE[C.RED_CELLS] is RED_CELLS


@pytest.mark.parametrize(("patient", "donor"), PAIRS, ids=[f"{p.value}<-{d.value}" for p, d in PAIRS])
def test_whole_blood_matrix_is_abo_identical(patient: BloodGroup, donor: BloodGroup) -> None:
    assert (donor in WHOLE_BLOOD[patient]) is whole_blood_ok(patient, donor)


@pytest.mark.parametrize("component", [C.PLASMA, C.CRYO])
@pytest.mark.parametrize(("patient", "donor"), PAIRS, ids=[f"{p.value}<-{d.value}" for p, d in PAIRS])
def test_plasma_and_cryo_matrix_reverse_rule(
    component: Component, patient: BloodGroup, donor: BloodGroup
) -> None:
    assert (donor in COMPATIBLE[component][patient]) is plasma_ok(patient, donor)


@pytest.mark.parametrize(
    ("patient", "expected"),
    [
        (G.O_NEG, [G.O_NEG]),
        (G.O_POS, [G.O_POS, G.O_NEG]),
        (G.A_NEG, [G.A_NEG, G.O_NEG]),
        (G.A_POS, [G.A_POS, G.A_NEG, G.O_POS, G.O_NEG]),
        (G.B_NEG, [G.B_NEG, G.O_NEG]),
        (G.B_POS, [G.B_POS, G.B_NEG, G.O_POS, G.O_NEG]),
        (G.AB_NEG, [G.AB_NEG, G.A_NEG, G.B_NEG, G.O_NEG]),
        (G.AB_POS, [G.AB_POS, G.AB_NEG, G.A_POS, G.A_NEG, G.B_POS, G.B_NEG, G.O_POS, G.O_NEG]),
    ],
)
def test_red_cells_preference_order(patient: BloodGroup, expected: list[BloodGroup]) -> None:
    assert list(RED_CELLS[patient]) == expected
    assert RED_CELLS[patient][0] is patient  # identical group first
    assert RED_CELLS[patient][-1] is G.O_NEG  # the universal, scarcest group last


@pytest.mark.parametrize(
    ("patient", "expected"),
    [
        (G.O_NEG, [G.O_NEG]),
        (G.O_POS, [G.O_POS, G.O_NEG]),
        (G.A_NEG, [G.A_NEG]),
        (G.A_POS, [G.A_POS, G.A_NEG]),
        (G.B_NEG, [G.B_NEG]),
        (G.B_POS, [G.B_POS, G.B_NEG]),
        (G.AB_NEG, [G.AB_NEG]),
        (G.AB_POS, [G.AB_POS, G.AB_NEG]),
    ],
)
def test_whole_blood_preference_order(patient: BloodGroup, expected: list[BloodGroup]) -> None:
    assert list(WHOLE_BLOOD[patient]) == expected


@pytest.mark.parametrize(
    ("patient", "expected"),
    [
        (G.O_NEG, [G.O_NEG, G.O_POS, G.A_NEG, G.A_POS, G.B_NEG, G.B_POS, G.AB_NEG, G.AB_POS]),
        (G.O_POS, [G.O_POS, G.O_NEG, G.A_POS, G.A_NEG, G.B_POS, G.B_NEG, G.AB_POS, G.AB_NEG]),
        (G.A_NEG, [G.A_NEG, G.A_POS, G.AB_NEG, G.AB_POS]),
        (G.A_POS, [G.A_POS, G.A_NEG, G.AB_POS, G.AB_NEG]),
        (G.B_NEG, [G.B_NEG, G.B_POS, G.AB_NEG, G.AB_POS]),
        (G.B_POS, [G.B_POS, G.B_NEG, G.AB_POS, G.AB_NEG]),
        (G.AB_NEG, [G.AB_NEG, G.AB_POS]),
        (G.AB_POS, [G.AB_POS, G.AB_NEG]),
    ],
)
def test_plasma_preference_order(patient: BloodGroup, expected: list[BloodGroup]) -> None:
    assert list(PLASMA[patient]) == expected
    assert COMPATIBLE[C.CRYO][patient] == PLASMA[patient]
    assert PLASMA[patient][0] is patient
    # AB plasma (universal, scarce) suits everyone and comes last (after the other RhD of the same ABO)
    assert {G.AB_NEG, G.AB_POS} <= set(PLASMA[patient])
    assert _abo(PLASMA[patient][-1]) == "AB"


@pytest.mark.parametrize(
    ("patient", "expected"),
    [
        (G.O_NEG, [G.O_NEG, G.A_NEG, G.B_NEG, G.AB_NEG]),
        (G.O_POS, [G.O_POS, G.O_NEG, G.A_POS, G.A_NEG, G.B_POS, G.B_NEG, G.AB_POS, G.AB_NEG]),
        (G.A_NEG, [G.A_NEG, G.AB_NEG, G.B_NEG, G.O_NEG]),
        (G.A_POS, [G.A_POS, G.A_NEG, G.AB_POS, G.AB_NEG, G.B_POS, G.B_NEG, G.O_POS, G.O_NEG]),
        (G.B_NEG, [G.B_NEG, G.AB_NEG, G.A_NEG, G.O_NEG]),
        (G.B_POS, [G.B_POS, G.B_NEG, G.AB_POS, G.AB_NEG, G.A_POS, G.A_NEG, G.O_POS, G.O_NEG]),
        (G.AB_NEG, [G.AB_NEG, G.A_NEG, G.B_NEG, G.O_NEG]),
        (G.AB_POS, [G.AB_POS, G.AB_NEG, G.A_POS, G.A_NEG, G.B_POS, G.B_NEG, G.O_POS, G.O_NEG]),
    ],
)
def test_platelets_preference_order(patient: BloodGroup, expected: list[BloodGroup]) -> None:
    got = list(PLATELETS[patient])
    assert got == expected
    assert got[0] is patient  # ABO (and RhD) identical first
    if not _rh_pos(patient):
        assert all(not _rh_pos(g) for g in got)  # an RhD negative patient gets RhD negative platelets
    # donors whose plasma suits the patient come before those whose plasma does not
    suits = [plasma_ok(patient, g) for g in got]
    assert suits == sorted(suits, reverse=True)


@pytest.mark.parametrize("component", list(Component))
@pytest.mark.parametrize("patient", ALL_GROUPS)
def test_every_table_lists_each_group_once_with_the_patient_first(
    component: Component, patient: BloodGroup
) -> None:
    groups = inventory.donor_groups_for(component, patient)
    assert len(groups) == len(set(groups))
    assert groups[0] is patient


def test_o_neg_patient_gets_only_o_neg_red_cells_and_ab_pos_gets_any() -> None:
    assert RED_CELLS[G.O_NEG] == (G.O_NEG,)
    assert set(RED_CELLS[G.AB_POS]) == set(BloodGroup)
    assert set(PLASMA[G.O_NEG]) == set(BloodGroup)  # O patients take any plasma
    assert set(PLASMA[G.AB_POS]) == {G.AB_POS, G.AB_NEG}


# --- allocation: preference, then first expiry first out -------------------------------------------
def test_allocation_orders_by_preference_then_expiry() -> None:
    units = [
        unit("U-ONEG-SOON", group=G.O_NEG, expires_in=timedelta(days=1)),
        unit("U-APOS-LATE", group=G.A_POS, expires_in=timedelta(days=20)),
        unit("U-APOS-SOON", group=G.A_POS, expires_in=timedelta(days=2)),
        unit("U-ANEG-SOON", group=G.A_NEG, expires_in=timedelta(days=1)),
        unit("U-OPOS-MID", group=G.O_POS, expires_in=timedelta(days=5)),
        unit("U-APOS-MID", group=G.A_POS, expires_in=timedelta(days=5)),
    ]
    got = [u.id for u in allocation_order(units, C.RED_CELLS, G.A_POS, AT)]
    assert got == ["U-APOS-SOON", "U-APOS-MID", "U-APOS-LATE", "U-ANEG-SOON", "U-OPOS-MID", "U-ONEG-SOON"]


def test_allocation_breaks_expiry_ties_by_id() -> None:
    units = [unit("U-B", expires_in=timedelta(days=3)), unit("U-A", expires_in=timedelta(days=3))]
    assert [u.id for u in allocation_order(units, C.RED_CELLS, G.O_NEG, AT)] == ["U-A", "U-B"]


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        (unit("U-X", expires_in=timedelta(0)), "expires right now"),
        (unit("U-X", expires_in=timedelta(hours=-1)), "expired"),
        (unit("U-X", status=S.QUARANTINED), "quarantined"),
        (unit("U-X", status=S.RESERVED, request_id="r-1"), "reserved"),
        (unit("U-X", status=S.ISSUED, request_id="r-1"), "issued"),
        (unit("U-X", status=S.DISCARDED), "discarded"),
        (unit("U-X", status=S.EXPIRED, expires_in=timedelta(hours=-1)), "expired status"),
        (unit("U-X", status=S.TRANSFUSED), "transfused"),
        (unit("U-X", component=C.PLASMA), "wrong component"),
        (unit("U-X", component=C.WHOLE_BLOOD), "whole blood is not red cells"),
        (unit("U-X", group=None), "untyped"),
        (unit("U-X", group=G.O_POS), "incompatible group"),
    ],
)
def test_allocation_skips_units_that_cannot_be_given(bad: BloodUnit, why: str) -> None:
    good = unit("U-GOOD", expires_in=timedelta(days=30))
    assert allocation_order([bad, good], C.RED_CELLS, G.O_NEG, AT) == [good], why


@pytest.mark.parametrize("component", list(Component))
@pytest.mark.parametrize("patient", ALL_GROUPS)
def test_allocation_returns_exactly_the_compatible_available_units(
    component: Component, patient: BloodGroup
) -> None:
    shelf = [unit(f"U-{g.value}-{c.value}", group=g, component=c) for g in ALL_GROUPS for c in Component]
    got = allocation_order(shelf, component, patient, AT)
    assert [u.blood_group for u in got] == list(COMPATIBLE[component][patient])
    assert {u.component for u in got} <= {component}


# --- the lifecycle ---------------------------------------------------------------------------------
ALL_PAIRS = list(itertools.product(UnitStatus, UnitStatus))
LEGAL = {
    (S.QUARANTINED, S.AVAILABLE),
    (S.QUARANTINED, S.DISCARDED),
    (S.QUARANTINED, S.EXPIRED),
    (S.AVAILABLE, S.AVAILABLE),  # a transfer between sites
    (S.AVAILABLE, S.RESERVED),
    (S.AVAILABLE, S.DISCARDED),
    (S.AVAILABLE, S.EXPIRED),
    (S.RESERVED, S.AVAILABLE),
    (S.RESERVED, S.ISSUED),
    (S.RESERVED, S.DISCARDED),
    (S.RESERVED, S.EXPIRED),
    (S.ISSUED, S.TRANSFUSED),
    (S.ISSUED, S.AVAILABLE),
    (S.ISSUED, S.DISCARDED),
}


def test_the_transition_table_is_the_documented_one() -> None:
    assert {(a, b) for a, targets in TRANSITIONS.items() for b in targets} == LEGAL
    assert set(TRANSITIONS) == set(UnitStatus)
    for final in (S.TRANSFUSED, S.DISCARDED, S.EXPIRED):
        assert TRANSITIONS[final] == frozenset()


def _unit_for(status: UnitStatus, to: UnitStatus) -> tuple[BloodUnit, datetime]:
    """A unit in ``status`` and a moment at which moving it to ``to`` is a matter of the table alone."""
    request = "req-1" if status in (S.RESERVED, S.ISSUED, S.TRANSFUSED) else None
    u = unit(status=status, version=3, request_id=request)
    at = u.expires_at + timedelta(minutes=1) if to is S.EXPIRED else AT
    return u, at


@pytest.mark.parametrize(("start", "to"), ALL_PAIRS, ids=[f"{a.value}->{b.value}" for a, b in ALL_PAIRS])
def test_every_pair_of_statuses(start: UnitStatus, to: UnitStatus) -> None:
    u, at = _unit_for(start, to)
    if (start, to) not in LEGAL:
        with pytest.raises(IllegalTransition) as caught:
            change(u, to, at=at, by="staff-1", why="test")
        assert caught.value.code == "CONFLICT"
        assert isinstance(caught.value, Conflict)
        assert start.value in caught.value.message
        assert to.value in caught.value.message
        return
    c = change(u, to, at=at, by="staff-1", why="test", wastage=None)
    assert isinstance(c, UnitChange)
    assert c.before == u
    assert (c.after.status, c.after.version, c.after.id) == (to, 4, u.id)
    e = c.entry
    assert (e.unit_id, e.version, e.from_status, e.to_status) == (u.id, 4, start, to)
    assert (e.at, e.by, e.why, e.site_id, e.to_site_id) == (at, "staff-1", "test", "site-north", None)


def test_final_statuses_say_so() -> None:
    with pytest.raises(IllegalTransition, match="final"):
        change(unit(status=S.TRANSFUSED), S.AVAILABLE, at=AT, by="x", why="y")


def test_a_reservation_carries_the_request_and_a_release_drops_it() -> None:
    reserved = change(unit(), S.RESERVED, at=AT, by="s", why="w", request_id="req-9")
    assert reserved.after.request_id == "req-9"
    assert reserved.entry.request_id == "req-9"
    issued = change(reserved.after, S.ISSUED, at=AT, by="s", why="w")
    assert issued.after.request_id == "req-9"
    assert issued.entry.request_id == "req-9"
    transfused = change(issued.after, S.TRANSFUSED, at=AT, by="h", why="w")
    assert transfused.after.request_id == "req-9"
    released = change(reserved.after, S.AVAILABLE, at=AT, by="s", why="cancelled")
    assert released.after.request_id is None
    assert released.entry.request_id == "req-9"  # the ledger says which request let it go
    assert [c.after.version for c in (reserved, issued, transfused)] == [2, 3, 4]


def test_a_transfer_moves_the_site_and_the_ledger_says_where() -> None:
    c = change(unit(), S.AVAILABLE, at=AT, by="s", why="transfer", site_id="site-south")
    assert c.after.site_id == "site-south"
    assert (c.entry.site_id, c.entry.to_site_id) == ("site-north", "site-south")
    same = change(unit(), S.AVAILABLE, at=AT, by="s", why="x", site_id="site-north")
    assert same.entry.to_site_id is None


def test_a_discard_records_its_wastage_reason() -> None:
    c = change(unit(), S.DISCARDED, at=AT, by="s", why="bag leaking", wastage=WastageReason.DAMAGED)
    assert c.entry.wastage is WastageReason.DAMAGED
    assert c.after.request_id is None


@pytest.mark.parametrize(
    ("start", "to"),
    [
        (S.QUARANTINED, S.AVAILABLE),
        (S.AVAILABLE, S.RESERVED),
        (S.AVAILABLE, S.AVAILABLE),
        (S.RESERVED, S.ISSUED),
        (S.RESERVED, S.AVAILABLE),
        (S.ISSUED, S.AVAILABLE),
    ],
)
@pytest.mark.parametrize("past", [timedelta(0), timedelta(seconds=1), timedelta(days=3)])
def test_nothing_expired_is_released_reserved_or_issued(
    start: UnitStatus, to: UnitStatus, past: timedelta
) -> None:
    u = unit(status=start, request_id="r" if start in (S.RESERVED, S.ISSUED) else None)
    with pytest.raises(IllegalTransition, match="expired"):
        change(u, to, at=u.expires_at + past, by="s", why="w")
    c = change(u, to, at=u.expires_at - timedelta(seconds=1), by="s", why="w")
    assert c.needs_in_date
    assert not c.needs_expired


@pytest.mark.parametrize("start", [S.QUARANTINED, S.AVAILABLE, S.RESERVED])
def test_only_a_unit_past_its_expiry_becomes_expired(start: UnitStatus) -> None:
    u = unit(status=start, request_id="r" if start is S.RESERVED else None)
    with pytest.raises(IllegalTransition, match="does not expire"):
        change(u, S.EXPIRED, at=u.expires_at - timedelta(seconds=1), by="system", why="expired")
    c = change(u, S.EXPIRED, at=u.expires_at, by="system", why="expired", wastage=WastageReason.EXPIRED)
    assert c.needs_expired
    assert not c.needs_in_date
    assert c.after.request_id is None


@pytest.mark.parametrize(("start", "to"), [(S.AVAILABLE, S.DISCARDED), (S.ISSUED, S.TRANSFUSED)])
def test_discard_and_transfusion_do_not_need_the_unit_in_date(start: UnitStatus, to: UnitStatus) -> None:
    u = unit(status=start, request_id="r" if start is S.ISSUED else None)
    c = change(u, to, at=u.expires_at + timedelta(days=1), by="s", why="w")
    assert c.after.status is to
    assert not c.needs_in_date
    assert not c.needs_expired


# --- test verdicts ---------------------------------------------------------------------------------
COMMON = [TestMarker.HIV, TestMarker.HBV, TestMarker.HCV, TestMarker.HTLV, TestMarker.SYPHILIS]
NEG = TestOutcome.NEGATIVE


def negative(*markers: TestMarker) -> dict[TestMarker, TestOutcome]:
    return dict.fromkeys(markers, NEG)


@pytest.mark.parametrize(
    ("results", "jurisdiction", "expected"),
    [
        (negative(*COMMON, TestMarker.WNV), Jurisdiction.US, TestVerdict.SAFE),
        (negative(*COMMON), Jurisdiction.US, TestVerdict.PENDING),  # WNV missing
        (negative(*COMMON, TestMarker.HEV), Jurisdiction.US, TestVerdict.PENDING),  # HEV is not WNV
        (negative(*COMMON, TestMarker.WNV, TestMarker.HEV), Jurisdiction.US, TestVerdict.SAFE),
        (negative(*COMMON, TestMarker.HEV), Jurisdiction.UK, TestVerdict.SAFE),
        (negative(*COMMON), Jurisdiction.UK, TestVerdict.PENDING),  # HEV missing
        (negative(*COMMON, TestMarker.WNV), Jurisdiction.UK, TestVerdict.PENDING),
        (negative(*COMMON[1:], TestMarker.WNV), Jurisdiction.US, TestVerdict.PENDING),  # HIV missing
        ({}, Jurisdiction.US, TestVerdict.PENDING),
        ({TestMarker.HIV: TestOutcome.REACTIVE}, Jurisdiction.US, TestVerdict.UNSAFE),
        ({TestMarker.HCV: TestOutcome.INDETERMINATE}, Jurisdiction.UK, TestVerdict.UNSAFE),
        (
            {**negative(*COMMON, TestMarker.WNV), TestMarker.SYPHILIS: TestOutcome.REACTIVE},
            Jurisdiction.US,
            TestVerdict.UNSAFE,
        ),
        # a reactive result on a marker the jurisdiction does not require still makes it unsafe
        (
            {**negative(*COMMON, TestMarker.WNV), TestMarker.HEV: TestOutcome.REACTIVE},
            Jurisdiction.US,
            TestVerdict.UNSAFE,
        ),
        (
            {**negative(*COMMON, TestMarker.HEV), TestMarker.WNV: TestOutcome.INDETERMINATE},
            Jurisdiction.UK,
            TestVerdict.UNSAFE,
        ),
    ],
)
def test_verdict(
    results: dict[TestMarker, TestOutcome], jurisdiction: Jurisdiction, expected: TestVerdict
) -> None:
    assert verdict(results, jurisdiction) is expected


@pytest.mark.parametrize(
    ("jurisdiction", "extra"), [(Jurisdiction.US, TestMarker.WNV), (Jurisdiction.UK, TestMarker.HEV)]
)
def test_required_markers_per_jurisdiction(jurisdiction: Jurisdiction, extra: TestMarker) -> None:
    assert inventory.REQUIRED_MARKERS[jurisdiction] == frozenset({*COMMON, extra})
    assert missing_markers({}, jurisdiction) == sorted(m.value for m in (*COMMON, extra))
    assert missing_markers(negative(*COMMON), jurisdiction) == [extra.value]
    assert missing_markers(negative(*COMMON, extra), jurisdiction) == []


# --- returns ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("component", "minutes", "expires_in", "ok"),
    [
        (C.RED_CELLS, 0, timedelta(days=3), True),
        (C.RED_CELLS, 30, timedelta(days=3), True),
        (C.RED_CELLS, 31, timedelta(days=3), False),
        (C.WHOLE_BLOOD, 30, timedelta(days=3), True),
        (C.WHOLE_BLOOD, 31, timedelta(days=3), False),
        (C.PLASMA, 30, timedelta(days=3), True),
        (C.PLASMA, 31, timedelta(days=3), False),
        (C.CRYO, 31, timedelta(days=3), False),
        (C.PLATELETS, 60, timedelta(days=3), True),
        (C.PLATELETS, 61, timedelta(days=3), False),
        (C.RED_CELLS, 0, timedelta(0), False),  # expires right now
        (C.RED_CELLS, 0, timedelta(minutes=-1), False),
        (C.RED_CELLS, 5, timedelta(minutes=1), True),
    ],
)
def test_may_restock(component: Component, minutes: int, expires_in: timedelta, ok: bool) -> None:
    u = unit(component=component, status=S.ISSUED, expires_in=expires_in, request_id="r")
    refused = may_restock(u, timedelta(minutes=minutes), AT)
    assert (refused is None) is ok
    if not ok:
        assert isinstance(refused, str)
        assert refused


def test_may_restock_says_why() -> None:
    u = unit(status=S.ISSUED)
    assert may_restock(u, timedelta(minutes=45), AT) == (
        "it was out of controlled storage longer than 30 minutes"
    )
    assert may_restock(unit(status=S.ISSUED, expires_in=timedelta(0)), timedelta(0), AT) == "it has expired"


# --- stock levels ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("available", "issued", "window", "expected"),
    [
        (10, 0, 7, None),  # nothing issued: no rate to divide by
        (0, 0, 7, None),
        (0, 7, 7, 0.0),
        (7, 7, 7, 7.0),  # one a day, seven on the shelf
        (14, 7, 7, 14.0),
        (3, 14, 7, 1.5),
        (10, 3, 7, 23.33),
        (1, 3, 1, 0.33),
        (5, 30, 30, 5.0),
    ],
)
def test_days_of_supply(available: int, issued: int, window: int, expected: float | None) -> None:
    assert days_of_supply(available, issued, window) == expected


PAR = Threshold(par_level=10)


@pytest.mark.parametrize(
    ("available", "supply", "threshold", "expected"),
    [
        (10, None, Threshold(), StockStatus.GREEN),  # nothing issued, no par level
        (0, None, Threshold(), StockStatus.GREEN),  # nothing held, nothing used, nothing wanted
        (20, 2.0, Threshold(), StockStatus.GREEN),  # exactly 2 days: not under
        (20, 1.99, Threshold(), StockStatus.AMBER),
        (20, 1.0, Threshold(), StockStatus.AMBER),  # exactly 1 day: not under
        (20, 0.99, Threshold(), StockStatus.RED),
        (0, 0.0, Threshold(), StockStatus.RED),  # used lately and none left
        (0, None, PAR, StockStatus.RED),  # a par level set and nothing left
        (9, None, PAR, StockStatus.AMBER),  # below par
        (10, None, PAR, StockStatus.GREEN),  # at par
        (9, 30.0, PAR, StockStatus.AMBER),  # plenty of days but below par
        (50, 1.5, PAR, StockStatus.AMBER),  # above par but under the amber days
        (50, 0.5, PAR, StockStatus.RED),
        (20, 3.5, Threshold(amber_days=4, red_days=3), StockStatus.AMBER),
        (20, 2.5, Threshold(amber_days=4, red_days=3), StockStatus.RED),
        (20, 4.0, Threshold(amber_days=4, red_days=3), StockStatus.GREEN),
        (20, 0.0, Threshold(amber_days=0, red_days=0), StockStatus.GREEN),
    ],
)
def test_stock_status(
    available: int, supply: float | None, threshold: Threshold, expected: StockStatus
) -> None:
    assert stock_status(available, supply, threshold) is expected


def test_defaults() -> None:
    t = Threshold()
    assert (t.par_level, t.amber_days, t.red_days, t.window_days) == (0, 2.0, 1.0, 7)
    assert 7 <= MAX_WINDOW_DAYS <= 90


@pytest.mark.parametrize(
    ("available", "issued", "expected_days", "expected_status"),
    [
        (20, 7, 20.0, StockStatus.GREEN),
        (13, 7 * 7, 1.86, StockStatus.AMBER),  # seven a day, under two days left
        (6, 7 * 7, 0.86, StockStatus.RED),
        (14, 7 * 7, 2.0, StockStatus.GREEN),
        (7, 7 * 7, 1.0, StockStatus.AMBER),
        (5, 0, None, StockStatus.GREEN),
    ],
)
def test_level_combines_counters_and_issue_rate(
    available: int, issued: int, expected_days: float | None, expected_status: StockStatus
) -> None:
    key = LevelKey("site-north", G.O_NEG, C.RED_CELLS)
    got = level(key, available, 2, Threshold(), issued)
    assert (got.site_id, got.blood_group, got.component) == ("site-north", G.O_NEG, C.RED_CELLS)
    assert (got.available, got.reserved, got.issued_in_window) == (available, 2, issued)
    assert got.days_of_supply == expected_days
    assert got.status is expected_status
    assert got.issue_rate_per_day == issued / 7
    assert got.par_level == 0


@pytest.mark.parametrize(
    ("threshold", "fields"),
    [
        (Threshold(), []),
        (Threshold(par_level=100_000, amber_days=365, red_days=365, window_days=MAX_WINDOW_DAYS), []),
        (Threshold(par_level=0, amber_days=0, red_days=0, window_days=1), []),
        (Threshold(par_level=-1), ["input.parLevel"]),
        (Threshold(par_level=100_001), ["input.parLevel"]),
        (Threshold(amber_days=-0.5, red_days=-1), ["input.amberDays", "input.redDays"]),
        (Threshold(amber_days=366), ["input.amberDays"]),
        (Threshold(amber_days=float("nan")), ["input.amberDays"]),
        (Threshold(amber_days=float("inf"), red_days=1), ["input.amberDays"]),
        (Threshold(red_days=float("nan")), ["input.redDays"]),
        (Threshold(amber_days=1, red_days=2), ["input.redDays"]),  # red above amber
        (Threshold(window_days=0), ["input.windowDays"]),
        (Threshold(window_days=MAX_WINDOW_DAYS + 1), ["input.windowDays"]),
        (
            Threshold(par_level=-5, amber_days=1, red_days=3, window_days=0),
            ["input.parLevel", "input.redDays", "input.windowDays"],
        ),
    ],
)
def test_check_threshold(threshold: Threshold, fields: list[str]) -> None:
    problems = check_threshold(threshold)
    assert [f for f, _ in problems] == fields
    assert all(message for _, message in problems)


# --- counter deltas --------------------------------------------------------------------------------
NORTH_ONEG = LevelKey("site-north", G.O_NEG, C.RED_CELLS)
SOUTH_ONEG = LevelKey("site-south", G.O_NEG, C.RED_CELLS)


def moved(start: UnitStatus, to: UnitStatus, **kw: object) -> UnitChange:
    u = unit(status=start, request_id="r" if start in (S.RESERVED, S.ISSUED) else None)
    at = u.expires_at if to is S.EXPIRED else AT
    return change(u, to, at=at, by="s", why="w", **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("start", "to", "levels", "issued"),
    [
        (S.QUARANTINED, S.AVAILABLE, {NORTH_ONEG: {S.AVAILABLE: 1}}, {}),
        (S.QUARANTINED, S.DISCARDED, {}, {}),
        (S.QUARANTINED, S.EXPIRED, {}, {}),
        (S.AVAILABLE, S.RESERVED, {NORTH_ONEG: {S.AVAILABLE: -1, S.RESERVED: 1}}, {}),
        (S.AVAILABLE, S.DISCARDED, {NORTH_ONEG: {S.AVAILABLE: -1}}, {}),
        (S.AVAILABLE, S.EXPIRED, {NORTH_ONEG: {S.AVAILABLE: -1}}, {}),
        (S.RESERVED, S.AVAILABLE, {NORTH_ONEG: {S.AVAILABLE: 1, S.RESERVED: -1}}, {}),
        (S.RESERVED, S.ISSUED, {NORTH_ONEG: {S.RESERVED: -1}}, {NORTH_ONEG: 1}),
        (S.RESERVED, S.DISCARDED, {NORTH_ONEG: {S.RESERVED: -1}}, {}),
        (S.RESERVED, S.EXPIRED, {NORTH_ONEG: {S.RESERVED: -1}}, {}),
        (S.ISSUED, S.AVAILABLE, {NORTH_ONEG: {S.AVAILABLE: 1}}, {}),  # returned unused
        (S.ISSUED, S.TRANSFUSED, {}, {}),
        (S.ISSUED, S.DISCARDED, {}, {}),
        (S.AVAILABLE, S.AVAILABLE, {}, {}),  # same site: nothing moves
    ],
)
def test_counter_deltas_of_one_move(
    start: UnitStatus,
    to: UnitStatus,
    levels: dict[LevelKey, dict[UnitStatus, int]],
    issued: dict[LevelKey, int],
) -> None:
    deltas = counter_deltas([moved(start, to)])
    assert {k: dict(v) for k, v in deltas.levels.items()} == levels
    assert dict(deltas.issued) == issued


def test_a_transfer_moves_available_between_sites() -> None:
    deltas = counter_deltas([moved(S.AVAILABLE, S.AVAILABLE, site_id="site-south")])
    assert {k: dict(v) for k, v in deltas.levels.items()} == {
        NORTH_ONEG: {S.AVAILABLE: -1},
        SOUTH_ONEG: {S.AVAILABLE: 1},
    }
    assert dict(deltas.issued) == {}


def test_untyped_units_are_not_counted() -> None:
    u = unit(group=None, status=S.QUARANTINED)
    for to in (S.DISCARDED, S.EXPIRED):
        at = u.expires_at if to is S.EXPIRED else AT
        deltas = counter_deltas([change(u, to, at=at, by="s", why="w")])
        assert (dict(deltas.levels), dict(deltas.issued)) == ({}, {})
    stray = unit(group=None, status=S.AVAILABLE)
    deltas = counter_deltas([change(stray, S.RESERVED, at=AT, by="s", why="w", request_id="r")])
    assert (dict(deltas.levels), dict(deltas.issued)) == ({}, {})


def test_typing_on_release_counts_the_unit_under_its_new_group() -> None:
    """recordTestResults types a unit as it releases it: before untyped, after typed."""
    before = unit(group=None, status=S.QUARANTINED)
    c = change(replace(before, blood_group=G.A_POS), S.AVAILABLE, at=AT, by="s", why="negative")
    deltas = counter_deltas([UnitChange(before, c.after, c.entry)])
    assert {k: dict(v) for k, v in deltas.levels.items()} == {
        LevelKey("site-north", G.A_POS, C.RED_CELLS): {S.AVAILABLE: 1}
    }


def test_deltas_of_many_changes_add_up_and_cancel_out() -> None:
    a = unit("U-A")
    b = unit("U-B", group=G.A_POS)
    c = unit("U-C", status=S.RESERVED, request_id="r")
    changes = [
        change(a, S.RESERVED, at=AT, by="s", why="w", request_id="r"),
        change(b, S.RESERVED, at=AT, by="s", why="w", request_id="r"),
        change(c, S.ISSUED, at=AT, by="s", why="w"),
        change(unit("U-D"), S.AVAILABLE, at=AT, by="s", why="t", site_id="site-south"),
    ]
    deltas = counter_deltas(changes)
    assert {k: dict(v) for k, v in deltas.levels.items()} == {
        NORTH_ONEG: {S.AVAILABLE: -2},  # U-A reserved, U-D gone south; +1 reserved -1 reserved
        LevelKey("site-north", G.A_POS, C.RED_CELLS): {S.AVAILABLE: -1, S.RESERVED: 1},
        SOUTH_ONEG: {S.AVAILABLE: 1},
    }
    assert dict(deltas.issued) == {NORTH_ONEG: 1}


# --- requests --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("quantity", "allocated", "expected"),
    [
        (3, 0, RequestStatus.PENDING),
        (3, 1, RequestStatus.PARTIALLY_FULFILLED),
        (3, 2, RequestStatus.PARTIALLY_FULFILLED),
        (3, 3, RequestStatus.FULFILLED),
        (1, 1, RequestStatus.FULFILLED),
    ],
)
def test_status_after_allocation(quantity: int, allocated: int, expected: RequestStatus) -> None:
    assert status_after_allocation(quantity, allocated) is expected


def test_with_units_appends_and_counts_outstanding() -> None:
    request = inventory.BloodRequest(
        id="req-1",
        hospital_id="hosp-st-mary",
        site_id="site-north",
        blood_group=G.O_NEG,
        component=C.RED_CELLS,
        quantity=3,
        urgency=inventory.Urgency.ROUTINE,
        needed_by=AT,
        status=RequestStatus.PENDING,
        unit_ids=(),
        created_by="staff-1",
        created_at=AT,
        updated_at=AT,
    )
    assert request.outstanding == 3
    one = with_units(request, ["U-1"], AT + timedelta(minutes=1))
    assert (one.status, one.unit_ids, one.outstanding, one.version) == (
        RequestStatus.PARTIALLY_FULFILLED,
        ("U-1",),
        2,
        2,
    )
    three = with_units(one, ["U-2", "U-3"], AT + timedelta(minutes=2))
    assert (three.status, three.unit_ids, three.outstanding, three.version) == (
        RequestStatus.FULFILLED,
        ("U-1", "U-2", "U-3"),
        0,
        3,
    )
    assert replace(one, status=RequestStatus.CANCELLED).outstanding == 0


@pytest.mark.parametrize(
    ("start", "to", "wasted"),
    [
        (S.QUARANTINED, S.DISCARDED, {NORTH_ONEG: 1}),  # a typed unit: counted on its level
        (S.QUARANTINED, S.EXPIRED, {NORTH_ONEG: 1}),
        (S.AVAILABLE, S.DISCARDED, {NORTH_ONEG: 1}),
        (S.AVAILABLE, S.EXPIRED, {NORTH_ONEG: 1}),
        (S.RESERVED, S.EXPIRED, {NORTH_ONEG: 1}),
        (S.ISSUED, S.DISCARDED, {NORTH_ONEG: 1}),  # returned unfit
        (S.ISSUED, S.TRANSFUSED, {}),
        (S.AVAILABLE, S.RESERVED, {}),
        (S.QUARANTINED, S.AVAILABLE, {}),
    ],
)
def test_wastage_is_counted_where_a_unit_is_lost(
    start: UnitStatus, to: UnitStatus, wasted: dict[LevelKey, int]
) -> None:
    assert dict(counter_deltas([moved(start, to)]).wasted) == wasted
