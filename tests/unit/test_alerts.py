"""Shortage alerts: when a crossing is announced (table-driven), and the service around it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bloodbank.domain.alerts import NEVER, AlertFilter, Announced, ShortageAlert, crossing
from bloodbank.domain.blood import BloodGroup, Component
from bloodbank.domain.donations import BloodUnit, UnitStatus
from bloodbank.domain.identity import Group, Identity
from bloodbank.domain.inventory import LevelKey, StockStatus, Threshold, level
from tests.conftest import World

G, A, R = StockStatus.GREEN, StockStatus.AMBER, StockStatus.RED
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
QUIET = timedelta(minutes=30)
KEY = LevelKey("site-north", BloodGroup.O_NEG, Component.RED_CELLS)
STAFF = Identity("staff-1", "s", frozenset({Group.STAFF}), "access")
ADMIN = Identity("admin-1", "a", frozenset({Group.ADMINS}), "access")


def at_status(status: StockStatus) -> object:
    """A level of that status: par level 4 with 0 (RED), 2 (AMBER) or 6 (GREEN) units."""
    available = {R: 0, A: 2, G: 6}[status]
    return level(KEY, available, 0, Threshold(par_level=4), 0)


@pytest.mark.parametrize(
    ("announced", "minutes_ago", "now_status", "expected"),
    [
        (NEVER, None, G, None),  # nothing new
        (NEVER, None, A, A),  # first shortage: at once
        (NEVER, None, R, R),
        (Announced(A, NOW, 1), 0, R, R),  # worse: at once, whatever the quiet period
        (Announced(A, NOW, 1), 0, A, None),
        (Announced(A, NOW, 1), 5, G, None),  # better within the quiet period: held back
        (Announced(A, NOW, 1), 30, G, G),  # better once it has passed: the recovery is told
        (Announced(R, NOW, 1), 10, A, None),
        (Announced(R, NOW, 1), 45, A, A),
        (Announced(R, NOW, 1), 45, R, None),
    ],
)
def test_when_a_crossing_is_announced(
    announced: Announced, minutes_ago: int | None, now_status: StockStatus, expected: StockStatus | None
) -> None:
    if minutes_ago is not None:
        announced = Announced(announced.status, NOW - timedelta(minutes=minutes_ago), announced.version)
    assert crossing(at_status(now_status), announced, NOW, QUIET) is expected  # type: ignore[arg-type]


def alert(site: str = "site-north", group: BloodGroup = BloodGroup.O_NEG) -> ShortageAlert:
    return ShortageAlert("a1", site, group, Component.RED_CELLS, R, G, 0, 4, None, NOW)


@pytest.mark.parametrize(
    ("wanted", "matches"),
    [
        (AlertFilter(), True),
        (AlertFilter(site_id="site-north"), True),
        (AlertFilter(site_id="site-south"), False),
        (AlertFilter(blood_group=BloodGroup.O_NEG, component=Component.RED_CELLS), True),
        (AlertFilter(blood_group=BloodGroup.O_POS), False),
        (AlertFilter(component=Component.PLASMA), False),
    ],
)
def test_filters(wanted: AlertFilter, matches: bool) -> None:
    assert wanted.matches(alert()) is matches


def set_par_four(world: World) -> None:
    """An admin sets site-north's O_NEG red cells to a par level of 4."""
    world.container.inventory.set_threshold(
        ADMIN,
        {
            "site_id": "site-north",
            "blood_group": BloodGroup.O_NEG,
            "component": Component.RED_CELLS,
            "par_level": 4,
        },
    )


def put(world: World, n: int) -> list[BloodUnit]:
    units = [
        BloodUnit(
            id=f"W123426{n:02d}{k:04d}-RC",
            din=f"W123426{n:02d}{k:04d}",
            component=Component.RED_CELLS,
            blood_group=BloodGroup.O_NEG,
            status=UnitStatus.AVAILABLE,
            site_id="site-north",
            donor_id="d",
            collected_at=world.clock() - timedelta(days=1),
            expires_at=world.clock() + timedelta(days=20),
        )
        for k in range(n)
    ]
    world.inventory.add_units(units)
    return units


def test_a_level_flapping_across_its_par_level_raises_one_alert_and_later_its_recovery(world: World) -> None:
    inventory = world.container.inventory
    units = put(world, 4)
    set_par_four(world)
    assert world.alerts.published == []  # 4 on the shelf, par 4: GREEN
    inventory.discard(STAFF, {"unit_id": units[0].id, "reason": _damaged()})  # 3 < 4: AMBER
    [first] = world.alerts.published
    assert (first.status, first.previous_status, first.available, first.threshold) == (A, G, 3, 4)
    for _ in range(3):  # back and forth within the quiet period: nothing more
        extra = put(world, 1)[0]  # 4 again: GREEN, held back
        inventory.discard(STAFF, {"unit_id": extra.id, "reason": _damaged()})  # 3: AMBER, as announced
    assert len(world.alerts.published) == 1
    put(world, 2)  # 5 on the shelf: GREEN, but still within the quiet period
    world.clock.advance(minutes=31)
    inventory.expire_due()  # the sweep re-evaluates every level: the recovery is told now
    assert [(a.status, a.previous_status) for a in world.alerts.published] == [(A, G), (G, A)]
    listed = world.container.alerts.list(STAFF, "site-north", None, None).items
    assert [a.status for a in listed] == [G, A]  # newest first


def test_running_out_is_told_at_once_even_within_the_quiet_period(world: World) -> None:
    inventory = world.container.inventory
    units = put(world, 3)
    set_par_four(world)
    assert [a.status for a in world.alerts.published] == [A]
    for u in units:
        inventory.discard(STAFF, {"unit_id": u.id, "reason": _damaged()})
    assert [a.status for a in world.alerts.published] == [A, R]


def test_an_alert_that_cannot_be_published_is_still_recorded_and_the_change_stands(world: World) -> None:
    class Down:
        def publish(self, alert: ShortageAlert) -> None:
            raise ConnectionError("topic down")

    world.container.alerts.publisher = Down()
    [unit] = put(world, 1)
    inventory = world.container.inventory
    inventory.set_threshold(
        ADMIN,
        {
            "site_id": "site-north",
            "blood_group": BloodGroup.O_NEG,
            "component": Component.RED_CELLS,
            "par_level": 1,
        },
    )
    discarded = inventory.discard(STAFF, {"unit_id": unit.id, "reason": _damaged()})
    assert discarded.status is UnitStatus.DISCARDED
    assert [a.status for a in world.inventory.alert_list] == [R]


def test_only_staff_and_hospitals_hear_of_shortages(world: World) -> None:
    from bloodbank.errors import Forbidden

    donor = Identity("donor-1", "d", frozenset({Group.DONORS}), "access")
    with pytest.raises(Forbidden):
        world.container.alerts.list(donor, None, None, None)
    with pytest.raises(Forbidden):
        world.container.alerts.subscribe(donor, AlertFilter())


def _damaged() -> object:
    from bloodbank.domain.inventory import WastageReason

    return WastageReason.DAMAGED
