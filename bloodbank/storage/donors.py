"""Donor records in the single table (see ACCESS_PATTERNS.md)."""

from __future__ import annotations

import dataclasses
import functools
import json
import operator
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from pynamodb.exceptions import DoesNotExist, PutError
from pynamodb.expressions.condition import Condition

from bloodbank.cursor import CursorCodec
from bloodbank.domain.blood import BloodGroup
from bloodbank.domain.donations import DonationType
from bloodbank.domain.donors import Address, Donor, Personal
from bloodbank.domain.eligibility import Deferral, DeferralReason, PastDonation, Sex
from bloodbank.domain.filters import AllOf, AnyOf, Expr, Not, canonical, plain
from bloodbank.domain.lazy import Lazy
from bloodbank.domain.notifications import Channel, NotificationKind, NotificationPreferences
from bloodbank.errors import BadUserInput, Conflict, FieldProblem
from bloodbank.ports import FieldCipher, Page, SealedFields
from bloodbank.storage import keys, transactions
from bloodbank.storage.models import DonorEmailItem, DonorItem, SiteItem, TableBinding, TableItem
from bloodbank.storage.paging import token_page
from bloodbank.storage.planning import FILTER_ATTRIBUTES, plan
from bloodbank.storage.transactions import ConditionsFailed, Transaction, retry_on_transaction_conflict

# A page with a filter reads at most this many items before it returns what it has.


_SEALED = ("date_of_birth", "phone", "address", "weight_kg", "medical_notes", "deferrals")


def _encode_personal(personal: Personal) -> dict[str, str]:
    """The personal fields as text to encrypt; absent values are left out."""
    values: dict[str, str] = {}
    if personal.date_of_birth is not None:
        values["date_of_birth"] = personal.date_of_birth.isoformat()
    if personal.phone is not None:
        values["phone"] = personal.phone
    if personal.address is not None:
        values["address"] = json.dumps(dataclasses.asdict(personal.address), separators=(",", ":"))
    if personal.weight_kg is not None:
        values["weight_kg"] = repr(personal.weight_kg)
    if personal.medical_notes is not None:
        values["medical_notes"] = personal.medical_notes
    if personal.deferrals:
        values["deferrals"] = json.dumps(
            [_deferral_json(d) for d in personal.deferrals], separators=(",", ":")
        )
    return values


def _deferral_json(d: Deferral) -> dict[str, Any]:
    return {
        "id": d.id,
        "reason": d.reason.value,
        "starts_on": d.starts_on.isoformat(),
        "ends_on": d.ends_on.isoformat() if d.ends_on else None,
        "recorded_by": d.recorded_by,
        "recorded_at": d.recorded_at.isoformat(),
        "donation_types": sorted(t.value for t in d.donation_types),
        "note": d.note,
    }


def _deferral(raw: dict[str, Any]) -> Deferral:
    return Deferral(
        id=raw["id"],
        reason=DeferralReason(raw["reason"]),
        starts_on=date.fromisoformat(raw["starts_on"]),
        ends_on=date.fromisoformat(raw["ends_on"]) if raw["ends_on"] else None,
        recorded_by=raw["recorded_by"],
        recorded_at=datetime.fromisoformat(raw["recorded_at"]),
        donation_types=frozenset(DonationType(t) for t in raw["donation_types"]),
        note=raw.get("note"),
    )


def _decode_personal(values: dict[str, str]) -> Personal:
    return Personal(
        date_of_birth=date.fromisoformat(values["date_of_birth"]) if "date_of_birth" in values else None,
        phone=values.get("phone"),
        address=Address(**json.loads(values["address"])) if "address" in values else None,
        weight_kg=float(values["weight_kg"]) if "weight_kg" in values else None,
        medical_notes=values.get("medical_notes"),
        deferrals=tuple(_deferral(d) for d in json.loads(values["deferrals"]))
        if "deferrals" in values
        else (),
    )


def encode_recent(donations: tuple[PastDonation, ...]) -> str | None:
    if not donations:
        return None
    return json.dumps(
        [[d.donation_type.value, d.collected_at.isoformat()] for d in donations], separators=(",", ":")
    )


def _decode_recent(raw: str | None) -> tuple[PastDonation, ...]:
    if not raw:
        return ()
    return tuple(PastDonation(DonationType(t), datetime.fromisoformat(at)) for t, at in json.loads(raw))


def encryption_context(table: str, key: keys.Key) -> dict[str, str]:
    """What a data key is bound to: the table and the item (each field adds its attribute name)."""
    return {"table": table, "pk": key.pk, "sk": key.sk}


def seal_into(item: TableItem, cipher: FieldCipher, table: str, values: dict[str, str]) -> None:
    """Encrypt ``values`` into the item's sealed attributes (nothing is set if KMS fails)."""
    if not values:
        return
    sealed = cipher.seal(encryption_context(table, keys.Key(item.pk, item.sk)), values)
    item.pii_key = sealed.wrapped_key  # type: ignore[attr-defined]
    for name, ciphertext in sealed.fields.items():
        setattr(item, name, ciphertext)


