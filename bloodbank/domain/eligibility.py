"""Donor eligibility as versioned rule sets, one per jurisdiction, evaluated by one pure function.

A rule set is data: donation intervals (from each type to each type, by sex where the regulator says
so), yearly caps, age, weight and haemoglobin minimums. ``assess`` applies a rule set to a donor's
facts and recent donations and returns, per donation type, whether they may donate, from when, and
why not. When the donor's sex is not recorded, the stricter of the two values applies.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import Enum
from typing import TypeAlias

from bloodbank.domain.blood import Jurisdiction
from bloodbank.domain.donations import DonationType


class Sex(Enum):
    """Sex as recorded for eligibility rules that differ by it (UK intervals, haemoglobin minimums)."""

    FEMALE = "FEMALE"
    MALE = "MALE"


class DeferralReason(Enum):
    LOW_HAEMOGLOBIN = "LOW_HAEMOGLOBIN"
    RECENT_TRAVEL = "RECENT_TRAVEL"
    MEDICATION = "MEDICATION"
    ILLNESS = "ILLNESS"
    TATTOO_OR_PIERCING = "TATTOO_OR_PIERCING"
    PREGNANCY = "PREGNANCY"
    SURGERY_OR_TRANSFUSION = "SURGERY_OR_TRANSFUSION"
    DONOR_REACTION = "DONOR_REACTION"
    TEST_RESULT = "TEST_RESULT"
    OTHER = "OTHER"

    @property
    def label(self) -> str:
        return self.value.replace("_", " ").lower()


@dataclass(frozen=True, slots=True)
class Deferral:
    """No donations (of these types) from ``starts_on`` until ``ends_on`` (None: permanently)."""

    id: str
    reason: DeferralReason
    starts_on: date
    ends_on: date | None
    recorded_by: str
    recorded_at: datetime
    donation_types: frozenset[DonationType] = frozenset(DonationType)
    note: str | None = None  # free text for staff; never shown in eligibility reasons

    @property
    def permanent(self) -> bool:
        return self.ends_on is None

    def active_on(self, day: date) -> bool:
        return self.starts_on <= day and (self.ends_on is None or day < self.ends_on)


BySex: TypeAlias = int | float | Mapping[Sex, int] | Mapping[Sex, float]


@dataclass(frozen=True)
class RuleSet:
    jurisdiction: Jurisdiction
    version: str
    offered: frozenset[DonationType]
    min_age: int
    max_age_first_donation: int | None  # oldest age at which a first donation is accepted
    max_age: int | None  # oldest age for returning donors
    intervals: Mapping[tuple[DonationType, DonationType], BySex]  # (last type, next type) -> days
    yearly_caps: Mapping[DonationType, int]  # donations of the type in any 365 days
    min_weight_kg: Mapping[DonationType, BySex]
    min_haemoglobin_g_dl: Mapping[DonationType, BySex]


def _strictest(value: BySex, sex: Sex | None) -> float:
    """The value for this sex; the largest (strictest for minimums and intervals) when sex is unknown."""
    if isinstance(value, int | float):
        return value
    if sex is not None:
        return value[sex]
    return max(value.values())


_WB, _DRC, _PLT, _PLA = (
    DonationType.WHOLE_BLOOD,
    DonationType.DOUBLE_RED_CELLS,
    DonationType.PLATELETS,
    DonationType.PLASMA,
)


def _table(rows: Mapping[DonationType, Sequence[BySex]], columns: Sequence[DonationType]) -> dict:  # type: ignore[type-arg]
    return {(last, nxt): days for last, row in rows.items() for nxt, days in zip(columns, row, strict=True)}


# United States (FDA 21 CFR 630/640 and the AABB intervals blood centres publish): same-type intervals
# and caps as stated in the issue; cross-type intervals follow the Red Cross donation interval chart.
US_2026 = RuleSet(
    jurisdiction=Jurisdiction.US,
    version="US-2026.1",
    offered=frozenset(DonationType),
    min_age=17,
    max_age_first_donation=None,
    max_age=None,
    intervals=_table(
        {  # next:  WB   DRC  PLT  PLASMA
            _WB: (56, 56, 7, 28),
            _DRC: (112, 112, 7, 28),
            _PLT: (7, 7, 7, 7),
            _PLA: (28, 28, 28, 28),
        },
        (_WB, _DRC, _PLT, _PLA),
    ),
    yearly_caps={_WB: 6, _DRC: 3, _PLT: 24, _PLA: 13},
    min_weight_kg={_WB: 50, _DRC: {Sex.MALE: 59, Sex.FEMALE: 68}, _PLT: 50, _PLA: 50},
    min_haemoglobin_g_dl={
        _WB: {Sex.MALE: 13.0, Sex.FEMALE: 12.5},
        _DRC: 13.3,
        _PLT: {Sex.MALE: 13.0, Sex.FEMALE: 12.5},
        _PLA: {Sex.MALE: 13.0, Sex.FEMALE: 12.5},
    },
)

_UK_WB = {Sex.MALE: 84, Sex.FEMALE: 112}  # 12 weeks for men, 16 weeks for women
# United Kingdom (JPAC donor selection guidelines): whole blood intervals as stated in the issue.
# Apheresis intervals are 14 days; after whole blood, any donation waits the whole blood interval
# (a conservative choice pending the medical director's sign-off). Double red cells are not collected.
UK_2026 = RuleSet(
    jurisdiction=Jurisdiction.UK,
    version="UK-2026.1",
    offered=frozenset({_WB, _PLT, _PLA}),
    min_age=17,
    max_age_first_donation=65,
    max_age=70,
    intervals=_table(
        {  # next:  WB     PLT  PLASMA
            _WB: (_UK_WB, _UK_WB, _UK_WB),
            _PLT: (14, 14, 14),
            _PLA: (14, 14, 14),
        },
        (_WB, _PLT, _PLA),
    ),
    yearly_caps={_PLT: 24, _PLA: 24},
    min_weight_kg={_WB: 50, _PLT: 50, _PLA: 50},
    min_haemoglobin_g_dl={
        _WB: {Sex.MALE: 13.5, Sex.FEMALE: 12.5},
        _PLT: {Sex.MALE: 13.5, Sex.FEMALE: 12.5},
        _PLA: {Sex.MALE: 13.5, Sex.FEMALE: 12.5},
    },
)

RULE_SETS: dict[Jurisdiction, RuleSet] = {r.jurisdiction: r for r in (US_2026, UK_2026)}


@dataclass(frozen=True, slots=True)
class PastDonation:
    donation_type: DonationType
    collected_at: datetime


@dataclass(frozen=True, slots=True)
class DonorFacts:
    """What the rules need to know about a donor. ``history`` must hold at least the last 365 days."""

    date_of_birth: date | None
    sex: Sex | None
    weight_kg: float | None
    deferrals: Sequence[Deferral] = ()
    history: Sequence[PastDonation] = ()
    donated_before: bool = False  # any donation ever, for the age limit of first-time donors


@dataclass(frozen=True, slots=True)
class Eligibility:
    donation_type: DonationType
    eligible: bool
    next_eligible_at: datetime | None  # now when eligible; None when no date can be foreseen
    reasons: tuple[str, ...]
    rule_set: str


@dataclass
class _Verdict:
    at: datetime
    reasons: list[str] = field(default_factory=list)
    not_before: list[datetime] = field(default_factory=list)
    unforeseeable: bool = False

    def wait(self, until: datetime, reason: str) -> None:
        if until > self.at:
            self.reasons.append(reason)
            self.not_before.append(until)

    def refuse(self, reason: str) -> None:
        self.reasons.append(reason)
        self.unforeseeable = True


def age_on(born: date, day: date) -> int:
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def _birthday(born: date, age: int) -> date:
    try:
        return born.replace(year=born.year + age)
    except ValueError:  # born on 29 February
        return date(born.year + age, 3, 1)


def _start_of(day: date, like: datetime) -> datetime:
    return datetime.combine(day, time(), tzinfo=like.tzinfo)


def _day(value: datetime) -> str:
    return value.date().isoformat()


def assess(
    rules: RuleSet,
    facts: DonorFacts,
    at: datetime,
    donation_type: DonationType,
    haemoglobin_g_dl: float | None = None,
) -> Eligibility:
    """May this donor give this type of donation at ``at``? Haemoglobin is judged only when measured."""
    verdict = _Verdict(at)
    label = donation_type.label
    if donation_type not in rules.offered:
        verdict.refuse(f"{label} donations are not collected under {rules.jurisdiction.value} rules")
    today = at.date()

    if facts.date_of_birth is None:
        verdict.refuse("date of birth is not recorded")
    else:
        age = age_on(facts.date_of_birth, today)
        if age < rules.min_age:
            eligible_on = _birthday(facts.date_of_birth, rules.min_age)
            verdict.wait(_start_of(eligible_on, at), f"donors must be at least {rules.min_age} years old")
        oldest = rules.max_age if facts.donated_before else rules.max_age_first_donation
        if oldest is not None and age > oldest:
            first = "" if facts.donated_before else " for a first donation"
            verdict.refuse(f"donors must be {oldest} or younger{first}")

    min_weight = (
        _strictest(rules.min_weight_kg[donation_type], facts.sex) if donation_type in rules.offered else 0
    )
    if facts.weight_kg is None:
        verdict.refuse("weight is not recorded")
    elif facts.weight_kg < min_weight:
        verdict.refuse(f"{label} donors must weigh at least {min_weight:g} kg")

    for deferral in facts.deferrals:
        if donation_type not in deferral.donation_types or not deferral.active_on(today):
            continue
        if deferral.ends_on is None:
            verdict.refuse(f"permanently deferred ({deferral.reason.label})")
        else:
            verdict.wait(
                _start_of(deferral.ends_on, at),
                f"deferred until {deferral.ends_on.isoformat()} ({deferral.reason.label})",
            )

    past = sorted((d for d in facts.history if d.collected_at <= at), key=lambda d: d.collected_at)
    for last_type in DonationType:
        latest = next((d for d in reversed(past) if d.donation_type is last_type), None)
        interval = rules.intervals.get((last_type, donation_type))
        if latest is None or interval is None:
            continue
        days = int(_strictest(interval, facts.sex))
        verdict.wait(
            latest.collected_at + timedelta(days=days),
            f"{days} days must pass after a {last_type.label} donation (last on {_day(latest.collected_at)})",
        )

    cap = rules.yearly_caps.get(donation_type)
    if cap is not None:
        window = [
            d.collected_at
            for d in past
            if d.donation_type is donation_type and d.collected_at > at - timedelta(days=365)
        ]
        if len(window) >= cap:
            frees_up = window[len(window) - cap] + timedelta(days=365)
            verdict.wait(frees_up, f"at most {cap} {label} donations in 12 months")

    if haemoglobin_g_dl is not None and donation_type in rules.offered:
        minimum = _strictest(rules.min_haemoglobin_g_dl[donation_type], facts.sex)
        if haemoglobin_g_dl < minimum:
            verdict.refuse(f"haemoglobin {haemoglobin_g_dl:g} g/dL is below the {minimum:g} g/dL minimum")

    eligible = not verdict.reasons
    if eligible:
        next_at: datetime | None = at
    elif verdict.unforeseeable:
        next_at = None
    else:
        next_at = max(verdict.not_before)
    return Eligibility(donation_type, eligible, next_at, tuple(verdict.reasons), rules.version)


def assess_all(rules: RuleSet, facts: DonorFacts, at: datetime) -> list[Eligibility]:
    return [assess(rules, facts, at, t) for t in DonationType]


def history_window(at: datetime) -> datetime:
    """How far back ``DonorFacts.history`` must reach: the longest interval and the yearly caps."""
    return at - timedelta(days=366)
