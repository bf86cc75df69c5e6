"""GraphQL types of donations: eligibility, donations, their blood units, and the inputs to record them."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from enum import Enum
from typing import TYPE_CHECKING, Annotated, TypeVar

import strawberry

from bloodbank.domain import donations, eligibility, notifications
from resolvers import donations as donation_resolvers
from resolvers import inventory as inventory_resolvers
from schema.auth import STAFF, allow
from schema.calls import Ctx, call
from schema.enums import BloodGroup, Component

if TYPE_CHECKING:
    from schema.inventory import UnitLedgerEntry

E = TypeVar("E", bound=Enum)


def in_declared_order(members: Iterable[E]) -> list[E]:
    """A set of enum members as a list in the enum's own order, the same on every request."""
    return sorted(members, key=lambda m: list(type(m).__members__.values()).index(m))


DonationType = strawberry.enum(
    donations.DonationType,
    name="DonationType",
    description="How blood is given: whole blood, or by apheresis double red cells, platelets or plasma.",
)
Anticoagulant = strawberry.enum(
    donations.Anticoagulant,
    name="Anticoagulant",
    description="The whole blood bag's anticoagulant-preservative (CPD and CP2D keep 21 days, CPDA1 35).",
)
UnitStatus = strawberry.enum(
    donations.UnitStatus, name="UnitStatus", description="Where a unit is in its life."
)
Sex = strawberry.enum(
    eligibility.Sex, name="Sex", description="Sex as recorded for eligibility rules that differ by it."
)
DeferralReason = strawberry.enum(eligibility.DeferralReason, name="DeferralReason")
NotificationChannel = strawberry.enum(notifications.Channel, name="NotificationChannel")
NotificationKind = strawberry.enum(
    notifications.NotificationKind,
    name="NotificationKind",
    description="Messages a donor can choose to receive.",
)


@strawberry.type(description="Whether the donor may give one type of donation, from when, and why not.")
class Eligibility:
    donation_type: DonationType  # type: ignore[valid-type]
    eligible: bool
    next_eligible_at: datetime | None = strawberry.field(
        description="Now when eligible; when the last obstacle ends; null when no date can be foreseen."
    )
    reasons: list[str] = strawberry.field(
        description="Why not, in words a donor understands; empty when eligible."
    )
    rule_set: str = strawberry.field(description="The version of the rules applied, e.g. US-2026.1.")


@strawberry.type(description="A unit of a blood component, labelled with its donation's ISBT 128 DIN.")
class BloodUnit:
    id: strawberry.ID = strawberry.field(
        description="The DIN, the component and the division: G151726000001X-RC."
    )
    din: str = strawberry.field(
        description="ISBT 128 Donation Identification Number with its check character."
    )
    component: Component  # type: ignore[valid-type]
    blood_group: BloodGroup | None  # type: ignore[valid-type]
    status: UnitStatus  # type: ignore[valid-type]
    site_id: strawberry.ID
    collected_at: datetime
    expires_at: datetime
    request_id: strawberry.ID | None = strawberry.field(
        description="The hospital request it is reserved for or was issued to."
    )
    version: int = strawberry.field(description="Goes up by one with every change of the unit.")

    @strawberry.field(
        description="Every change of the unit, oldest first, from the immutable ledger (staff only).",
        extensions=[allow(*STAFF)],
    )
    def history(self, info: Ctx) -> list[Annotated[UnitLedgerEntry, strawberry.lazy("schema.inventory")]]:
        return call(inventory_resolvers.unit_history, info, source=self)


@strawberry.type(description="One donation: when, where, what type, and the units made from it.")
class Donation:
    din: strawberry.ID = strawberry.field(
        description="ISBT 128 Donation Identification Number (14 characters)."
    )
    donor_id: strawberry.ID
    site_id: strawberry.ID
    donation_type: DonationType  # type: ignore[valid-type]
    collected_at: datetime
    recorded_by: strawberry.ID = strawberry.field(description="The staff member who recorded it.")
    anticoagulant: Anticoagulant | None  # type: ignore[valid-type]

    @strawberry.field(
        description="The pre-donation haemoglobin in g/dL (staff only).", extensions=[allow(*STAFF)]
    )
    def haemoglobin_gdl(self, info: Ctx) -> float | None:
        return self.haemoglobin_g_dl  # type: ignore[attr-defined]

    @strawberry.field(description="The component units made from this donation, with their current status.")
    async def units(self, info: Ctx) -> list[BloodUnit]:
        return await call(donation_resolvers.donation_units, info, source=self)


