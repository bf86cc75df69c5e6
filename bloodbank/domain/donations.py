"""Donations and the component units made from them: what each donation type yields, and shelf lives."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum

from bloodbank.domain.blood import BloodGroup, Component
from bloodbank.domain.lazy import Lazy
from bloodbank.errors import BadUserInput, FieldProblem


class DonationType(Enum):
    WHOLE_BLOOD = "WHOLE_BLOOD"
    DOUBLE_RED_CELLS = "DOUBLE_RED_CELLS"  # two units of red cells by apheresis ("Power Red")
    PLATELETS = "PLATELETS"  # apheresis
    PLASMA = "PLASMA"  # apheresis

    @property
    def label(self) -> str:
        return self.value.replace("_", " ").lower()


class Anticoagulant(Enum):
    """The collection bag's anticoagulant-preservative; it sets how long whole blood keeps."""

    CPD = "CPD"
    CP2D = "CP2D"
    CPDA1 = "CPDA1"


class UnitStatus(Enum):
    QUARANTINED = "QUARANTINED"
    AVAILABLE = "AVAILABLE"
    RESERVED = "RESERVED"
    ISSUED = "ISSUED"
    TRANSFUSED = "TRANSFUSED"
    DISCARDED = "DISCARDED"
    EXPIRED = "EXPIRED"


# Storage life from collection (AABB Standards / Council of Europe Guide; whole blood by bag solution).
SHELF_LIFE_DAYS = {
    Component.RED_CELLS: 42,  # in additive solution
    Component.PLATELETS: 5,
    Component.PLASMA: 365,  # frozen at -18 C or colder
    Component.CRYO: 365,
}
WHOLE_BLOOD_SHELF_LIFE_DAYS = {Anticoagulant.CPD: 21, Anticoagulant.CP2D: 21, Anticoagulant.CPDA1: 35}

# What each donation type can be processed into, and what it gives when staff do not say.
ALLOWED_COMPONENTS: dict[DonationType, frozenset[Component]] = {
    DonationType.WHOLE_BLOOD: frozenset(
        {Component.WHOLE_BLOOD, Component.RED_CELLS, Component.PLASMA, Component.PLATELETS, Component.CRYO}
    ),
    DonationType.DOUBLE_RED_CELLS: frozenset({Component.RED_CELLS}),
    DonationType.PLATELETS: frozenset({Component.PLATELETS, Component.PLASMA}),
    DonationType.PLASMA: frozenset({Component.PLASMA, Component.CRYO}),
}
DEFAULT_COMPONENTS: dict[DonationType, tuple[Component, ...]] = {
    DonationType.WHOLE_BLOOD: (Component.RED_CELLS, Component.PLASMA),
    DonationType.DOUBLE_RED_CELLS: (Component.RED_CELLS, Component.RED_CELLS),
    DonationType.PLATELETS: (Component.PLATELETS,),
    DonationType.PLASMA: (Component.PLASMA,),
}
# At most this many units of one component from one donation (double red cells give two;
# an apheresis platelet collection can be split into up to three adult doses).
MAX_UNITS = {
    DonationType.WHOLE_BLOOD: 1,
    DonationType.DOUBLE_RED_CELLS: 2,
    DonationType.PLATELETS: 3,
    DonationType.PLASMA: 3,
}
_WHOLE_BLOOD_EXCLUDES = frozenset(ALLOWED_COMPONENTS[DonationType.WHOLE_BLOOD] - {Component.WHOLE_BLOOD})


@dataclass(frozen=True, slots=True)
class BloodUnit:
    id: str  # the DIN plus the component and, for split products, the division: G151726000001X-RC2
    din: str
    component: Component
    blood_group: BloodGroup | None  # None until the lab has typed the donation
    status: UnitStatus
    site_id: str
    donor_id: str
    collected_at: datetime
    expires_at: datetime
    version: int = 1
    request_id: str | None = None  # the hospital request it is reserved for or was issued to


@dataclass(frozen=True, slots=True)
class Donation:
    din: str
    donor_id: str
    site_id: str
    donation_type: DonationType
    collected_at: datetime
    recorded_by: str
    unit_ids: tuple[str, ...]
    anticoagulant: Anticoagulant | None = None
    # The pre-donation haemoglobin (g/dL): health data, encrypted at rest, decrypted when asked for.
    haemoglobin: Lazy[float | None] = field(default_factory=lambda: Lazy(None))

    @property
    def haemoglobin_g_dl(self) -> float | None:
        return self.haemoglobin.get()


@dataclass(frozen=True, slots=True)
class Reminder:
    """Tell the donor when they may give this type of donation again."""

    donor_id: str
    din: str
    donation_type: DonationType
    due_at: datetime


_CODES = {
    Component.WHOLE_BLOOD: "WB",
    Component.RED_CELLS: "RC",
    Component.PLATELETS: "PLT",
    Component.PLASMA: "FP",
    Component.CRYO: "CRYO",
}


def shelf_life(component: Component, anticoagulant: Anticoagulant | None) -> timedelta:
    if component is Component.WHOLE_BLOOD:
        if anticoagulant is None:
            raise BadUserInput.of(
                [FieldProblem("input.anticoagulant", "is required to keep whole blood (it sets its expiry)")]
            )
        return timedelta(days=WHOLE_BLOOD_SHELF_LIFE_DAYS[anticoagulant])
    return timedelta(days=SHELF_LIFE_DAYS[component])


def check_components(
    donation_type: DonationType, components: Sequence[Component] | None
) -> tuple[Component, ...]:
    """The components to make, validated against the donation type (defaults when none are given)."""
    chosen = tuple(components) if components else DEFAULT_COMPONENTS[donation_type]
    where = "input.components"
    allowed = ALLOWED_COMPONENTS[donation_type]
    wrong = sorted({c.value for c in chosen if c not in allowed})
    if wrong:
        raise BadUserInput.of(
            [FieldProblem(where, f"a {donation_type.label} donation cannot give {', '.join(wrong)}")]
        )
    for component in set(chosen):
        if chosen.count(component) > MAX_UNITS[donation_type]:
            raise BadUserInput.of(
                [
                    FieldProblem(
                        where, f"at most {MAX_UNITS[donation_type]} {component.value} from one donation"
                    )
                ]
            )
    if Component.WHOLE_BLOOD in chosen and not _WHOLE_BLOOD_EXCLUDES.isdisjoint(chosen):
        raise BadUserInput.of([FieldProblem(where, "whole blood kept whole cannot also be separated")])
    return chosen


def make_units(
    din: str,
    donor_id: str,
    site_id: str,
    blood_group: BloodGroup | None,
    components: Sequence[Component],
    collected_at: datetime,
    anticoagulant: Anticoagulant | None,
) -> list[BloodUnit]:
    """One QUARANTINED unit per component, each expiring after its shelf life from collection."""
    units = []
    for component in dict.fromkeys(components):
        count = components.count(component)
        for division in range(1, count + 1):
            suffix = str(division) if count > 1 else ""
            units.append(
                BloodUnit(
                    id=f"{din}-{_CODES[component]}{suffix}",
                    din=din,
                    component=component,
                    blood_group=blood_group,
                    status=UnitStatus.QUARANTINED,
                    site_id=site_id,
                    donor_id=donor_id,
                    collected_at=collected_at,
                    expires_at=collected_at + shelf_life(component, anticoagulant),
                )
            )
    return units
