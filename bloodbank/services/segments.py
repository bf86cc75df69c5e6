"""Donor segments as a campaign audience: donors who agreed to e-mail appeals, of some blood groups,
of a site, and (if asked) only those who may give now.

Read a page at a time through ``DonorRepository.list`` with the site and one group pinned (the donor
index, no Scan), group after group; the page token says which group and where in it. Donors without
consent, with e-mail turned off or appeals turned off are left out of the page (never mailed).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

from bloodbank.domain.appeals import facts_of
from bloodbank.domain.blood import BloodGroup
from bloodbank.domain.campaigns import SegmentAudience
from bloodbank.domain.donors import Donor
from bloodbank.domain.eligibility import RULE_SETS, assess_all
from bloodbank.domain.filters import AllOf, Cond, Expr
from bloodbank.domain.notifications import Channel, NotificationKind
from bloodbank.domain.recipients import normalize
from bloodbank.ports import Clock, DirectoryRepository, DonorRepository

Member = tuple[str, Mapping[str, str]]  # (normalized address, template values)


def wants_email_appeals(donor: Donor) -> bool:
    p = donor.preferences
    return p.consented_at is not None and Channel.EMAIL in p.channels and NotificationKind.APPEAL in p.kinds


@dataclass
class DonorSegments:
    donors: DonorRepository
    directory: DirectoryRepository
    clock: Clock

    def __call__(
        self, segment: SegmentAudience, token: str | None, limit: int
    ) -> tuple[list[Member], str | None]:
        groups: list[BloodGroup | None] = [None]
        if segment.blood_groups:
            groups = [BloodGroup(g) for g in sorted(segment.blood_groups)]
        index, inner = _position(token)
        sites = {s.id: s for s in self.directory.sites()}
        now = self.clock()
        while index < len(groups):
            page = self.donors.list(_where(segment.site_id, groups[index]), limit, inner)
            members: list[Member] = []
            for donor in page.items:
                if not wants_email_appeals(donor):
                    continue
                site = sites.get(donor.site_id or "")
                if segment.eligible_now:
                    if site is None:
                        continue
                    verdicts = assess_all(RULE_SETS[site.jurisdiction], facts_of(donor), now)
                    if not any(v.eligible for v in verdicts):
                        continue
                try:
                    email = normalize(donor.email)
                except ValueError:  # InvalidAddress
                    continue  # an address the validator refuses now: not mailed
                values = {
                    "first_name": donor.first_name,
                    "last_name": donor.last_name,
                    "site_name": site.name if site else "",
                    "email": email,
                }
                members.append((email, values))
            if page.next_token is not None:
                return members, json.dumps({"g": index, "t": page.next_token})
            index += 1
            if index < len(groups):
                return members, json.dumps({"g": index, "t": None})
            return members, None
        return [], None


def _where(site_id: str | None, group: BloodGroup | None) -> Expr | None:
    conditions = [Cond("site_id", "eq", site_id)] if site_id else []
    if group is not None:
        conditions.append(Cond("blood_group", "eq", group))
    if not conditions:
        return None
    return conditions[0] if len(conditions) == 1 else AllOf(tuple(conditions))


def _position(token: str | None) -> tuple[int, str | None]:
    if token is None:
        return 0, None
    value = json.loads(token)
    return int(value["g"]), value["t"]
