"""Inventory on DynamoDB Local (Amazon's engine): races for the same units, counters against the
units, one ledger entry per change, transfers, the expiry sweep, idempotency tokens.

moto's DynamoDB is not thread-safe, so everything concurrent here runs on DynamoDB Local.
"""

from __future__ import annotations

import itertools
import threading
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bloodbank.cursor import CursorCodec
from bloodbank.domain.blood import BloodGroup, Component
from bloodbank.domain.donations import BloodUnit, UnitStatus
from bloodbank.domain.identity import Group, Identity
from bloodbank.domain.inventory import (
    RED_CELLS,
    LevelKey,
    RequestStatus,
    TestMarker,
    TestOutcome,
    Urgency,
    WastageReason,
)
from bloodbank.errors import AppError
from bloodbank.fakes import FixedClock
from bloodbank.local import stack
from bloodbank.services.inventory import InventoryService
from bloodbank.storage.inventory import DynamoInventory, unit_item
from tests.conftest import PAGE_SECRET, REGION

pytestmark = pytest.mark.ddblocal

STAFF = Identity(sub="staff-1", username="staff", groups=frozenset({Group.STAFF}), token_use="access")
US_NEGATIVE = [
    {"marker": m, "outcome": TestOutcome.NEGATIVE}
    for m in (
        TestMarker.HIV,
        TestMarker.HBV,
        TestMarker.HCV,
        TestMarker.HTLV,
        TestMarker.SYPHILIS,
        TestMarker.WNV,
    )
]
SITE = "site-north"
HOSPITALS = ("hosp-st-mary", "hosp-riverside", "hosp-kings")
FULFILMENTS = 50


@dataclass
class Inventory:
    store: DynamoInventory
    service: InventoryService
    clock: FixedClock


@pytest.fixture
def inv(dynamodb_local: str) -> Inventory:
    binding = stack.open_table(dynamodb_local, REGION, f"bloodbank-{uuid.uuid4().hex[:12]}")
    directory = stack.load_reference_data()
    store = DynamoInventory(binding, CursorCodec(PAGE_SECRET))
    clock = FixedClock(datetime.now(UTC).replace(microsecond=0))
    ids = iter(range(1, 10_000))
    service = InventoryService(store, directory, clock, lambda: f"req-{next(ids):05d}", sleep=lambda s: None)
    return Inventory(store, service, clock)


def stock_units(
    inv: Inventory, group: BloodGroup, days: int, site: str = SITE, n: int = 1
) -> list[BloodUnit]:
    """``n`` red cell units of ``group``, released by negative test results: as the lab would."""
    made = []
    for _ in range(n):
        din = f"W1234{uuid.uuid4().int % 10**9:09d}"
        now = inv.clock()
        unit = BloodUnit(
            id=f"{din}-RC",
            din=din,
            component=Component.RED_CELLS,
            blood_group=group,
            status=UnitStatus.QUARANTINED,
            site_id=site,
            donor_id="donor-x",
            collected_at=now - timedelta(days=1),
            expires_at=now + timedelta(days=days),
        )
        unit_item(unit).save()
        released = inv.service.record_test_results(
            STAFF, {"din": din, "blood_group": group, "results": US_NEGATIVE}
        )
        assert [u.status for u in released] == [UnitStatus.AVAILABLE]
        made.append(released[0])
    return made


def race(calls: list[Callable[[], object]]) -> Counter[str]:
    barrier = threading.Barrier(len(calls))
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()

    def run(call: Callable[[], object]) -> None:
        barrier.wait()
        try:
            call()
            outcome = "ok"
        except AppError as error:
            outcome = error.code
        with lock:
            outcomes[outcome] += 1

    threads = [threading.Thread(target=run, args=(c,)) for c in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads)
    return outcomes


def units_on_shelves(inv: Inventory, site: str) -> list[BloodUnit]:
    found: list[BloodUnit] = []
    token = None
    while True:
        page = inv.store.in_stock(site, None, 100, token)
        found.extend(page.items)
        token = page.next_token
        if token is None:
            return found


