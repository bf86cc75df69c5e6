"""Staff profiles: what an employee record holds, who may change which field, and its photo.

An employee's id is their Cognito ``sub``. A staff member who signs in for the first time creates
their own profile, which stays PENDING until an admin approves it; an admin may create a profile for
someone else, which is ACTIVE at once. Admins alone set an employee's ``role`` and ``department``
(what the employee is allowed to do and where they work are not the employee's to claim), approve
and deactivate. The phone number is personal and encrypted at rest (as donors' are).

Photos arrive as direct uploads (``domain.uploads``) and are processed by a trigger of the bucket,
never by the API: a profile keeps the photo it shows (its thumbnails) apart from the last upload's
outcome, so a rejected upload never takes away a photo that was accepted before.

Object keys of photos are built and parsed only here:

    employee-photos/uploads/{employeeId}/{uploadId}                 what the client POSTs
    employee-photos/thumbnails/{employeeId}/{uploadId}-{size}.webp  what the processing writes

Uploads and thumbnails sit under two different prefixes so that the bucket's trigger (on
``employee-photos/uploads/``) never hears of the thumbnails it writes itself, and so that IAM and a
lifecycle rule can name each by prefix.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import Enum

from bloodbank.domain import text
from bloodbank.domain.lazy import Lazy
from bloodbank.errors import BadUserInput, Conflict, FieldProblem

MAX_TITLE_LENGTH = 100
MAX_DEPARTMENT_LENGTH = 60
MAX_QUERY_LENGTH = 100


class EmployeeStatus(Enum):
    PENDING = "PENDING"  # created by the employee, waiting for an admin
    ACTIVE = "ACTIVE"
    DEACTIVATED = "DEACTIVATED"


class EmployeeRole(Enum):
    """What the employee does at the blood service (set by admins; not a Cognito group)."""

    PHLEBOTOMIST = "PHLEBOTOMIST"
    NURSE = "NURSE"
    DOCTOR = "DOCTOR"
    LAB_SCIENTIST = "LAB_SCIENTIST"
    DRIVER = "DRIVER"
    COORDINATOR = "COORDINATOR"
    MANAGER = "MANAGER"
    ADMINISTRATOR = "ADMINISTRATOR"
    OTHER = "OTHER"


class PhotoUploadStatus(Enum):
    ACCEPTED = "ACCEPTED"
    REJECTED = "REJECTED"


@dataclass(frozen=True, slots=True)
class Thumbnail:
    size: int  # the square's side in pixels
    key: str
    content_type: str
    bytes: int


@dataclass(frozen=True, slots=True)
class Photo:
    """The photo a profile shows: its thumbnails, from which upload, when."""

    upload_id: str
    thumbnails: tuple[Thumbnail, ...]
    processed_at: datetime


@dataclass(frozen=True, slots=True)
class PhotoUpload:
    """What became of the last upload: ACCEPTED, or REJECTED with a reason a person can act on."""

    upload_id: str
    status: PhotoUploadStatus
    at: datetime
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class Personal:
    """The employee's encrypted-at-rest details, in clear."""

    phone: str | None = None


@dataclass(frozen=True, slots=True)
class Employee:
    id: str
    email: str
    first_name: str
    last_name: str
    status: EmployeeStatus
    created_at: datetime
    updated_at: datetime
    created_by: str
    version: int
    preferred_name: str | None = None
    job_title: str | None = None
    department: str | None = None
    role: EmployeeRole | None = None
    approved_at: datetime | None = None
    approved_by: str | None = None
    photo: Photo | None = None
    last_upload: PhotoUpload | None = None
    private: Lazy[Personal] = field(default_factory=lambda: Lazy(Personal()))

    @property
    def sort_name(self) -> str:
        """Order of search results and what a name prefix matches: family name, then given name,
        ignoring case and accents ('Zoë Ödegaard' -> 'odegaard zoe')."""
        return f"{text.sort_form(self.last_name)} {text.sort_form(self.first_name)}"

    @property
    def department_key(self) -> str | None:
        """The department as the index spells it: 'Lab — North' and 'lab north' are one department."""
        return text.sort_form(self.department) if self.department else None

    @property
    def phone(self) -> str | None:
        return self.private.get().phone

    @property
    def personal(self) -> Personal:
        return self.private.get()


