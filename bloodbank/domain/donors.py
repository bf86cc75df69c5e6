"""The donor registry: what a donor record holds and which changes are valid.

Personal details (date of birth, phone, address, weight, medical notes, deferrals) are encrypted at
rest. A donor read from storage carries them as ``Personal`` behind a ``Lazy``, which decrypts
on first use, so listing donors costs no decryption unless a personal field is asked for.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime

from bloodbank.domain import text
from bloodbank.domain.blood import BloodGroup
from bloodbank.domain.eligibility import Deferral, PastDonation, Sex, history_window
from bloodbank.domain.lazy import Lazy
from bloodbank.domain.notifications import NotificationKind, NotificationPreferences
from bloodbank.errors import BadUserInput, FieldProblem

MAX_NOTES_LENGTH = 4000
MAX_ADDRESS_LINE = 100


@dataclass(frozen=True, slots=True)
class Address:
    line1: str
    city: str
    postal_code: str
    country: str  # ISO 3166-1 alpha-2
    line2: str | None = None
    region: str | None = None


@dataclass(frozen=True, slots=True)
class Personal:
    """The donor's encrypted-at-rest details, in clear."""

    date_of_birth: date | None = None
    phone: str | None = None
    address: Address | None = None
    weight_kg: float | None = None
    medical_notes: str | None = None
    deferrals: tuple[Deferral, ...] = ()


@dataclass(frozen=True, slots=True)
class Donor:
    id: str
    first_name: str
    last_name: str
    email: str
    blood_group: BloodGroup | None
    site_id: str
    created_at: datetime
    updated_at: datetime
    version: int
    sex: Sex | None = None
    preferences: NotificationPreferences = field(default_factory=NotificationPreferences)
    donation_count: int = 0
    last_donation_at: datetime | None = None
    # Type and time of each donation in the last year (eligibility needs no other read); kept by
    # ``with_donation`` in the same write as the donation itself.
    recent_donations: tuple[PastDonation, ...] = ()
    private: Lazy[Personal] = field(default_factory=lambda: Lazy(Personal()))

    @property
    def sort_name(self) -> str:
        """Order of donor lists: family name, then given name, ignoring case and accents."""
        return f"{text.sort_form(self.last_name)} {text.sort_form(self.first_name)}"

    @property
    def personal(self) -> Personal:
        return self.private.get()

    @property
    def phone(self) -> str | None:
        return self.personal.phone

    @property
    def date_of_birth(self) -> date | None:
        return self.personal.date_of_birth

    @property
    def address(self) -> Address | None:
        return self.personal.address

    @property
    def weight_kg(self) -> float | None:
        return self.personal.weight_kg

    @property
    def medical_notes(self) -> str | None:
        return self.personal.medical_notes

    @property
    def deferrals(self) -> tuple[Deferral, ...]:
        return self.personal.deferrals


PERSONAL_FIELDS = frozenset({"date_of_birth", "phone", "address", "weight_kg", "medical_notes"})


def _date_of_birth(where: str, value: object) -> date:
    if not isinstance(value, date):
        raise text.Invalid(FieldProblem(where, "must be a date (YYYY-MM-DD)"))
    if value > date.today() or value.year < date.today().year - 120:
        raise text.Invalid(FieldProblem(where, "must be a real date of birth in the past"))
    return value


def _weight(where: str, value: object) -> float:
    if not isinstance(value, int | float) or not 20 <= float(value) <= 350:
        raise text.Invalid(FieldProblem(where, "must be a weight in kilograms between 20 and 350"))
    return float(value)


def _notes(where: str, value: object) -> str:
    cleaned = str(value).strip()
    if len(cleaned) > MAX_NOTES_LENGTH:
        raise text.Invalid(FieldProblem(where, f"must be at most {MAX_NOTES_LENGTH} characters"))
    return cleaned