def assert_counters_match_units(inv: Inventory, sites: tuple[str, ...] = (SITE,)) -> None:
    """Every stock counter equals the number of units in that status (and nothing is negative)."""
    counted: Counter[tuple[LevelKey, UnitStatus]] = Counter()
    for site in sites:
        for u in units_on_shelves(inv, site):
            if u.blood_group is not None and u.status in (UnitStatus.AVAILABLE, UnitStatus.RESERVED):
                counted[(LevelKey(u.site_id, u.blood_group, u.component), u.status)] += 1
    stored: Counter[tuple[LevelKey, UnitStatus]] = Counter()
    for c in inv.store.stock(None, inv.clock().date() - timedelta(days=30)):
        if c.key.site_id in sites:
            assert c.available >= 0
            assert c.reserved >= 0
            stored[(c.key, UnitStatus.AVAILABLE)] += c.available
            stored[(c.key, UnitStatus.RESERVED)] += c.reserved
    assert +stored == +counted


def assert_one_ledger_entry_per_change(inv: Inventory, units: list[BloodUnit]) -> None:
    for current in inv.store.units([u.id for u in units]):
        entries = inv.store.ledger(current.id)
        assert [e.version for e in entries] == list(range(2, current.version + 1))
        assert entries[-1].to_status is current.status
        for earlier, later in itertools.pairwise(entries):
            assert later.from_status is earlier.to_status


def test_fifty_concurrent_fulfilments_never_allocate_a_unit_twice(inv: Inventory) -> None:
    o_neg = stock_units(inv, BloodGroup.O_NEG, days=20, n=4) + stock_units(
        inv, BloodGroup.O_NEG, days=10, n=2
    )
    o_pos = stock_units(inv, BloodGroup.O_POS, days=15, n=3)
    shelf = o_neg + o_pos
    requests = []
    for n in range(FULFILMENTS):
        patient = BloodGroup.O_NEG if n % 2 == 0 else BloodGroup.O_POS
        requests.append(
            inv.service.create_request(
                STAFF,
                {
                    "hospital_id": HOSPITALS[n % 3],
                    "blood_group": patient,
                    "component": Component.RED_CELLS,
                    "quantity": 1 + n % 2,
                    "urgency": Urgency.EMERGENCY,
                },
            )
        )

    outcomes = race([(lambda r=r: inv.service.fulfil(STAFF, r.id)) for r in requests])
    assert outcomes == Counter({"ok": FULFILMENTS})

    after = [inv.store.request(r.id) for r in requests]
    allocated = [u for r in after if r for u in r.unit_ids]
    assert len(allocated) == len(set(allocated)), "a unit was allocated to two requests"
    assert len(allocated) == len(shelf), "stock was left while requests were short"
    units = {u.id: u for u in inv.store.units(allocated)}
    for r in after:
        assert r is not None
        assert len(r.unit_ids) <= r.quantity
        assert r.status is {0: RequestStatus.PENDING, r.quantity: RequestStatus.FULFILLED}.get(
            len(r.unit_ids), RequestStatus.PARTIALLY_FULFILLED
        )
        for uid in r.unit_ids:
            unit = units[uid]
            assert unit.status is UnitStatus.RESERVED
            assert unit.request_id == r.id
            assert unit.blood_group in RED_CELLS[r.blood_group]
    assert_counters_match_units(inv)
    assert_one_ledger_entry_per_change(inv, shelf)

    # Every request is issued twice at once: each unit goes out exactly once.
    issue_calls = [(lambda r=r: inv.service.issue(STAFF, r.id)) for r in after if r and r.unit_ids] * 2
    outcomes = race(issue_calls)
    assert outcomes["ok"] >= len(issue_calls) // 2
    assert set(outcomes) <= {"ok", "CONFLICT"}
    issued_entries = [e for u in shelf for e in inv.store.ledger(u.id) if e.to_status is UnitStatus.ISSUED]
    assert Counter(e.unit_id for e in issued_entries) == Counter({u.id: 1 for u in shelf})
    assert all(u.status is UnitStatus.ISSUED for u in inv.store.units([u.id for u in shelf]))
    total_issued = sum(n for c in inv.store.stock(SITE, inv.clock().date()) for n in c.issued_by_day.values())
    assert total_issued == len(shelf) <= len(o_neg) + len(o_pos)
    assert_counters_match_units(inv)
    assert_one_ledger_entry_per_change(inv, shelf)


def test_concurrent_fulfilments_of_one_request_allocate_only_its_quantity(inv: Inventory) -> None:
    shelf = stock_units(inv, BloodGroup.A_POS, days=30, n=8)
    request = inv.service.create_request(
        STAFF,
        {
            "hospital_id": "hosp-st-mary",
            "blood_group": BloodGroup.A_POS,
            "component": Component.RED_CELLS,
            "quantity": 3,
        },
    )
    outcomes = race([lambda: inv.service.fulfil(STAFF, request.id) for _ in range(10)])
    assert outcomes == Counter({"ok": 10})
    final = inv.store.request(request.id)
    assert final is not None
    assert final.status is RequestStatus.FULFILLED
    assert len(final.unit_ids) == 3
    reserved = [u for u in inv.store.units([u.id for u in shelf]) if u.status is UnitStatus.RESERVED]
    assert sorted(u.id for u in reserved) == sorted(final.unit_ids)
    assert_counters_match_units(inv)


