"""GraphQL types. Objects mirror domain objects field by field, so resolvers return domain objects."""

from __future__ import annotations

from datetime import date, datetime

import strawberry

from resolvers import documents as document_resolvers
from resolvers import donations as donation_resolvers
from schema.auth import STAFF, allow
from schema.calls import Ctx, call
from schema.documents import DonorDocument
from schema.donations import (
    Address,
    AddressInput,
    DonationConnection,
    DonationsLimit,
    Eligibility,
    NotificationPreferences,
    NotificationPreferencesInput,
    Sex,
)
from schema.donations import Deferral as DeferralType
from schema.enums import BloodGroup, Jurisdiction


@strawberry.type(
    description=(
        "A blood donor. Donors see only their own record; hospitals never see donors. Date of birth,"
        " phone, address, weight, medical notes and deferrals are encrypted at rest."
    )
)
class Donor:
    id: strawberry.ID
    first_name: str
    last_name: str
    email: str
    phone: str | None = strawberry.field(description="E.164, e.g. +14155550123.")
    blood_group: BloodGroup | None = strawberry.field(  # type: ignore[valid-type]
        description="Null until the lab has typed the donor's blood."
    )
    site_id: strawberry.ID = strawberry.field(description="The donor's home collection site.")
    date_of_birth: date | None
    sex: Sex | None  # type: ignore[valid-type]
    address: Address | None
    created_at: datetime
    updated_at: datetime
    version: int = strawberry.field(
        description="Increases with every change. Send it back as expectedVersion when updating."
    )
    donation_count: int = strawberry.field(description="Donations recorded for this donor.")
    last_donation_at: datetime | None
    notification_preferences: NotificationPreferences = strawberry.field(
        description="What the donor agreed to be sent.", resolver=lambda root: root.preferences
    )

    @strawberry.field(description="Weight in kilograms (staff only).", extensions=[allow(*STAFF)])
    def weight_kg(self) -> float | None:
        return self.weight_kg

    @strawberry.field(description="Notes by medical staff (staff only).", extensions=[allow(*STAFF)])
    def medical_notes(self) -> str | None:
        return self.medical_notes

    @strawberry.field(description="Deferrals, past and present (staff only).", extensions=[allow(*STAFF)])
    def deferrals(self) -> list[DeferralType]:
        return self.deferrals

    @strawberry.field(
        description="Per donation type: may the donor give it now, from when, and why not (site's rules)."
    )
    def eligibility(self, info: Ctx) -> list[Eligibility]:
        return call(donation_resolvers.eligibility, info, source=self)

    @strawberry.field(description="The donor's donations, newest first, one page at a time.")
    def donations(
        self, info: Ctx, limit: DonationsLimit = None, next_token: str | None = None
    ) -> DonationConnection:
        return call(donation_resolvers.donor_donations, info, source=self, limit=limit, next_token=next_token)

    @strawberry.field(
        description="The donor's documents (consent forms, questionnaires, ...), latest upload first."
    )
    def documents(self, info: Ctx) -> list[DonorDocument]:
        return call(document_resolvers.donor_documents, info, source=self)


@strawberry.type(description="One page of donors.")
class DonorConnection:
    items: list[Donor]
    next_token: str | None = strawberry.field(
        description="Pass to the same query to get the next page; null on the last page."
    )


@strawberry.type(description="A collection and processing site of the blood service.")
class Site:
    id: strawberry.ID
    name: str
    jurisdiction: Jurisdiction  # type: ignore[valid-type]
    facility_code: str = strawberry.field(description="ISBT 128 facility identification number.")
    timezone: str


@strawberry.type(description="A hospital the service supplies.")
class Hospital:
    id: strawberry.ID
    name: str
    site_id: strawberry.ID = strawberry.field(description="The site that supplies this hospital.")


