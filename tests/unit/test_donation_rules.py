"""What a donation yields: components per donation type, shelf lives, unit ids."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bloodbank.domain.blood import BloodGroup, Component
from bloodbank.domain.donations import (
    Anticoagulant,
    DonationType,
    UnitStatus,
    check_components,
    make_units,
    shelf_life,
)
from bloodbank.errors import BadUserInput

AT = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
DIN = "G151726000001X"


@pytest.mark.parametrize(
    ("component", "anticoagulant", "days"),
    [
        (Component.RED_CELLS, None, 42),
        (Component.PLATELETS, None, 5),
        (Component.PLASMA, None, 365),
        (Component.CRYO, None, 365),
        (Component.WHOLE_BLOOD, Anticoagulant.CPD, 21),
        (Component.WHOLE_BLOOD, Anticoagulant.CP2D, 21),
        (Component.WHOLE_BLOOD, Anticoagulant.CPDA1, 35),
    ],
)
def test_shelf_life(component: Component, anticoagulant: Anticoagulant | None, days: int) -> None:
    assert shelf_life(component, anticoagulant) == timedelta(days=days)


def test_whole_blood_needs_its_anticoagulant() -> None:
    with pytest.raises(BadUserInput, match="anticoagulant"):
        shelf_life(Component.WHOLE_BLOOD, None)


def test_units_start_quarantined_and_expire_by_component() -> None:
    units = make_units(
        DIN, "donor-1", "site-north", BloodGroup.O_NEG, [Component.RED_CELLS, Component.PLASMA], AT, None
    )
    assert [(u.id, u.status, u.expires_at - AT) for u in units] == [
        (f"{DIN}-RC", UnitStatus.QUARANTINED, timedelta(days=42)),
        (f"{DIN}-FP", UnitStatus.QUARANTINED, timedelta(days=365)),
    ]
    assert {u.din for u in units} == {DIN}
    assert {u.blood_group for u in units} == {BloodGroup.O_NEG}


def test_split_products_get_divisions() -> None:
    units = make_units(
        DIN, "d", "s", None, list(check_components(DonationType.DOUBLE_RED_CELLS, None)), AT, None
    )
    assert [u.id for u in units] == [f"{DIN}-RC1", f"{DIN}-RC2"]


@pytest.mark.parametrize(
    ("kind", "components", "message"),
    [
        (DonationType.PLATELETS, [Component.RED_CELLS], "cannot give RED_CELLS"),
        (DonationType.WHOLE_BLOOD, [Component.RED_CELLS, Component.RED_CELLS], "at most 1 RED_CELLS"),
        (DonationType.WHOLE_BLOOD, [Component.WHOLE_BLOOD, Component.PLASMA], "cannot also be separated"),
        (DonationType.DOUBLE_RED_CELLS, [Component.PLASMA], "cannot give PLASMA"),
    ],
)
def test_components_must_fit_the_donation_type(
    kind: DonationType, components: list[Component], message: str
) -> None:
    with pytest.raises(BadUserInput, match=message):
        check_components(kind, components)


def test_default_components() -> None:
    assert check_components(DonationType.WHOLE_BLOOD, None) == (Component.RED_CELLS, Component.PLASMA)
    assert check_components(DonationType.PLASMA, []) == (Component.PLASMA,)
