"""Enums shared by several parts of the schema."""

from __future__ import annotations

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