# --- validation ---------------------------------------------------------------------------------
_CHECKS: dict[str, Callable[[str, object], object]] = {
    "email": lambda where, v: text.email_address(where, str(v)),
    "first_name": lambda where, v: text.person_name(where, str(v)),
    "last_name": lambda where, v: text.person_name(where, str(v)),
    "preferred_name": lambda where, v: text.person_name(where, str(v)),
    "phone": lambda where, v: text.phone_number(where, str(v)),
    "job_title": text.short_text(MAX_TITLE_LENGTH, letters=True),
    "department": text.short_text(MAX_DEPARTMENT_LENGTH, letters=True),
}
_CLIENT_NAMES = {
    "email": "email",
    "first_name": "firstName",
    "last_name": "lastName",
    "preferred_name": "preferredName",
    "phone": "phone",
    "job_title": "jobTitle",
    "department": "department",
    "role": "role",
}
REQUIRED = ("email", "first_name", "last_name")
CLEARABLE = ("preferred_name", "phone", "job_title", "department", "role")
# Fields only admins may set: what an employee may do and where they work are not theirs to claim.
ADMIN_ONLY = ("role", "department")


def client_name(name: str) -> str:
    return _CLIENT_NAMES[name]


def _clean(values: Mapping[str, object], prefix: str) -> dict[str, object]:
    unknown = set(values) - set(_CLIENT_NAMES)
    assert not unknown, f"unknown employee fields {unknown}"
    cleaned: dict[str, object] = {}
    problems: list[FieldProblem] = []
    for name, value in values.items():
        where = f"{prefix}{_CLIENT_NAMES[name]}"
        if value is None:
            if name in CLEARABLE:
                cleaned[name] = None
            else:
                problems.append(FieldProblem(where, "must not be null"))
        elif name == "role":
            if isinstance(value, EmployeeRole):
                cleaned[name] = value
            else:
                problems.append(FieldProblem(where, "is not a valid role"))
        else:
            try:
                cleaned[name] = _CHECKS[name](where, value)
            except text.Invalid as bad:
                problems.append(bad.problem)
    if problems:
        raise BadUserInput.of(problems)
    return cleaned


def validate_new(values: Mapping[str, object], prefix: str = "input.") -> dict[str, object]:
    """Every field of a new profile checked at once; all problems reported together."""
    return text.with_required(values, prefix, REQUIRED, _CLIENT_NAMES, _clean)


def validate_changes(values: Mapping[str, object], prefix: str = "input.") -> dict[str, object]:
    """The fields an update sets, checked; absent fields stay as they are."""
    if not values:
        raise BadUserInput("Set at least one field to change")
    return _clean(values, prefix)


def forbidden_fields(values: Mapping[str, object], *, is_admin: bool) -> list[str]:
    """The client names of fields this caller may not set (empty: all allowed)."""
    if is_admin:
        return []
    return [_CLIENT_NAMES[name] for name in ADMIN_ONLY if name in values]


def new_employee(
    employee_id: str, cleaned: Mapping[str, object], now: datetime, created_by: str, *, approved: bool
) -> Employee:
    """A profile: ACTIVE when an admin creates it (approved by them), PENDING otherwise."""
    plain = {k: v for k, v in cleaned.items() if k != "phone"}
    return Employee(
        id=employee_id,
        status=EmployeeStatus.ACTIVE if approved else EmployeeStatus.PENDING,
        created_at=now,
        updated_at=now,
        created_by=created_by,
        version=1,
        approved_at=now if approved else None,
        approved_by=created_by if approved else None,
        private=Lazy(Personal(phone=cleaned.get("phone"))),  # type: ignore[arg-type]
        **plain,  # type: ignore[arg-type]
    )


def apply_changes(employee: Employee, changes: Mapping[str, object], now: datetime) -> Employee:
    plain = {k: v for k, v in changes.items() if k != "phone"}
    updated = replace(employee, **plain, updated_at=now, version=employee.version + 1)  # type: ignore[arg-type]
    if "phone" in changes:
        updated = replace(updated, private=Lazy(Personal(phone=changes["phone"])))  # type: ignore[arg-type]
    return updated


def approved(employee: Employee, by: str, now: datetime) -> Employee:
    """PENDING (or DEACTIVATED: taken back) -> ACTIVE."""
    if employee.status is EmployeeStatus.ACTIVE:
        return employee
    return replace(
        employee,
        status=EmployeeStatus.ACTIVE,
        approved_at=now,
        approved_by=by,
        updated_at=now,
        version=employee.version + 1,
    )


def deactivated(employee: Employee, now: datetime) -> Employee:
    if employee.status is EmployeeStatus.DEACTIVATED:
        return employee
    return replace(employee, status=EmployeeStatus.DEACTIVATED, updated_at=now, version=employee.version + 1)


def check_version(employee: Employee, expected_version: int) -> None:
    if employee.version != expected_version:
        raise Conflict(
            f"The profile was changed since you read it (version {employee.version}, you had "
            f"{expected_version}); reload it and apply your change again"
        )


# --- search -------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Search:
    """A validated search: a name prefix in sort form ('' for every name), an optional department
    (in sort form) and the statuses the caller may see."""

    name_prefix: str
    department: str | None
    status: EmployeeStatus | None

    @property
    def scope(self) -> str:
        """What a page token is bound to: the same search, or the token is refused."""
        return (
            f"employees|{self.name_prefix}|{self.department or ''}|{self.status.value if self.status else ''}"
        )