def _address(where: str, value: object) -> Address:
    if not isinstance(value, Mapping):
        raise text.Invalid(FieldProblem(where, "must be an address"))
    line = text.short_text(MAX_ADDRESS_LINE)
    problems = []
    cleaned: dict[str, str | None] = {}
    for name, client, required in (
        ("line1", "line1", True),
        ("line2", "line2", False),
        ("city", "city", True),
        ("region", "region", False),
        ("postal_code", "postalCode", True),
        ("country", "country", True),
    ):
        raw = value.get(name)
        if raw is None:
            if required:
                problems.append(FieldProblem(f"{where}.{client}", "is required"))
            cleaned[name] = None
            continue
        try:
            cleaned[name] = line(f"{where}.{client}", raw)
        except text.Invalid as bad:
            problems.append(bad.problem)
    country = cleaned.get("country")
    if country is not None:
        if len(country) != 2 or not country.isalpha() or not country.isascii():
            problems.append(FieldProblem(f"{where}.country", "must be a two-letter ISO 3166 country code"))
        cleaned["country"] = country.upper()
    if problems:
        raise BadUserInput.of(problems)
    return Address(**cleaned)  # type: ignore[arg-type]


def _preferences(where: str, value: object) -> dict[str, object]:
    """The client's preference input; consent time is set by ``apply_preferences``."""
    if not isinstance(value, Mapping) or "consent" not in value:
        raise text.Invalid(FieldProblem(f"{where}.consent", "is required"))
    return dict(value)


# Fields a client may set, with the check each value must pass.
_CHECKS: dict[str, Callable[[str, object], object]] = {
    "first_name": lambda where, v: text.person_name(where, str(v)),
    "last_name": lambda where, v: text.person_name(where, str(v)),
    "email": lambda where, v: text.email_address(where, str(v)),
    "phone": lambda where, v: text.phone_number(where, str(v)),
    "site_id": lambda where, v: text.identifier(where, str(v)),
    "date_of_birth": _date_of_birth,
    "weight_kg": _weight,
    "medical_notes": _notes,
    "address": _address,
    "notification_preferences": _preferences,
}
_ENUMS: dict[str, type] = {"blood_group": BloodGroup, "sex": Sex}
_CLIENT_NAMES = {
    "first_name": "firstName",
    "last_name": "lastName",
    "email": "email",
    "phone": "phone",
    "site_id": "siteId",
    "blood_group": "bloodGroup",
    "date_of_birth": "dateOfBirth",
    "sex": "sex",
    "weight_kg": "weightKg",
    "address": "address",
    "medical_notes": "medicalNotes",
    "notification_preferences": "notificationPreferences",
}
REQUIRED = ("first_name", "last_name", "email", "site_id")
CLEARABLE = ("phone", "blood_group", "address", "medical_notes", "weight_kg", "sex", "date_of_birth")


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
        elif name in _ENUMS:
            if not isinstance(value, _ENUMS[name]):
                problems.append(FieldProblem(where, f"is not a valid {_CLIENT_NAMES[name]}"))
                continue
            cleaned[name] = value
        else:
            try:
                cleaned[name] = _CHECKS[name](where, value)
            except text.Invalid as bad:
                problems.append(bad.problem)
            except BadUserInput as bad:
                problems.extend(bad.problems)
    if problems:
        raise BadUserInput.of(problems)
    return cleaned


@dataclass(frozen=True, slots=True)
class DonorDetails:
    """Validated fields of a new donor."""

    first_name: str
    last_name: str
    email: str
    site_id: str
    blood_group: BloodGroup | None = None
    sex: Sex | None = None
    personal: Personal = field(default_factory=Personal)
    preferences: Mapping[str, object] | None = None


