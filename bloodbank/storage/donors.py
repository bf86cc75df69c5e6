"""Donor records in the single table (see ACCESS_PATTERNS.md)."""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable
from typing import Any

from pynamodb.exceptions import DoesNotExist, PutError
from pynamodb.expressions.condition import Condition

from bloodbank.cursor import CursorCodec
from bloodbank.domain.blood import BloodGroup
from bloodbank.domain.donors import Donor
from bloodbank.domain.filters import AllOf, AnyOf, Expr, Not, canonical, plain
from bloodbank.errors import BadUserInput, Conflict, FieldProblem
from bloodbank.ports import Page
from bloodbank.storage import keys
from bloodbank.storage.models import DonorEmailItem, DonorItem, SiteItem, TableBinding, TableItem
from bloodbank.storage.planning import FILTER_ATTRIBUTES, plan
from bloodbank.storage.transactions import ConditionsFailed, Transaction, retry_on_transaction_conflict

# A page with a filter reads at most this many items before it returns what it has.
MAX_EVALUATED_PER_PAGE = 2000


def _to_item(donor: Donor) -> DonorItem:
    item = DonorItem(
        donor_id=donor.id,
        first_name=donor.first_name,
        last_name=donor.last_name,
        email=donor.email,
        phone=donor.phone,
        blood_group=donor.blood_group.value if donor.blood_group else None,
        site_id=donor.site_id,
        created_at=donor.created_at,
        updated_at=donor.updated_at,
        version=donor.version,
    )
    item.set_key(keys.donor(donor.id))
    sort_name = donor.sort_name
    item.set_index(keys.donor_by_site(donor.site_id, donor.blood_group, sort_name, donor.id))
    item.set_index(keys.donor_by_group(donor.blood_group, sort_name, donor.id))
    item.set_index(keys.all_donors(sort_name, donor.id))
    return item


def _to_donor(item: DonorItem) -> Donor:
    return Donor(
        id=item.donor_id,
        first_name=item.first_name,
        last_name=item.last_name,
        email=item.email,
        phone=item.phone,
        blood_group=BloodGroup(item.blood_group) if item.blood_group else None,
        site_id=item.site_id,
        created_at=item.created_at,
        updated_at=item.updated_at,
        version=int(item.version),
    )


def _email_claim(email: str, donor_id: str) -> DonorEmailItem:
    claim = DonorEmailItem(donor_id=donor_id)
    claim.set_key(keys.donor_email(email))
    return claim


def compile_filter(expr: Expr) -> Condition:
    """The DynamoDB filter expression meaning the same as ``filters.evaluate``."""
    if isinstance(expr, AllOf):
        return functools.reduce(operator.and_, (compile_filter(p) for p in expr.parts))
    if isinstance(expr, AnyOf):
        return functools.reduce(operator.or_, (compile_filter(p) for p in expr.parts))
    if isinstance(expr, Not):
        return ~compile_filter(expr.part)  # type: ignore[no-any-return]
    attr = getattr(DonorItem, FILTER_ATTRIBUTES[expr.field])
    value = expr.value
    builders: dict[str, Callable[[], Condition]] = {
        "eq": lambda: attr == plain(value),
        "ne": lambda: attr != plain(value),
        "lt": lambda: attr < plain(value),
        "le": lambda: attr <= plain(value),
        "gt": lambda: attr > plain(value),
        "ge": lambda: attr >= plain(value),
        "beginsWith": lambda: attr.startswith(plain(value)),
        "contains": lambda: attr.contains(plain(value)),
        "between": lambda: attr.between(*(plain(v) for v in value)),  # type: ignore[attr-defined]
    }
    return builders[expr.op]()


