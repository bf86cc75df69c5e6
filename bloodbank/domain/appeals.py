"""Donor appeals on a shortage: which donors can help, and whether an appeal should go on.

Pure rules, no I/O. ``services.appeals`` reads the donors and sends; this module decides:

- which donor blood groups can replenish a component of a group (``appeal_groups``): red cells,
  whole blood and platelets are replenished by donors of exactly that group (an O_NEG red cell
  shortage needs O_NEG donors, not every group an O_NEG patient could not receive anyway); plasma
  and cryo by donors of the same ABO group, either RhD (plasma carries no red cells to type);
- which donation types make the component (``APPEAL_DONATION_TYPES``), so that a donor eligible
  for one of them within the appeal window is worth asking (``donation_type_within``);
- whether the donor agreed to appeals (``opted_in``);
- whether the shortage the appeal is about is still the level's announced state (``why_stop``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from enum import Enum

from bloodbank.domain.alerts import Announced, ShortageAlert
from bloodbank.domain.blood import BloodGroup, Component
from bloodbank.domain.donations import DonationType
from bloodbank.domain.donors import Donor
from bloodbank.domain.eligibility import DonorFacts, RuleSet, assess
from bloodbank.domain.inventory import StockStatus
from bloodbank.domain.notifications import NotificationKind, NotificationPreferences

DEFAULT_APPEAL_WINDOW = timedelta(days=7)  # eligible now or within this long: worth asking
DEFAULT_APPEAL_PERIOD = timedelta(days=14)  # at most one appeal per donor in any such period

# Components whose donors must be of the very group short; the others need the same ABO only.
_EXACT_GROUP = frozenset({Component.RED_CELLS, Component.WHOLE_BLOOD, Component.PLATELETS})

# The donation types that make each component, preferred first (the first one a donor may give
# within the window is the one the appeal asks for). Cryoprecipitate is made from plasma, whether
# separated from whole blood or collected by apheresis (donations.ALLOWED_COMPONENTS).
APPEAL_DONATION_TYPES: Mapping[Component, tuple[DonationType, ...]] = {
    Component.RED_CELLS: (DonationType.WHOLE_BLOOD, DonationType.DOUBLE_RED_CELLS),
    Component.WHOLE_BLOOD: (DonationType.WHOLE_BLOOD,),
    Component.PLATELETS: (DonationType.PLATELETS,),
    Component.PLASMA: (DonationType.PLASMA, DonationType.WHOLE_BLOOD),
    Component.CRYO: (DonationType.WHOLE_BLOOD, DonationType.PLASMA),
}


def _abo(group: BloodGroup) -> str:
    return group.value.split("_")[0]


def appeal_groups(component: Component, short: BloodGroup) -> tuple[BloodGroup, ...]:
    """Donor groups whose donations replenish ``component`` of group ``short``; ``short`` first."""
    if component in _EXACT_GROUP:
        return (short,)
    return (short, *(g for g in BloodGroup if g is not short and _abo(g) == _abo(short)))


def opted_in(preferences: NotificationPreferences) -> bool:
    """The donor consented, kept appeals on, and chose at least one channel."""
    return (
        preferences.consented_at is not None
        and NotificationKind.APPEAL in preferences.kinds
        and bool(preferences.channels)
    )


def facts_of(donor: Donor) -> DonorFacts:
    """What the eligibility rules need, from the donor record alone (decrypts its personal fields)."""
    return DonorFacts(
        date_of_birth=donor.date_of_birth,
        sex=donor.sex,
        weight_kg=donor.weight_kg,
        deferrals=donor.deferrals,
        history=donor.recent_donations,
        donated_before=donor.donation_count > 0,
    )


def donation_type_within(
    rules: RuleSet, facts: DonorFacts, now: datetime, component: Component, window: timedelta
) -> DonationType | None:
    """The first donation type making ``component`` the donor may give by ``now + window``, or None.

    A donor whose eligibility cannot be foreseen for a type (a permanent deferral, a missing date of
    birth or weight, a type the site does not collect) is never eligible for it.
    """
    until = now + window
    for donation_type in APPEAL_DONATION_TYPES[component]:
        verdict = assess(rules, facts, now, donation_type)
        if verdict.next_eligible_at is not None and verdict.next_eligible_at <= until:
            return donation_type
    return None


class StopReason(Enum):
    COMPLETED = "COMPLETED"  # every compatible donor of the site was considered
    NOT_A_SHORTAGE = "NOT_A_SHORTAGE"  # the alert announces a recovery (GREEN): nobody is asked
    SHORTAGE_ENDED = "SHORTAGE_ENDED"  # the level is GREEN again
    SUPERSEDED = "SUPERSEDED"  # a newer alert of the level was announced: its own appeal goes on
    DEADLINE = "DEADLINE"  # the run was about to run out of time
    UNKNOWN_SITE = "UNKNOWN_SITE"  # the alert names a site the directory does not know


def why_stop(alert: ShortageAlert, announced: Announced) -> StopReason | None:
    """Why an appeal for ``alert`` must not go on, given what the level announces now; None: go on."""
    if not alert.is_shortage:
        return StopReason.NOT_A_SHORTAGE
    if announced.status is StockStatus.GREEN:
        return StopReason.SHORTAGE_ENDED
    if announced.at is not None and announced.at > alert.raised_at:
        return StopReason.SUPERSEDED
    return None
