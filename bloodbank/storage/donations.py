"""Donations, their blood units, DIN sequence numbers and "eligible again" reminders (ACCESS_PATTERNS.md)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any, cast

from pynamodb.exceptions import UpdateError

from bloodbank.cursor import CursorCodec
from bloodbank.domain.donations import (
    Anticoagulant,
    BloodUnit,
    Donation,
    DonationType,
    Reminder,
)
from bloodbank.domain.donors import Donor
from bloodbank.domain.isbt import MAX_SEQUENCE
from bloodbank.domain.lazy import Lazy
from bloodbank.errors import BadUserInput, Conflict, DependencyUnavailable, FieldProblem
from bloodbank.ports import FieldCipher, Page
from bloodbank.storage import keys
from bloodbank.storage.donors import encode_recent, seal_into, unsealer
from bloodbank.storage.inventory import get_units, unit_item
from bloodbank.storage.models import (
    DinSequenceItem,
    DonationItem,
    DonorItem,
    ReminderItem,
    SiteItem,
    TableBinding,
    UnitItem,
)
from bloodbank.storage.transactions import ConditionsFailed, Transaction, retry_on_transaction_conflict


class DynamoDonations:
    """Implements DinSequences, DonationRepository, UnitRepository and Reminders over the table."""

    def __init__(self, binding: TableBinding, cursors: CursorCodec, cipher: FieldCipher) -> None:
        self._binding = binding
        self._cursors = cursors
        self._cipher = cipher

    # --- DinSequences ---------------------------------------------------------------------------
    def next(self, facility_code: str, year: int) -> int:
        """An atomic counter (UpdateItem ADD): no two callers ever get the same number."""
        key = keys.din_sequence(facility_code, year)
        counter = DinSequenceItem()
        counter.set_key(key)
        try:
            counter.update(
                actions=[DinSequenceItem.last.add(1)],
                condition=DinSequenceItem.last.does_not_exist() | (DinSequenceItem.last < MAX_SEQUENCE),
            )
        except UpdateError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                raise Conflict(
                    f"Facility {facility_code} has used every donation number for this year"
                ) from None
            raise
        return int(counter.last)

    # --- DonationRepository ---------------------------------------------------------------------
    def _donation_item(self, donation: Donation) -> DonationItem:
        item = DonationItem(
            din=donation.din,
            donor_id=donation.donor_id,
            site_id=donation.site_id,
            donation_type=donation.donation_type.value,
            collected_at=donation.collected_at,
            recorded_by=donation.recorded_by,
            unit_ids=list(donation.unit_ids),
            anticoagulant=donation.anticoagulant.value if donation.anticoagulant else None,
        )
        item.set_key(keys.donation(donation.donor_id, donation.collected_at, donation.din))
        item.set_index(keys.donation_by_din(donation.din))
        haemoglobin = donation.haemoglobin_g_dl
        if haemoglobin is not None:
            seal_into(item, self._cipher, self._binding.name, {"haemoglobin_g_dl": repr(haemoglobin)})
        return item

    def _donation(self, item: DonationItem) -> Donation:
        load = unsealer(item, self._cipher, self._binding.name, ("haemoglobin_g_dl",))

        def haemoglobin() -> float | None:
            value = load().get("haemoglobin_g_dl")
            return float(value) if value is not None else None

        return Donation(
            din=item.din,
            donor_id=item.donor_id,
            site_id=item.site_id,
            donation_type=DonationType(item.donation_type),
            collected_at=item.collected_at,
            recorded_by=item.recorded_by,
            unit_ids=tuple(str(u) for u in item.unit_ids or ()),
            anticoagulant=Anticoagulant(item.anticoagulant) if item.anticoagulant else None,
            haemoglobin=Lazy(load=haemoglobin),
        )

    @retry_on_transaction_conflict
    def record(
        self,
        donation: Donation,
        units: Sequence[BloodUnit],
        donor: Donor,
        previous: Donor,
        reminder: Reminder | None,
    ) -> None:
        donation_item = self._donation_item(donation)  # encrypts first: if KMS fails, nothing is sent
        tx = Transaction(self._binding.connection())
        tx.check("site", SiteItem, keys.site(donation.site_id), SiteItem.pk.exists())
        tx.put("donation", donation_item, DonationItem.pk.does_not_exist())
        for unit in units:
            tx.put(f"unit {unit.id}", unit_item(unit), UnitItem.pk.does_not_exist())
        donor_item = DonorItem()
        donor_item.set_key(keys.donor(donor.id))
        tx.update(
            "donor",
            donor_item,
            [
                DonorItem.version.set(donor.version),
                DonorItem.donation_count.set(donor.donation_count),
                DonorItem.last_donation_at.set(donation.collected_at),
                DonorItem.recent_donations.set(encode_recent(donor.recent_donations) or "[]"),
                DonorItem.updated_at.set(donor.updated_at),
            ],
            condition=DonorItem.version == previous.version,
        )
        if reminder is not None:
            item = ReminderItem(
                donor_id=reminder.donor_id,
                din=reminder.din,
                donation_type=reminder.donation_type.value,
                due_at=reminder.due_at,
            )
            item.set_key(keys.reminder(reminder.due_at.date(), reminder.donor_id, reminder.din))
            tx.put("reminder", item)
        try:
            tx.commit()
        except ConditionsFailed as failed:
            if "site" in failed.failed:
                raise BadUserInput.of([FieldProblem("input.siteId", "is not a known site")]) from None
            if "donor" in failed.failed:
                raise Conflict(
                    "The donor's record changed while the donation was being recorded; try again"
                ) from None
            # A DIN or unit number already taken would mean the sequence repeated: never expected.
            raise DependencyUnavailable(f"donation identifiers collided: {sorted(failed.failed)}") from None

    def page(self, donor_id: str, limit: int, next_token: str | None) -> Page[Donation]:
        scope = f"donations|{donor_id}"
        start = self._cursors.decode(next_token, scope) if next_token else None
        pk = keys.donor(donor_id).pk
        position_type = dict[str, dict[str, Any]]
        results = DonationItem.query(
            pk,
            DonationItem.sk.startswith(keys.DONATION_PREFIX),
            scan_index_forward=False,
            limit=limit + 1,
            page_size=limit + 1,
            last_evaluated_key=cast(position_type, start),
        )
        found = list(results)
        token = None
        if len(found) > limit:
            found = found[:limit]
            last = found[-1]
            position: dict[str, Any] = {"pk": {"S": last.pk}, "sk": {"S": last.sk}}
            token = self._cursors.encode(position, scope)
        return Page([self._donation(i) for i in found], token)

    # --- UnitRepository -------------------------------------------------------------------------
    def get_many(self, unit_ids: Sequence[str]) -> list[BloodUnit]:
        return get_units(unit_ids)

    # --- Reminders ------------------------------------------------------------------------------
    def due(self, day: date) -> list[Reminder]:
        return [
            Reminder(i.donor_id, i.din, DonationType(i.donation_type), i.due_at)
            for i in ReminderItem.query(keys.reminders_due(day))
        ]

    def done(self, reminder: Reminder) -> None:
        item = ReminderItem()
        item.set_key(keys.reminder(reminder.due_at.date(), reminder.donor_id, reminder.din))
        item.delete()
