"""How a donor list query is served: which index, which key condition, what is left to filter.

Pure (no database calls), so the in-memory fake orders and pages exactly as the table does.
"""

from __future__ import annotations

from dataclasses import dataclass

from bloodbank.domain.blood import BloodGroup
from bloodbank.domain.filters import AllOf, Cond, Expr, equalities
from bloodbank.storage import keys

# Filterable donor fields and the item attribute each one is stored in.
FILTER_ATTRIBUTES = {
    "id": "donor_id",
    "first_name": "first_name",
    "last_name": "last_name",
    "email": "email",
    "blood_group": "blood_group",
    "site_id": "site_id",
}


@dataclass(frozen=True)
class Plan:
    """Which index a list query reads, with what key condition, and what is left to filter."""

    index: str
    partition: str
    sort_prefix: str | None
    residual: Expr | None

    @property
    def scope(self) -> str:
        return f"donors|{self.index}|{self.partition}|{self.sort_prefix or ''}"


def plan(where: Expr | None) -> Plan:
    """Serve ``site``/``bloodGroup`` equalities from an index; filter the rest."""
    pinned = equalities(where)
    site, group = pinned.get("site_id"), pinned.get("blood_group")
    used: set[str] = set()
    if isinstance(site, str):
        group_arg = group if isinstance(group, BloodGroup) else None
        partition, prefix = keys.donor_by_site_prefix(site, group_arg)
        index = "gsi1"
        used = {"site_id", "blood_group"} if group_arg else {"site_id"}
    elif isinstance(group, BloodGroup):
        index, partition, prefix = "gsi2", keys.donor_by_group_partition(group), None
        used = {"blood_group"}
    else:
        index, partition, prefix = "gsi3", keys.ALL_DONORS, None

    def served(e: Expr) -> bool:
        return isinstance(e, Cond) and e.op == "eq" and e.field in used

    residual: Expr | None
    if where is None or served(where):
        residual = None
    elif isinstance(where, AllOf):
        rest = tuple(p for p in where.parts if not served(p))
        residual = None if not rest else rest[0] if len(rest) == 1 else AllOf(rest)
    else:
        residual = where
    return Plan(index, partition, prefix, residual)