def unsealer(
    item: TableItem, cipher: FieldCipher, table: str, names: tuple[str, ...]
) -> Callable[[], dict[str, str]]:
    """How to decrypt the item's sealed attributes later (only when a personal field is asked for)."""
    wrapped = getattr(item, "pii_key", None)
    fields = {n: getattr(item, n) for n in names if getattr(item, n, None) is not None}
    context = encryption_context(table, keys.Key(item.pk, item.sk))

    def load() -> dict[str, str]:
        if wrapped is None or not fields:
            return {}
        return cipher.unseal(context, SealedFields(wrapped, fields))

    return load


def _to_item(donor: Donor, cipher: FieldCipher, table: str) -> DonorItem:
    prefs = donor.preferences
    item = DonorItem(
        donor_id=donor.id,
        first_name=donor.first_name,
        last_name=donor.last_name,
        email=donor.email,
        blood_group=donor.blood_group.value if donor.blood_group else None,
        site_id=donor.site_id,
        sex=donor.sex.value if donor.sex else None,
        created_at=donor.created_at,
        updated_at=donor.updated_at,
        version=donor.version,
        donation_count=donor.donation_count,
        last_donation_at=donor.last_donation_at,
        recent_donations=encode_recent(donor.recent_donations),
        consented_at=prefs.consented_at,
        channels={c.value for c in prefs.channels} or None,
        notify_kinds={k.value for k in prefs.kinds} or None,
    )
    item.set_key(keys.donor(donor.id))
    sort_name = donor.sort_name
    item.set_index(keys.donor_by_site(donor.site_id, donor.blood_group, sort_name, donor.id))
    item.set_index(keys.donor_by_group(donor.blood_group, sort_name, donor.id))
    item.set_index(keys.all_donors(sort_name, donor.id))
    seal_into(item, cipher, table, _encode_personal(donor.personal))
    return item


def _to_donor(item: DonorItem, cipher: FieldCipher, table: str) -> Donor:
    load = unsealer(item, cipher, table, _SEALED)
    return Donor(
        id=item.donor_id,
        first_name=item.first_name,
        last_name=item.last_name,
        email=item.email,
        blood_group=BloodGroup(item.blood_group) if item.blood_group else None,
        site_id=item.site_id,
        created_at=item.created_at,
        updated_at=item.updated_at,
        version=int(item.version),
        sex=Sex(item.sex) if item.sex else None,
        preferences=NotificationPreferences(
            consented_at=item.consented_at,
            channels=frozenset(Channel(c) for c in item.channels or ()),
            kinds=frozenset(NotificationKind(k) for k in item.notify_kinds or ()),
        ),
        donation_count=int(item.donation_count or 0),
        last_donation_at=item.last_donation_at,
        recent_donations=_decode_recent(item.recent_donations),
        private=Lazy(load=lambda: _decode_personal(load())),
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
    def __init__(self, binding: TableBinding, cursors: CursorCodec, cipher: FieldCipher) -> None:
        self._binding = binding
        self._cursors = cursors
        self._cipher = cipher

    def _item(self, donor: Donor) -> DonorItem:
        return _to_item(donor, self._cipher, self._binding.name)

    def _donor(self, item: DonorItem) -> Donor:
        return _to_donor(item, self._cipher, self._binding.name)

    def get(self, donor_id: str, *, consistent: bool = False) -> Donor | None:
        key = keys.donor(donor_id)
        try:
            return self._donor(DonorItem.get(key.pk, key.sk, consistent_read=consistent))
        except DoesNotExist:
            return None

    @retry_on_transaction_conflict
    def create(self, donor: Donor) -> None:
        tx = Transaction(self._binding.connection())
        tx.check("site", SiteItem, keys.site(donor.site_id), SiteItem.pk.exists())
        tx.put("donor", self._item(donor), DonorItem.pk.does_not_exist())
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
        item = self._item(donor)
        unchanged = DonorItem.version == previous.version
        email_moves = keys.donor_email(donor.email) != keys.donor_email(previous.email)
        if not email_moves and donor.site_id == previous.site_id:
            try:
                transactions.save(item, unchanged)
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
        index = getattr(TableItem, p.index)
        sort_key = getattr(type(index), f"{p.index}sk")
        found, token = token_page(
            self._cursors,
            scope,
            p.index,
            p.partition,
            limit,
            next_token,
            range_condition=sort_key.startswith(p.sort_prefix) if p.sort_prefix else None,
            filter_condition=compile_filter(p.residual) if p.residual else None,
        )
        return Page([self._donor(i) for i in found if isinstance(i, DonorItem)], token)


def _email_taken() -> Conflict:
    return Conflict("Another donor is already registered with this e-mail address")


def _stale() -> Conflict:
    return Conflict("The donor was changed by someone else since you read it; reload it and try again")
