"""GraphQL types of staff profiles: the profile, its photo and last upload, inputs, search pages."""

from __future__ import annotations

from datetime import datetime

import strawberry

from bloodbank.domain import employees
from resolvers import employees as employee_resolvers
from schema.calls import Ctx, call

EmployeeStatus = strawberry.enum(
    employees.EmployeeStatus,
    name="EmployeeStatus",
    description=(
        "PENDING: the employee created the profile and an admin has not approved it yet; ACTIVE;"
        " DEACTIVATED: by an admin (approveEmployee takes it back)."
    ),
)
EmployeeRole = strawberry.enum(
    employees.EmployeeRole,
    name="EmployeeRole",
    description="What the employee does at the blood service (set by admins).",
)
PhotoUploadStatus = strawberry.enum(
    employees.PhotoUploadStatus,
    name="PhotoUploadStatus",
    description="ACCEPTED: the photo is shown; REJECTED: the file was not used (see reason).",
)


@strawberry.type(description="A square thumbnail of the profile photo, WebP, without any metadata.")
class EmployeeThumbnail:
    size: int = strawberry.field(description="Width and height in pixels (128 or 512).")
    content_type: str
    bytes: int

    @strawberry.field(description="A link to the image, valid 10 minutes: read it again for a new one.")
    def url(self, info: Ctx) -> str:
        return call(employee_resolvers.thumbnail_url, info, source=self)


@strawberry.type(description="The photo a profile shows.")
class EmployeePhoto:
    upload_id: strawberry.ID
    thumbnails: list[EmployeeThumbnail] = strawberry.field(description="Smallest first.")
    processed_at: datetime


@strawberry.type(description="What became of the last photo uploaded for the profile.")
class EmployeePhotoUpload:
    upload_id: strawberry.ID
    status: PhotoUploadStatus  # type: ignore[valid-type]
    at: datetime
    reason: str | None = strawberry.field(description="Why it was REJECTED, and what to do.")


@strawberry.type(
    description=(
        "A staff member's profile; its id is their user id (Cognito sub). Colleagues see ACTIVE"
        " profiles; the phone is encrypted at rest and shown only to the employee and admins."
    )
)
class Employee:
    id: strawberry.ID
    email: str
    first_name: str
    last_name: str
    preferred_name: str | None
    job_title: str | None
    department: str | None = strawberry.field(description="Set by admins.")
    role: EmployeeRole | None = strawberry.field(description="Set by admins.")  # type: ignore[valid-type]
    status: EmployeeStatus  # type: ignore[valid-type]
    created_at: datetime
    updated_at: datetime
    approved_at: datetime | None
    version: int = strawberry.field(
        description=(
            "Increases with every change (a processed photo too). Send it back as expectedVersion when"
            " updating."
        )
    )
    photo: EmployeePhoto | None = strawberry.field(description="Null until a photo is accepted.")
    last_photo_upload: EmployeePhotoUpload | None = strawberry.field(
        description="The last upload's outcome (a rejected one leaves the photo as it was).",
        resolver=lambda root: root.last_upload,
    )

    @strawberry.field(description="E.164; null for colleagues (only the employee and admins see it).")
    def phone(self, info: Ctx) -> str | None:
        return call(employee_resolvers.employee_phone, info, source=self)


@strawberry.type(description="One page of employees in name order (family name, then given name).")
class EmployeeConnection:
    items: list[Employee]
    next_token: str | None = strawberry.field(description="Pass it back for the next page; null on the last.")


@strawberry.input(
    description=(
        "A new profile. A staff member creates their own (PENDING until an admin approves it); an"
        " admin may create anyone's (ACTIVE at once) and set role and department."
    )
)
class CreateEmployeeProfileInput:
    email: str
    first_name: str
    last_name: str
    id: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET,
        description="Admins only: the user id (Cognito sub) of the employee; the caller's own by default.",
    )
    preferred_name: str | None = strawberry.UNSET
    phone: str | None = strawberry.field(
        default=strawberry.UNSET, description="International format, e.g. +14155550123."
    )
    job_title: str | None = strawberry.field(default=strawberry.UNSET, description="At most 100 characters.")
    department: str | None = strawberry.field(
        default=strawberry.UNSET, description="Admins only; at most 60 characters."
    )
    role: EmployeeRole | None = strawberry.field(  # type: ignore[valid-type]
        default=strawberry.UNSET, description="Admins only."
    )


@strawberry.input(
    description=(
        "Change a profile: the employee their own fields, admins anyone's and role and department."
        " Fields left out keep their value; null clears preferredName, phone, jobTitle, department, role."
    )
)
class UpdateEmployeeProfileInput:
    id: strawberry.ID
    expected_version: int = strawberry.field(
        description="The version you read. If the profile changed since, the update fails with CONFLICT."
    )
    email: str | None = strawberry.UNSET
    first_name: str | None = strawberry.UNSET
    last_name: str | None = strawberry.UNSET
    preferred_name: str | None = strawberry.UNSET
    phone: str | None = strawberry.UNSET
    job_title: str | None = strawberry.UNSET
    department: str | None = strawberry.field(default=strawberry.UNSET, description="Admins only.")
    role: EmployeeRole | None = strawberry.field(  # type: ignore[valid-type]
        default=strawberry.UNSET, description="Admins only."
    )
