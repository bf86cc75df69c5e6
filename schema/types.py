"""GraphQL types. Objects mirror domain objects field by field, so resolvers return domain objects."""

from __future__ import annotations

from datetime import datetime

import strawberry

from bloodbank.domain import blood

BloodGroup = strawberry.enum(
    blood.BloodGroup,
    name="BloodGroup",
    description="ABO group and RhD type: O_NEG is O RhD negative.",
)
Component = strawberry.enum(
    blood.Component, name="Component", description="Blood components made from a donation."
)
Jurisdiction = strawberry.enum(
    blood.Jurisdiction, name="Jurisdiction", description="Whose donor eligibility rules a site follows."
)


@strawberry.type(description="A blood donor. Donors see only their own record; hospitals never see donors.")
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
    created_at: datetime
    updated_at: datetime
    version: int = strawberry.field(
        description="Increases with every change. Send it back as expectedVersion when updating."
    )


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