def test_fefo_and_identical_group_first_on_the_real_indexes(inv: Inventory) -> None:
    late = stock_units(inv, BloodGroup.A_POS, days=30)
    soon = stock_units(inv, BloodGroup.A_POS, days=3)
    universal = stock_units(inv, BloodGroup.O_NEG, days=1)
    request = inv.service.create_request(
        STAFF,
        {
            "hospital_id": "hosp-st-mary",
            "blood_group": BloodGroup.A_POS,
            "component": Component.RED_CELLS,
            "quantity": 3,
        },
    )
    fulfilled = inv.service.fulfil(STAFF, request.id)
    assert fulfilled.unit_ids == (soon[0].id, late[0].id, universal[0].id)


def test_an_expired_unit_is_never_allocated_even_if_the_index_still_lists_it(inv: Inventory) -> None:
    [unit] = stock_units(inv, BloodGroup.B_POS, days=1)
    inv.clock.advance(days=1, seconds=1)
    request = inv.service.create_request(
        STAFF,
        {
            "hospital_id": "hosp-st-mary",
            "blood_group": BloodGroup.B_POS,
            "component": Component.RED_CELLS,
            "quantity": 1,
        },
    )
    assert inv.service.fulfil(STAFF, request.id).status is RequestStatus.PENDING
    assert inv.store.units([unit.id])[0].status is UnitStatus.AVAILABLE


def test_transfer_moves_units_and_both_sites_counters_in_one_transaction(inv: Inventory) -> None:
    units = stock_units(inv, BloodGroup.AB_NEG, days=30, n=3)
    moved = inv.service.transfer(STAFF, {"unit_ids": [u.id for u in units[:2]], "to_site_id": "site-south"})
    assert {u.site_id for u in moved} == {"site-south"}
    levels = {
        (c.key.site_id): c
        for c in inv.store.stock(None, inv.clock().date())
        if c.key.blood_group is BloodGroup.AB_NEG
    }
    assert levels[SITE].available == 1
    assert levels["site-south"].available == 2
    assert_counters_match_units(inv, (SITE, "site-south"))
    # A transfer that names a unit that is not AVAILABLE moves nothing.
    request = inv.service.create_request(
        STAFF,
        {
            "hospital_id": "hosp-st-mary",
            "blood_group": BloodGroup.AB_NEG,
            "component": Component.RED_CELLS,
            "quantity": 1,
        },
    )
    inv.service.fulfil(STAFF, request.id)
    with pytest.raises(AppError) as refused:
        inv.service.transfer(STAFF, {"unit_ids": [moved[0].id, units[2].id], "to_site_id": "site-london"})
    assert refused.value.code == "CONFLICT"
    assert {u.site_id for u in inv.store.units([moved[0].id])} == {"site-south"}
    assert_counters_match_units(inv, (SITE, "site-south", "site-london"))


def test_the_expiry_sweep_expires_units_once_even_when_two_runs_overlap(inv: Inventory) -> None:
    platelets_like = stock_units(inv, BloodGroup.O_POS, days=2, n=3)
    keeps = stock_units(inv, BloodGroup.O_POS, days=30)
    request = inv.service.create_request(
        STAFF,
        {
            "hospital_id": "hosp-st-mary",
            "blood_group": BloodGroup.O_POS,
            "component": Component.RED_CELLS,
            "quantity": 1,
        },
    )
    reserved = inv.service.fulfil(STAFF, request.id)
    assert reserved.unit_ids[0] in {u.id for u in platelets_like}  # first to expire
    inv.clock.advance(days=2, minutes=1)
    results: list[int] = []
    outcomes = race([lambda: results.append(inv.service.expire_due()) for _ in range(2)])
    assert outcomes == Counter({"ok": 2})
    assert sum(results) == 3
    statuses = {u.id: u.status for u in inv.store.units([u.id for u in [*platelets_like, *keeps]])}
    assert statuses == {
        **{u.id: UnitStatus.EXPIRED for u in platelets_like},
        keeps[0].id: UnitStatus.AVAILABLE,
    }
    after = inv.store.request(request.id)
    assert after is not None
    assert after.unit_ids == ()
    assert after.status is RequestStatus.PENDING
    assert_counters_match_units(inv)
    assert_one_ledger_entry_per_change(inv, [*platelets_like, *keeps])
    assert inv.service.expire_due() == 0
    # The wastage is recorded: in each unit's ledger, and counted on its level for the day.
    for u in platelets_like:
        assert inv.store.ledger(u.id)[-1].wastage is WastageReason.EXPIRED
    [level] = inv.service.stock_levels(STAFF, SITE, BloodGroup.O_POS, Component.RED_CELLS)
    assert level.wasted_in_window == 3
    assert level.available == 1


