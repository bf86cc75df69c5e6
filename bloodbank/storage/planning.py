"""How a donor list query is served: which index, which key condition, what is left to filter.

Pure (no database calls), so the in-memory fake orders and pages exactly as the table does.
"""

from __future__ import annotations

from dataclasses import dataclass

from bloodbank.domain import text
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


def _name_prefix(where: Expr | None) -> str | None:
    """A sort-name prefix every match must have, from a top-level lastName ``eq``/``beginsWith``.

    Sort names are case- and accent-folded, so this narrows the read to a superset of the matches;
    the condition stays in the filter, which keeps the exact (case-sensitive) meaning.
    """
    parts = where.parts if isinstance(where, AllOf) else (where,) if where is not None else ()
    for part in parts:
        if isinstance(part, Cond) and part.field == "last_name" and isinstance(part.value, str):
            folded = text.sort_form(part.value)
            if folded and part.op == "eq":
                return folded + " "
            if folded and part.op == "beginsWith" and not part.value[-1:].isspace():
                return folded
    return None


def plan(where: Expr | None) -> Plan:
    """Serve ``site``/``bloodGroup`` equalities (and a family-name prefix) from an index; filter the rest."""
    pinned = equalities(where)
    site, group = pinned.get("site_id"), pinned.get("blood_group")
    name = _name_prefix(where)
    used: dict[str, object] = {}
    if isinstance(site, str):
        group_arg = group if isinstance(group, BloodGroup) else None
        partition, prefix = keys.donor_by_site_prefix(site, group_arg, name)
        index = "gsi1"
        used = {"site_id": site, "blood_group": group_arg} if group_arg else {"site_id": site}
    elif isinstance(group, BloodGroup):
        index, partition, prefix = "gsi2", keys.donor_by_group_partition(group), name
        used = {"blood_group": group}
    else:
        index, partition, prefix = "gsi3", keys.ALL_DONORS, name

    def served(e: Expr) -> bool:
        return isinstance(e, Cond) and e.op == "eq" and e.field in used and used[e.field] == e.value

    residual: Expr | None
    if where is None or served(where):
        residual = None
    elif isinstance(where, AllOf):
        rest = tuple(p for p in where.parts if not served(p))
        residual = None if not rest else rest[0] if len(rest) == 1 else AllOf(rest)
    else:
        residual = where
    return Plan(index, partition, prefix, residual)