class DynamoDonorRepository:
    def __init__(self, binding: TableBinding, cursors: CursorCodec) -> None:
        self._binding = binding
        self._cursors = cursors

    def get(self, donor_id: str, *, consistent: bool = False) -> Donor | None:
        key = keys.donor(donor_id)
        try:
            return _to_donor(DonorItem.get(key.pk, key.sk, consistent_read=consistent))
        except DoesNotExist:
            return None

    @retry_on_transaction_conflict
    def create(self, donor: Donor) -> None:
        tx = Transaction(self._binding.connection())
        tx.check("site", SiteItem, keys.site(donor.site_id), SiteItem.pk.exists())
        tx.put("donor", _to_item(donor), DonorItem.pk.does_not_exist())
        tx.put("email", _email_claim(donor.email, donor.id), DonorEmailItem.pk.does_not_exist())
        try:
            tx.commit()
        except ConditionsFailed as failed:
            if "site" in failed.failed:
                raise BadUserInput.of([FieldProblem("input.siteId", "is not a known site")]) from None
            if "donor" in failed.failed:
                raise Conflict("This donor is already registered") from None
            raise _email_taken() from None

    @retry_on_transaction_conflict
    def update(self, donor: Donor, previous: Donor) -> None:
        item = _to_item(donor)
        unchanged = DonorItem.version == previous.version
        email_moves = keys.donor_email(donor.email) != keys.donor_email(previous.email)
        if not email_moves and donor.site_id == previous.site_id:
            try:
                item.save(condition=unchanged)
            except PutError as exc:
                if exc.cause_response_code == "ConditionalCheckFailedException":
                    raise _stale() from None
                raise
            return
        tx = Transaction(self._binding.connection())
        tx.check("site", SiteItem, keys.site(donor.site_id), SiteItem.pk.exists())
        tx.put("donor", item, unchanged)
        if email_moves:
            tx.delete(
                "old email", _email_claim(previous.email, donor.id), DonorEmailItem.donor_id == donor.id
            )
            tx.put("email", _email_claim(donor.email, donor.id), DonorEmailItem.pk.does_not_exist())
        try:
            tx.commit()
        except ConditionsFailed as failed:
            if failed.failed & {"donor", "old email"}:
                raise _stale() from None
            if "site" in failed.failed:
                raise BadUserInput.of([FieldProblem("input.siteId", "is not a known site")]) from None
            raise _email_taken() from None

    def list(self, where: Expr | None, limit: int, next_token: str | None) -> Page[Donor]:
        p = plan(where)
        scope = f"{p.scope}|{canonical(where)}"
        start = self._cursors.decode(next_token, scope) if next_token else None
        index = getattr(TableItem, p.index)
        sort_key = getattr(type(index), f"{p.index}sk")
        results = index.query(
            p.partition,
            range_key_condition=sort_key.startswith(p.sort_prefix) if p.sort_prefix else None,
            filter_condition=compile_filter(p.residual) if p.residual else None,
            page_size=limit + 1 if p.residual is None else min(1000, max(100, 4 * (limit + 1))),
            last_evaluated_key=start,
        )
        pages = results.page_iter
        found: list[DonorItem] = []
        resume: dict[str, Any] | None = None
        for page in pages:
            for raw in page.get("Items", []):
                if len(found) == limit:
                    last = found[-1]
                    resume = {
                        name: {"S": getattr(last, name)}
                        for name in ("pk", "sk", f"{p.index}pk", f"{p.index}sk")
                    }
                    break
                found.append(TableItem.from_raw_data(raw))  # type: ignore[arg-type]
            if resume is not None or pages.last_evaluated_key is None:
                break
            if pages.total_scanned_count >= MAX_EVALUATED_PER_PAGE:
                resume = pages.last_evaluated_key
                break
        token = self._cursors.encode(resume, scope) if resume else None
        return Page([_to_donor(i) for i in found], token)


def _email_taken() -> Conflict:
    return Conflict("Another donor is already registered with this e-mail address")


def _stale() -> Conflict:
    return Conflict("The donor was changed by someone else since you read it; reload it and try again")