def test_a_retried_create_with_one_token_makes_one_request_even_at_once(inv: Inventory) -> None:
    values: dict[str, Any] = {
        "hospital_id": "hosp-st-mary",
        "blood_group": BloodGroup.O_NEG,
        "component": Component.PLATELETS,
        "quantity": 2,
        "client_request_token": "0b9d6c3e-retry",
    }
    made: list[str] = []
    outcomes = race([lambda: made.append(inv.service.create_request(STAFF, values).id) for _ in range(8)])
    assert outcomes == Counter({"ok": 8})
    assert len(set(made)) == 1
    page = inv.store.requests("hosp-st-mary", None, 100, None)
    assert [r.id for r in page.items] == [made[0]]
    with pytest.raises(AppError) as reused:
        inv.service.create_request(STAFF, {**values, "quantity": 3})
    assert reused.value.code == "CONFLICT"


def test_request_lists_page_by_hospital_and_by_status(inv: Inventory) -> None:
    for n in range(7):
        inv.clock.advance(seconds=1)
        inv.service.create_request(
            STAFF,
            {
                "hospital_id": HOSPITALS[n % 2],
                "blood_group": BloodGroup.A_NEG,
                "component": Component.PLASMA,
                "quantity": 1,
                "needed_by": inv.clock() + timedelta(hours=10 - n),
            },
        )
    first = inv.store.requests("hosp-st-mary", None, 2, None)
    assert first.next_token is not None
    second = inv.store.requests("hosp-st-mary", None, 2, first.next_token)
    assert second.next_token is None
    mine = [*first.items, *second.items]
    assert len(mine) == 4
    assert [r.created_at for r in mine] == sorted((r.created_at for r in mine), reverse=True)
    pending = inv.store.requests(None, RequestStatus.PENDING, 100, None).items
    assert [r.needed_by for r in pending] == sorted(r.needed_by for r in pending)
    assert len(pending) == 7


def test_concurrent_changes_announce_one_alert_per_crossing(inv: Inventory) -> None:
    from bloodbank.adapters.broker import LocalAlertBroker
    from bloodbank.fakes import RecordingAlertPublisher
    from bloodbank.services.alerts import AlertService

    published = RecordingAlertPublisher()
    broker = LocalAlertBroker()
    ids = iter(range(1, 1000))
    inv.service.alerts = AlertService(inv.store, published, broker, inv.clock, lambda: f"alert-{next(ids)}")
    units = stock_units(inv, BloodGroup.AB_NEG, days=30, n=8)
    admin = Identity(sub="admin-1", username="admin", groups=frozenset({Group.ADMINS}), token_use="access")
    inv.service.set_threshold(
        admin,
        {"site_id": SITE, "blood_group": BloodGroup.AB_NEG, "component": Component.RED_CELLS, "par_level": 6},
    )
    assert published.published == []  # 8 >= 6: GREEN
    # Eight staff discard at once: the level goes 8 -> 0, through AMBER (5 and below) to RED (0).
    outcomes = race(
        [
            (lambda u=u: inv.service.discard(STAFF, {"unit_id": u.id, "reason": WastageReason.DAMAGED}))
            for u in units
        ]
    )
    assert outcomes == Counter({"ok": 8})
    statuses = [a.status.value for a in published.published]
    assert statuses in (["AMBER", "RED"], ["RED"])  # never the same crossing twice
    recorded = inv.store.alerts(SITE, 100, None).items
    assert sorted(a.id for a in recorded) == sorted(a.id for a in published.published)
    [counts] = [
        c for c in inv.store.stock(SITE, inv.clock().date()) if c.key.blood_group is BloodGroup.AB_NEG
    ]
    assert counts.announced.status.value == "RED"
    assert counts.announced.version == len(recorded)