def search(query: str | None, department: str | None, status: EmployeeStatus | None) -> Search:
    problems = []
    if query is not None and (len(query) > MAX_QUERY_LENGTH or text.has_control(query)):
        problems.append(FieldProblem("query", f"must be at most {MAX_QUERY_LENGTH} characters of text"))
    if department is not None and (
        len(department) > MAX_DEPARTMENT_LENGTH
        or text.has_control(department)
        or not text.sort_form(department)
    ):
        problems.append(FieldProblem("department", "is not a department name"))
    if problems:
        raise BadUserInput.of(problems)
    return Search(
        name_prefix=text.sort_form(query or ""),
        department=text.sort_form(department) if department else None,
        status=status,
    )


def matches(employee: Employee, wanted: Search) -> bool:
    """What the index Query returns, said in Python (for the in-memory store)."""
    return (
        employee.sort_name.startswith(wanted.name_prefix)
        and (wanted.department is None or employee.department_key == wanted.department)
        and (wanted.status is None or employee.status is wanted.status)
    )


# --- photos -------------------------------------------------------------------------------------
ALLOWED_CONTENT_TYPES = ("image/jpeg", "image/png", "image/webp")
MAX_PHOTO_BYTES = 5 * 1024 * 1024  # 5 MiB: a phone camera's photo, not a RAW file
MAX_PHOTO_PIXELS = 40_000_000  # 40 megapixels; a larger image is refused before it is decoded
THUMBNAIL_SIZES = (128, 512)
THUMBNAIL_CONTENT_TYPE = "image/webp"
UPLOAD_TTL_SECONDS = 15 * 60
THUMBNAIL_URL_TTL_SECONDS = 10 * 60  # shown in a page right away; useless if leaked later
UPLOADS_PREFIX = "employee-photos/uploads/"
THUMBNAILS_PREFIX = "employee-photos/thumbnails/"


def validate_content_type(content_type: str) -> str:
    cleaned = content_type.strip().lower()
    if cleaned not in ALLOWED_CONTENT_TYPES:
        raise BadUserInput.of(
            [FieldProblem("contentType", f"must be one of {', '.join(ALLOWED_CONTENT_TYPES)}")]
        )
    return cleaned


def upload_key(employee_id: str, upload_id: str) -> str:
    return f"{UPLOADS_PREFIX}{employee_id}/{upload_id}"


def thumbnail_key(employee_id: str, upload_id: str, size: int) -> str:
    return f"{THUMBNAILS_PREFIX}{employee_id}/{upload_id}-{size}.webp"


def parse_upload_key(key: str) -> tuple[str, str] | None:
    """(employee id, upload id) of a key this module handed out, None for any other key."""
    if not key.startswith(UPLOADS_PREFIX):
        return None
    parts = key[len(UPLOADS_PREFIX) :].split("/")
    if len(parts) != 2:
        return None
    try:
        return text.identifier("key", parts[0]), text.identifier("key", parts[1])
    except text.Invalid:
        return None


def with_photo(employee: Employee, photo: Photo, now: datetime) -> Employee:
    upload = PhotoUpload(photo.upload_id, PhotoUploadStatus.ACCEPTED, now)
    return replace(employee, photo=photo, last_upload=upload, updated_at=now, version=employee.version + 1)


def with_rejection(employee: Employee, upload_id: str, reason: str, now: datetime) -> Employee:
    upload = PhotoUpload(upload_id, PhotoUploadStatus.REJECTED, now, reason)
    return replace(employee, last_upload=upload, updated_at=now, version=employee.version + 1)


class PhotoRejected(Exception):
    """The uploaded file cannot be a profile photo; the message says why, for the employee."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class RenderedThumbnail:
    size: int
    data: bytes
    content_type: str = THUMBNAIL_CONTENT_TYPE


# --- notifications ------------------------------------------------------------------------------
class EmployeeEventType(Enum):
    PROFILE_CREATED = "EMPLOYEE_PROFILE_CREATED"
    PROFILE_APPROVED = "EMPLOYEE_PROFILE_APPROVED"


@dataclass(frozen=True, slots=True)
class EmployeeEvent:
    """What subscribers of the employee topic hear: which profile, what happened, by whom, and the
    department (for routing to its managers). No name, e-mail or phone: a subscriber that needs them
    reads the profile with ``getEmployee``, under its own authorization."""

    type: EmployeeEventType
    employee_id: str
    status: EmployeeStatus
    department: str | None
    by: str
    at: datetime

    def document(self) -> dict[str, object]:
        return {
            "type": self.type.value,
            "employeeId": self.employee_id,
            "status": self.status.value,
            "department": self.department,
            "by": self.by,
            "at": self.at.isoformat().replace("+00:00", "Z"),
        }