# --- inputs ---------------------------------------------------------------------------------------
@strawberry.input(
    description="Register a donor. Staff register walk-ins; a signed-in donor registers themself."
)
class RegisterDonorInput:
    first_name: str
    last_name: str
    email: str
    site_id: strawberry.ID
    phone: str | None = strawberry.field(
        default=strawberry.UNSET, description="International format, e.g. +14155550123."
    )
    blood_group: BloodGroup | None = strawberry.field(  # type: ignore[valid-type]
        default=strawberry.UNSET, description="Staff only: the lab-confirmed blood group, if known."
    )
    date_of_birth: date | None = strawberry.UNSET
    sex: Sex | None = strawberry.UNSET  # type: ignore[valid-type]
    address: AddressInput | None = strawberry.UNSET
    weight_kg: float | None = strawberry.field(default=strawberry.UNSET, description="Staff only.")
    medical_notes: str | None = strawberry.field(default=strawberry.UNSET, description="Staff only.")
    notification_preferences: NotificationPreferencesInput | None = strawberry.UNSET


@strawberry.input(
    description="Change a donor. Fields left out keep their value; null clears phone or bloodGroup."
)
class UpdateDonorInput:
    id: strawberry.ID
    expected_version: int = strawberry.field(
        description="The version you read. If the donor changed since, the update fails with CONFLICT."
    )
    first_name: str | None = strawberry.UNSET
    last_name: str | None = strawberry.UNSET
    email: str | None = strawberry.UNSET
    phone: str | None = strawberry.UNSET
    site_id: strawberry.ID | None = strawberry.UNSET
    blood_group: BloodGroup | None = strawberry.field(  # type: ignore[valid-type]
        default=strawberry.UNSET, description="Staff only."
    )
    date_of_birth: date | None = strawberry.UNSET
    sex: Sex | None = strawberry.UNSET  # type: ignore[valid-type]
    address: AddressInput | None = strawberry.UNSET
    weight_kg: float | None = strawberry.field(default=strawberry.UNSET, description="Staff only.")
    medical_notes: str | None = strawberry.field(default=strawberry.UNSET, description="Staff only.")
    notification_preferences: NotificationPreferencesInput | None = strawberry.UNSET


@strawberry.input(description="Conditions on a string field (Amplify operator names).")
class StringFilterInput:
    eq: str | None = strawberry.UNSET
    ne: str | None = strawberry.UNSET
    lt: str | None = strawberry.UNSET
    le: str | None = strawberry.UNSET
    gt: str | None = strawberry.UNSET
    ge: str | None = strawberry.UNSET
    between: list[str] | None = strawberry.UNSET
    begins_with: str | None = strawberry.UNSET
    contains: str | None = strawberry.UNSET


@strawberry.input(description="Conditions on an id field.")
class IDFilterInput:
    eq: strawberry.ID | None = strawberry.UNSET
    ne: strawberry.ID | None = strawberry.UNSET
    begins_with: strawberry.ID | None = strawberry.UNSET


@strawberry.input(description="Conditions on a blood group.")
class BloodGroupFilterInput:
    eq: BloodGroup | None = strawberry.UNSET  # type: ignore[valid-type]
    ne: BloodGroup | None = strawberry.UNSET  # type: ignore[valid-type]


@strawberry.input(
    description=(
        "Filter donors. siteId and bloodGroup equalities are served by an index; other conditions"
        " are applied while reading, and a page is still filled up to its limit."
    )
)
class DonorFilterInput:
    id: IDFilterInput | None = strawberry.UNSET
    first_name: StringFilterInput | None = strawberry.UNSET
    last_name: StringFilterInput | None = strawberry.UNSET
    email: StringFilterInput | None = strawberry.UNSET
    blood_group: BloodGroupFilterInput | None = strawberry.UNSET
    site_id: IDFilterInput | None = strawberry.UNSET
    and_: list[DonorFilterInput] | None = strawberry.field(name="and", default=strawberry.UNSET)
    or_: list[DonorFilterInput] | None = strawberry.field(name="or", default=strawberry.UNSET)
    not_: DonorFilterInput | None = strawberry.field(name="not", default=strawberry.UNSET)
