"""Demo data for the local stack: sites, hospitals, donors of every blood group, one user per role.

Idempotent: ids are derived from names, existing records are left alone, so ``bloodbank seed``
can run any number of times against a running stack.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from bloodbank.domain import donors as donor_rules
from bloodbank.domain import employees as employee_rules
from bloodbank.domain.blood import BloodGroup, Component, Jurisdiction
from bloodbank.domain.eligibility import Sex
from bloodbank.domain.identity import Group
from bloodbank.domain.notifications import Channel, NotificationKind
from bloodbank.domain.organisations import Hospital, Site
from bloodbank.errors import Conflict
from bloodbank.ports import DonorRepository, EmployeeRepository

if TYPE_CHECKING:
    from bloodbank.domain.donations import BloodUnit

DEMO_PASSWORD = "Demo-Passw0rd!"
_NAMESPACE = uuid.UUID("6f1c2a8e-5b7d-4c3a-9e1f-0b2d4c6e8a10")

SITES = (
    Site("site-north", "Northgate Blood Centre", Jurisdiction.US, "W1234", "America/Chicago"),
    Site("site-south", "Southbank Donor Centre", Jurisdiction.US, "W1235", "America/Chicago"),
    Site("site-london", "London Bridge Donor Centre", Jurisdiction.UK, "G1517", "Europe/London"),
)
HOSPITALS = (
    Hospital("hosp-st-mary", "St Mary's General Hospital", "site-north"),
    Hospital("hosp-riverside", "Riverside Children's Hospital", "site-south"),
    Hospital("hosp-kings", "King's Royal Infirmary", "site-london"),
)


@dataclass(frozen=True)
class DemoUser:
    role: str
    email: str
    group: Group
    hospital_id: str | None = None


DEMO_USERS = (
    DemoUser("admin", "admin@example.org", Group.ADMINS),
    DemoUser("staff", "staff@example.org", Group.STAFF),
    DemoUser("donor", "donor@example.org", Group.DONORS),
    DemoUser("hospital", "hospital@example.org", Group.HOSPITALS, "hosp-st-mary"),
)

_FIRST = ("Amara", "Ben", "Chloé", "Dev", "Elif", "Femi", "Grace", "Hiro", "Ines", "Jonas", "Kofi", "Lena")
_LAST = (
    "Okafor",
    "Lindqvist",
    "Moreau",
    "Patel",
    "Yılmaz",  # noqa: RUF001 - a Turkish name, dotless i intended
    "Adeyemi",
    "O'Neill",
    "Tanaka",
    "García",
    "Weber",
)


def demo_donors() -> list[tuple[str, dict[str, object]]]:
    """Three donors of each blood group spread over the sites: (id, registration fields)."""
    donors = []
    for n, group in enumerate(list(BloodGroup) * 3):
        first, last = _FIRST[n % len(_FIRST)], _LAST[(n * 7) % len(_LAST)]
        email = f"{first.lower().replace('é', 'e')}.{n:02d}@example.org"
        fields: dict[str, object] = {
            "first_name": first,
            "last_name": last,
            "email": email,
            "phone": f"+1312555{n:04d}",
            "blood_group": group,
            "site_id": SITES[n % len(SITES)].id,
            "date_of_birth": date(1970 + n, 1 + n % 12, 1 + n % 28),
            "sex": Sex.FEMALE if n % 2 else Sex.MALE,
            "weight_kg": 60.0 + n,
        }
        donors.append((str(uuid.uuid5(_NAMESPACE, email)), fields))
    return donors


def seed_donor(repository: DonorRepository, donor_id: str, fields: dict[str, object], now: datetime) -> bool:
    """Register one donor through the registry's own validation; False if already there."""
    details = donor_rules.validate_new(fields)
    try:
        repository.create(donor_rules.new_donor(donor_id, details, now))
    except Conflict:
        return False
    return True


