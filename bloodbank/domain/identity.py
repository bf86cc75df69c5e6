"""Who is calling: the AppSync-style identity built from a verified Cognito token."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Group(StrEnum):
    """Cognito groups; their values are the group names in the user pool."""

    ADMINS = "Admins"
    STAFF = "Staff"
    DONORS = "Donors"
    HOSPITALS = "Hospitals"


STAFF_GROUPS = frozenset({Group.ADMINS, Group.STAFF})


@dataclass(frozen=True, slots=True)
class Identity:
    sub: str
    username: str
    groups: frozenset[Group]
    token_use: str
    claims: Mapping[str, Any] = field(default_factory=dict, repr=False)
    hospital_id: str | None = None

    def in_any(self, groups: frozenset[Group]) -> bool:
        return not self.groups.isdisjoint(groups)

    @property
    def is_staff(self) -> bool:
        """Admins and Staff: blood service employees, who see every donor."""
        return self.in_any(STAFF_GROUPS)

    @property
    def is_donor(self) -> bool:
        return Group.DONORS in self.groups

    @property
    def is_hospital(self) -> bool:
        return Group.HOSPITALS in self.groups

    def may_see_donor(self, donor_id: str) -> bool:
        """Staff see every donor's record; a donor only their own (their id is their ``sub``)."""
        return self.is_staff or (self.is_donor and donor_id == self.sub)


def parse_groups(raw: object) -> frozenset[Group]:
    """Known groups from a ``cognito:groups`` claim; unknown names are ignored."""
    if not isinstance(raw, list | tuple):
        return frozenset()
    known = {g.value: g for g in Group}
    return frozenset(known[name] for name in raw if isinstance(name, str) and name in known)
