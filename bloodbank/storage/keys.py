"""Every key string of the single table is spelled here, and only here.

Item keys are ``pk``/``sk``; three overloaded global secondary indexes (``gsi1``..``gsi3``) serve
the list patterns. ``ACCESS_PATTERNS.md`` beside this module lists which pattern uses which key.
Partition keys never contain personal data in clear (an e-mail address is hashed).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from bloodbank.domain.blood import BloodGroup

NO_GROUP = "UNTYPED"  # donors whose blood group the lab has not determined yet


@dataclass(frozen=True, slots=True)
class Key:
    pk: str
    sk: str


@dataclass(frozen=True, slots=True)
class IndexKey:
    index: str
    pk: str
    sk: str


def _group(group: BloodGroup | None) -> str:
    return group.value if group else NO_GROUP


# --- donors -------------------------------------------------------------------------------------
def donor(donor_id: str) -> Key:
    return Key(f"DONOR#{donor_id}", "DONOR")


def donor_email(email: str) -> Key:
    digest = hashlib.sha256(email.casefold().encode()).hexdigest()
    return Key(f"DONOREMAIL#{digest}", "DONOREMAIL")


def donor_by_site(site_id: str, group: BloodGroup | None, sort_name: str, donor_id: str) -> IndexKey:
    return IndexKey("gsi1", f"DONORS#SITE#{site_id}", f"{_group(group)}#{sort_name}#{donor_id}")


def donor_by_site_prefix(
    site_id: str, group: BloodGroup | None = None, name_prefix: str | None = None
) -> tuple[str, str | None]:
    """Partition and sort-key prefix of the site's donors (of one group, and a sort-name prefix, if given)."""
    if group is None:
        return f"DONORS#SITE#{site_id}", None
    return f"DONORS#SITE#{site_id}", f"{_group(group)}#{name_prefix or ''}"


def donor_by_group(group: BloodGroup | None, sort_name: str, donor_id: str) -> IndexKey:
    return IndexKey("gsi2", f"DONORS#GROUP#{_group(group)}", f"{sort_name}#{donor_id}")


def donor_by_group_partition(group: BloodGroup | None) -> str:
    return f"DONORS#GROUP#{_group(group)}"


def all_donors(sort_name: str, donor_id: str) -> IndexKey:
    return IndexKey("gsi3", ALL_DONORS, f"{sort_name}#{donor_id}")


ALL_DONORS = "DONORS"


# --- directory: sites, hospitals, hospital users ------------------------------------------------
def site(site_id: str) -> Key:
    return Key(f"SITE#{site_id}", "SITE")


def all_sites(name: str, site_id: str) -> IndexKey:
    return IndexKey("gsi3", ALL_SITES, f"{name}#{site_id}")


ALL_SITES = "SITES"


def hospital(hospital_id: str) -> Key:
    return Key(f"HOSPITAL#{hospital_id}", "HOSPITAL")


def all_hospitals(name: str, hospital_id: str) -> IndexKey:
    return IndexKey("gsi3", ALL_HOSPITALS, f"{name}#{hospital_id}")


ALL_HOSPITALS = "HOSPITALS"


def hospital_membership(user_sub: str) -> Key:
    return Key(f"USER#{user_sub}", "HOSPITAL_MEMBER")