# The demo staff and admin users' own profiles, approved (role -> profile fields).
DEMO_EMPLOYEES: dict[str, dict[str, object]] = {
    "admin": {
        "email": "admin@example.org",
        "first_name": "Amara",
        "last_name": "Nwosu",
        "job_title": "Operations manager",
        "department": "Operations",
        "role": employee_rules.EmployeeRole.MANAGER,
    },
    "staff": {
        "email": "staff@example.org",
        "first_name": "Sam",
        "last_name": "Okafor",
        "job_title": "Donor care nurse",
        "department": "Collections",
        "role": employee_rules.EmployeeRole.NURSE,
    },
}


def seed_employee(repository: EmployeeRepository, sub: str, fields: dict[str, object], now: datetime) -> bool:
    """An ACTIVE profile for a demo user (approved by themself); False if already there."""
    cleaned = employee_rules.validate_new(fields)
    try:
        repository.create(employee_rules.new_employee(sub, cleaned, now, sub, approved=True))
    except Conflict:
        return False
    return True


def demo_donor_fields() -> dict[str, object]:
    """The record of the demo donor user (its id is the user's ``sub``)."""
    return {
        "first_name": "Dana",
        "last_name": "Donor",
        "email": "donor@example.org",
        "phone": "+13125559999",
        "blood_group": BloodGroup.O_NEG,
        "site_id": "site-north",
        "date_of_birth": date(1988, 4, 12),
        "sex": Sex.FEMALE,
        "weight_kg": 64.0,
        "address": {
            "line1": "12 Lake Shore Drive",
            "city": "Chicago",
            "postal_code": "60611",
            "country": "US",
        },
        "notification_preferences": {
            "consent": True,
            "channels": [Channel.EMAIL, Channel.SMS],
            "kinds": list(NotificationKind),
        },
    }


def now() -> datetime:
    return datetime.now(UTC)


# --- demo stock -----------------------------------------------------------------------------------
# Red cell units on each site's shelves by group: common groups plentiful, O_NEG and the rare groups
# short, so the stock board shows GREEN, AMBER and RED against the par levels below.
DEMO_RED_CELLS = {
    BloodGroup.O_POS: 12,
    BloodGroup.A_POS: 10,
    BloodGroup.B_POS: 5,
    BloodGroup.O_NEG: 3,
    BloodGroup.A_NEG: 3,
    BloodGroup.AB_POS: 2,
    BloodGroup.B_NEG: 1,
    BloodGroup.AB_NEG: 0,
}
DEMO_PAR_LEVELS = {
    BloodGroup.O_POS: 10,
    BloodGroup.A_POS: 8,
    BloodGroup.B_POS: 4,
    BloodGroup.O_NEG: 6,
    BloodGroup.A_NEG: 3,
    BloodGroup.AB_POS: 2,
    BloodGroup.B_NEG: 2,
    BloodGroup.AB_NEG: 1,
}
DEMO_PLATELETS = {BloodGroup.O_POS: 2, BloodGroup.A_POS: 2, BloodGroup.O_NEG: 1}
DEMO_PLASMA = {BloodGroup.AB_POS: 2, BloodGroup.A_POS: 3, BloodGroup.O_POS: 4}
_DEMO_SEQUENCE = 900_000  # demo DINs use sequence numbers 900001 and up, far above real ones


def demo_units(at: datetime) -> list[BloodUnit]:
    """Quarantined units with fixed DINs (so seeding twice adds nothing), one unit a donation,
    expiring at staggered times so first-expiry-first-out has something to choose from."""
    from bloodbank.domain.donations import SHELF_LIFE_DAYS, make_units
    from bloodbank.domain.isbt import make_din

    units: list[BloodUnit] = []
    n = 0
    for site in SITES:
        stock = [(Component.RED_CELLS, DEMO_RED_CELLS)]
        if site.id == "site-north":
            stock += [(Component.PLATELETS, DEMO_PLATELETS), (Component.PLASMA, DEMO_PLASMA)]
        for component, counts in stock:
            for group, count in counts.items():
                for k in range(count):
                    n += 1
                    din = make_din(site.facility_code, at.year, _DEMO_SEQUENCE + n)
                    life = timedelta(days=SHELF_LIFE_DAYS[component])
                    collected = at - life / 2 + timedelta(hours=7 * k)  # half way through its life
                    units += make_units(din, "demo-stock", site.id, group, [component], collected, None)
    return units
