"""The donor registry: what a donor record holds and which changes are valid."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from bloodbank.domain import text
from bloodbank.domain.blood import BloodGroup
from bloodbank.errors import BadUserInput, FieldProblem


@dataclass(frozen=True, slots=True)
class Donor:
    id: str
    first_name: str
    last_name: str
    email: str
    phone: str | None
    blood_group: BloodGroup | None
    site_id: str
    created_at: datetime
    updated_at: datetime
    version: int

    @property
    def sort_name(self) -> str:
        """Order of donor lists: family name, then given name, ignoring case and accents."""
        return f"{text.sort_form(self.last_name)} {text.sort_form(self.first_name)}"


# Fields a client may set, with the check each value must pass.
_CHECKS: dict[str, Callable[[str, str], str]] = {
    "first_name": text.person_name,
    "last_name": text.person_name,
    "email": text.email_address,
    "phone": text.phone_number,
    "site_id": text.identifier,
}
_CLIENT_NAMES = {
    "first_name": "firstName",
    "last_name": "lastName",
    "email": "email",
    "phone": "phone",
    "site_id": "siteId",
    "blood_group": "bloodGroup",
}
REQUIRED = ("first_name", "last_name", "email", "site_id")
CLEARABLE = ("phone", "blood_group")


def _clean(values: Mapping[str, object], prefix: str) -> dict[str, object]:
    cleaned: dict[str, object] = {}
    problems: list[FieldProblem] = []
    for name, value in values.items():
        where = f"{prefix}{_CLIENT_NAMES[name]}"
        if value is None:
            if name not in CLEARABLE:
                problems.append(FieldProblem(where, "must not be null"))
                continue
            cleaned[name] = None
        elif name == "blood_group":
            if not isinstance(value, BloodGroup):
                problems.append(FieldProblem(where, "is not a blood group"))
                continue
            cleaned[name] = value
        else:
            try:
                cleaned[name] = _CHECKS[name](where, str(value))
            except text.Invalid as bad:
                problems.append(bad.problem)
    if problems:
        raise BadUserInput.of(problems)
    return cleaned


@dataclass(frozen=True, slots=True)
class DonorDetails:
    """Validated fields of a new donor."""

    first_name: str
    last_name: str
    email: str
    phone: str | None
    blood_group: BloodGroup | None
    site_id: str


def validate_new(values: Mapping[str, object], prefix: str = "input.") -> DonorDetails:
    """Check every field of a registration at once, reporting all problems together."""
    unknown = set(values) - set(_CLIENT_NAMES)
    assert not unknown, f"unknown donor fields {unknown}"
    missing = [
        FieldProblem(f"{prefix}{_CLIENT_NAMES[n]}", "is required") for n in REQUIRED if n not in values
    ]
    try:
        cleaned = _clean(values, prefix)
    except BadUserInput as bad:
        raise BadUserInput.of([*missing, *bad.problems]) from None
    if missing:
        raise BadUserInput.of(missing)
    return DonorDetails(
        first_name=str(cleaned["first_name"]),
        last_name=str(cleaned["last_name"]),
        email=str(cleaned["email"]),
        phone=cleaned.get("phone"),  # type: ignore[arg-type]
        blood_group=cleaned.get("blood_group"),  # type: ignore[arg-type]
        site_id=str(cleaned["site_id"]),
    )


def new_donor(donor_id: str, details: DonorDetails, now: datetime) -> Donor:
    return Donor(
        id=donor_id,
        first_name=details.first_name,
        last_name=details.last_name,
        email=details.email,
        phone=details.phone,
        blood_group=details.blood_group,
        site_id=details.site_id,
        created_at=now,
        updated_at=now,
        version=1,
    )


def validate_changes(values: Mapping[str, object], prefix: str = "input.") -> dict[str, object]:
    """Check the fields an update sets; absent fields stay as they are."""
    unknown = set(values) - set(_CLIENT_NAMES)
    assert not unknown, f"unknown donor fields {unknown}"
    return _clean(values, prefix)


def apply_changes(donor: Donor, changes: Mapping[str, object], now: datetime) -> Donor:
    return replace(donor, **changes, updated_at=now, version=donor.version + 1)  # type: ignore[arg-type]


def client_name(field: str) -> str:
    return _CLIENT_NAMES[field]