@strawberry.type(description="One page of donations, newest first.")
class DonationConnection:
    items: list[Donation]
    next_token: str | None


@strawberry.type(description="A period in which the donor may not donate (staff only).")
class Deferral:
    id: strawberry.ID
    reason: DeferralReason  # type: ignore[valid-type]
    starts_on: date
    ends_on: date | None = strawberry.field(description="Null for a permanent deferral.")
    permanent: bool
    note: str | None
    recorded_by: strawberry.ID
    recorded_at: datetime

    @strawberry.field(description="The donation types it stops.")
    def donation_types(self) -> list[DonationType]:  # type: ignore[valid-type]
        return in_declared_order(self.donation_types)


@strawberry.type(description="A postal address.")
class Address:
    line1: str
    line2: str | None
    city: str
    region: str | None
    postal_code: str
    country: str = strawberry.field(description="ISO 3166-1 alpha-2 code, e.g. GB.")


@strawberry.type(description="What the donor agreed to be sent, and how.")
class NotificationPreferences:
    consented_at: datetime | None = strawberry.field(
        description="When the donor agreed; null: nothing is sent."
    )

    @strawberry.field
    def channels(self) -> list[NotificationChannel]:  # type: ignore[valid-type]
        return in_declared_order(self.channels)  # type: ignore[arg-type]

    @strawberry.field
    def kinds(self) -> list[NotificationKind]:  # type: ignore[valid-type]
        return in_declared_order(self.kinds)  # type: ignore[arg-type]


# --- inputs ---------------------------------------------------------------------------------------
@strawberry.input(description="Record a donation at the moment it is collected (staff only).")
class RecordDonationInput:
    donor_id: strawberry.ID
    donation_type: DonationType  # type: ignore[valid-type]
    haemoglobin_g_dl: float = strawberry.field(
        name="haemoglobinGdl", description="Measured before donating, in g/dL (UK 135 g/L is 13.5)."
    )
    weight_kg: float | None = strawberry.field(
        default=strawberry.UNSET, description="Measured today; the donor's recorded weight otherwise."
    )
    site_id: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET, description="Where it was collected; the donor's home site otherwise."
    )
    collected_at: datetime | None = strawberry.field(
        default=strawberry.UNSET, description="Default now; up to 72 hours back for late data entry."
    )
    components: list[Component] | None = strawberry.field(  # type: ignore[valid-type]
        default=strawberry.UNSET,
        description=(
            "Units to make. Default: whole blood gives RED_CELLS and PLASMA; double red cells 2 RED_CELLS."
        ),
    )
    anticoagulant: Anticoagulant | None = strawberry.field(  # type: ignore[valid-type]
        default=strawberry.UNSET, description="Required when a unit is kept as WHOLE_BLOOD."
    )


@strawberry.input(description="Stop a donor donating for a while, or permanently (staff only).")
class DeferDonorInput:
    donor_id: strawberry.ID
    reason: DeferralReason  # type: ignore[valid-type]
    starts_on: date | None = strawberry.field(default=strawberry.UNSET, description="Default today.")
    ends_on: date | None = strawberry.field(
        default=strawberry.UNSET, description="The first day they may donate again; leave out when permanent."
    )
    permanent: bool = False
    donation_types: list[DonationType] | None = strawberry.field(  # type: ignore[valid-type]
        default=strawberry.UNSET, description="Default: every type."
    )
    note: str | None = strawberry.field(
        default=strawberry.UNSET, description="For staff; never shown to donors."
    )


@strawberry.input(description="A postal address.")
class AddressInput:
    line1: str
    city: str
    postal_code: str
    country: str = strawberry.field(description="ISO 3166-1 alpha-2 code, e.g. GB.")
    line2: str | None = strawberry.UNSET
    region: str | None = strawberry.UNSET


@strawberry.input(
    description="What the donor agrees to be sent. consent false withdraws consent: nothing is sent."
)
class NotificationPreferencesInput:
    consent: bool
    channels: list[NotificationChannel] = strawberry.field(  # type: ignore[valid-type]
        default_factory=list, description="SMS needs a phone number."
    )
    kinds: list[NotificationKind] | None = strawberry.field(  # type: ignore[valid-type]
        default=strawberry.UNSET, description="Default: every kind."
    )


DonationsLimit = Annotated[int | None, strawberry.argument(description="1-100, default 20.")]