def validate_new(values: Mapping[str, object], prefix: str = "input.") -> DonorDetails:
    """Check every field of a registration at once, reporting all problems together."""
    unknown = set(values) - set(_CLIENT_NAMES)
    assert not unknown, f"unknown donor fields {unknown}"
    cleaned = text.with_required(values, prefix, REQUIRED, _CLIENT_NAMES, _clean)
    return DonorDetails(
        first_name=str(cleaned["first_name"]),
        last_name=str(cleaned["last_name"]),
        email=str(cleaned["email"]),
        site_id=str(cleaned["site_id"]),
        blood_group=cleaned.get("blood_group"),  # type: ignore[arg-type]
        sex=cleaned.get("sex"),  # type: ignore[arg-type]
        personal=Personal(**{k: v for k, v in cleaned.items() if k in PERSONAL_FIELDS}),  # type: ignore[arg-type]
        preferences=cleaned.get("notification_preferences"),  # type: ignore[arg-type]
    )


def new_donor(donor_id: str, details: DonorDetails, now: datetime) -> Donor:
    donor = Donor(
        id=donor_id,
        first_name=details.first_name,
        last_name=details.last_name,
        email=details.email,
        blood_group=details.blood_group,
        site_id=details.site_id,
        created_at=now,
        updated_at=now,
        version=1,
        sex=details.sex,
        private=Lazy(details.personal),
    )
    if details.preferences is not None:
        donor = replace(donor, preferences=preferences_from(details.preferences, None, now))
    return donor


def preferences_from(
    values: Mapping[str, object], current: NotificationPreferences | None, now: datetime
) -> NotificationPreferences:
    """Consent keeps the time it was first given; withdrawing it clears it."""
    consent = bool(values.get("consent"))
    consented_at = (current.consented_at if current else None) if consent else None
    if consent and consented_at is None:
        consented_at = now
    channels = values.get("channels") or ()
    kinds = values.get("kinds")
    assert isinstance(channels, list | tuple)
    assert isinstance(kinds, list | tuple | None)
    return NotificationPreferences(
        consented_at=consented_at,
        channels=frozenset(channels),
        kinds=frozenset(NotificationKind) if kinds is None else frozenset(kinds),
    )


def validate_changes(values: Mapping[str, object], prefix: str = "input.") -> dict[str, object]:
    """Check the fields an update sets; absent fields stay as they are."""
    unknown = set(values) - set(_CLIENT_NAMES)
    assert not unknown, f"unknown donor fields {unknown}"
    return _clean(values, prefix)


def apply_changes(donor: Donor, changes: Mapping[str, object], now: datetime) -> Donor:
    plain = {k: v for k, v in changes.items() if k not in PERSONAL_FIELDS and k != "notification_preferences"}
    personal = {k: v for k, v in changes.items() if k in PERSONAL_FIELDS}
    updated = replace(donor, **plain, updated_at=now, version=donor.version + 1)  # type: ignore[arg-type]
    if personal:
        updated = replace(updated, private=Lazy(replace(donor.personal, **personal)))  # type: ignore[arg-type]
    if "notification_preferences" in changes:
        values = changes["notification_preferences"]
        assert isinstance(values, Mapping)
        updated = replace(updated, preferences=preferences_from(values, donor.preferences, now))
    return updated


def with_deferral(donor: Donor, deferral: Deferral, now: datetime) -> Donor:
    personal = replace(donor.personal, deferrals=(*donor.personal.deferrals, deferral))
    return replace(donor, private=Lazy(personal), updated_at=now, version=donor.version + 1)


def with_donation(donor: Donor, donation: PastDonation, now: datetime) -> Donor:
    """The donor after a donation: counted, and in the recent history (older than a year dropped)."""
    since = history_window(donation.collected_at)
    recent = tuple(d for d in (*donor.recent_donations, donation) if d.collected_at >= since)
    return replace(
        donor,
        donation_count=donor.donation_count + 1,
        last_donation_at=donation.collected_at,
        recent_donations=tuple(sorted(recent, key=lambda d: d.collected_at)),
        updated_at=now,
        version=donor.version + 1,
    )


def client_name(field: str) -> str:
    return _CLIENT_NAMES[field]
