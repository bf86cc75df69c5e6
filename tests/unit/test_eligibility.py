"""Eligibility rule sets, table-driven with the numbers the regulators (and the issue) give."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from bloodbank.domain.blood import Jurisdiction
from bloodbank.domain.donations import DonationType
from bloodbank.domain.eligibility import (
    RULE_SETS,
    UK_2026,
    US_2026,
    Deferral,
    DeferralReason,
    DonorFacts,
    PastDonation,
    Sex,
    assess,
    assess_all,
)

NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
WB, DRC, PLT, PLA = (
    DonationType.WHOLE_BLOOD,
    DonationType.DOUBLE_RED_CELLS,
    DonationType.PLATELETS,
    DonationType.PLASMA,
)


def facts(*history: tuple[DonationType, int], sex: Sex | None = Sex.FEMALE, **kw: object) -> DonorFacts:
    """A healthy 35-year-old weighing 70 kg, with donations ``days`` ago."""
    values: dict[str, object] = {
        "date_of_birth": date(1991, 5, 4),
        "sex": sex,
        "weight_kg": 70.0,
        "history": [PastDonation(t, NOW - timedelta(days=d)) for t, d in history],
        "donated_before": bool(history),
    }
    values.update(kw)
    return DonorFacts(**values)  # type: ignore[arg-type]


def test_rule_sets_exist_per_jurisdiction_with_versions() -> None:
    assert set(RULE_SETS) == {Jurisdiction.US, Jurisdiction.UK}
    assert US_2026.version == "US-2026.1"
    assert UK_2026.version == "UK-2026.1"


# (rule set, sex, donation type, its minimum interval in days, its yearly cap or None)
INTERVALS = [
    (US_2026, Sex.FEMALE, WB, 56, 6),
    (US_2026, Sex.MALE, WB, 56, 6),
    (US_2026, Sex.MALE, DRC, 112, 3),
    (US_2026, Sex.FEMALE, PLT, 7, 24),
    (US_2026, Sex.FEMALE, PLA, 28, 13),
    (UK_2026, Sex.MALE, WB, 84, None),  # 12 weeks for men
    (UK_2026, Sex.FEMALE, WB, 112, None),  # 16 weeks for women
]


@pytest.mark.parametrize(("rules", "sex", "kind", "days", "cap"), INTERVALS)
def test_minimum_interval_after_the_same_type(rules, sex, kind, days, cap) -> None:  # type: ignore[no-untyped-def]
    too_soon = assess(rules, facts((kind, days - 1), sex=sex), NOW, kind)
    assert not too_soon.eligible
    assert too_soon.next_eligible_at == NOW + timedelta(days=1)
    assert f"{days} days must pass after a {kind.label} donation" in too_soon.reasons[0]
    on_the_day = assess(rules, facts((kind, days), sex=sex), NOW, kind)
    assert on_the_day.eligible, on_the_day.reasons
    assert on_the_day.next_eligible_at == NOW
    assert on_the_day.reasons == ()


@pytest.mark.parametrize(("rules", "sex", "kind", "days", "cap"), [i for i in INTERVALS if i[4]])
def test_yearly_cap(rules, sex, kind, days, cap) -> None:  # type: ignore[no-untyped-def]
    # ``cap`` donations spaced by the interval, the last one long enough ago for the interval to pass.
    spacing = max(days, 1)
    history = [(kind, days + i * spacing) for i in range(cap)]
    oldest = max(d for _, d in history)
    if oldest >= 365:
        pytest.skip("the interval alone keeps this type under its cap")
    verdict = assess(rules, facts(*history, sex=sex), NOW, kind)
    assert not verdict.eligible
    assert verdict.reasons == (f"at most {cap} {kind.label} donations in 12 months",)
    assert verdict.next_eligible_at == NOW - timedelta(days=oldest) + timedelta(days=365)
    one_fewer = assess(rules, facts(*history[:-1], sex=sex), NOW, kind)
    assert one_fewer.eligible


def test_us_caps_are_the_issues_numbers() -> None:
    assert US_2026.yearly_caps == {WB: 6, DRC: 3, PLT: 24, PLA: 13}


@pytest.mark.parametrize(
    ("last", "nxt", "days"),
    [(WB, DRC, 56), (DRC, WB, 112), (PLT, WB, 7), (PLA, WB, 28), (WB, PLT, 7), (WB, PLA, 28)],
)
def test_us_cross_type_intervals(last: DonationType, nxt: DonationType, days: int) -> None:
    assert not assess(US_2026, facts((last, days - 1), sex=Sex.MALE), NOW, nxt).eligible
    assert assess(US_2026, facts((last, days), sex=Sex.MALE), NOW, nxt).eligible


def test_unknown_sex_gets_the_stricter_uk_interval() -> None:
    verdict = assess(UK_2026, facts((WB, 100), sex=None), NOW, WB)
    assert not verdict.eligible
    assert "112 days" in verdict.reasons[0]


def test_uk_does_not_collect_double_red_cells() -> None:
    verdict = assess(UK_2026, facts(), NOW, DRC)
    assert not verdict.eligible
    assert verdict.next_eligible_at is None
    assert "not collected under UK rules" in verdict.reasons[0]


@pytest.mark.parametrize(
    ("rules", "born", "donated_before", "eligible", "reason"),
    [
        (US_2026, date(2009, 11, 23), False, False, "at least 17"),  # 17 tomorrow
        (US_2026, date(2009, 11, 22), False, True, None),  # 17 today
        (US_2026, date(1940, 1, 1), False, True, None),  # no upper limit in the US
        (UK_2026, date(1960, 11, 23), False, True, None),  # 65: may start
        (UK_2026, date(1960, 11, 22), False, False, "65 or younger for a first donation"),  # 66
        (UK_2026, date(1960, 11, 22), True, True, None),  # returning donors up to 70
        (UK_2026, date(1955, 11, 22), True, False, "70 or younger"),  # 71
    ],
)
def test_age_limits(rules, born, donated_before, eligible, reason) -> None:  # type: ignore[no-untyped-def]
    verdict = assess(rules, facts(date_of_birth=born, donated_before=donated_before), NOW, WB)
    assert verdict.eligible is eligible, verdict.reasons
    if reason:
        assert reason in verdict.reasons[0]


def test_too_young_knows_the_birthday() -> None:
    verdict = assess(US_2026, facts(date_of_birth=date(2010, 3, 1)), NOW, WB)
    assert verdict.next_eligible_at == datetime(2027, 3, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("rules", "kind", "sex", "kg", "eligible"),
    [
        (US_2026, WB, Sex.FEMALE, 50, True),
        (US_2026, WB, Sex.FEMALE, 49.9, False),
        (US_2026, DRC, Sex.MALE, 59, True),
        (US_2026, DRC, Sex.MALE, 58, False),
        (US_2026, DRC, Sex.FEMALE, 67, False),
        (UK_2026, WB, Sex.MALE, 49, False),
    ],
)
def test_weight_minimums(rules, kind, sex, kg, eligible) -> None:  # type: ignore[no-untyped-def]
    verdict = assess(rules, facts(sex=sex, weight_kg=kg), NOW, kind)
    assert verdict.eligible is eligible
    if not eligible:
        assert verdict.next_eligible_at is None
        assert "must weigh at least" in verdict.reasons[0]


@pytest.mark.parametrize(
    ("rules", "kind", "sex", "hb", "eligible"),
    [
        (US_2026, WB, Sex.FEMALE, 12.5, True),
        (US_2026, WB, Sex.FEMALE, 12.4, False),
        (US_2026, WB, Sex.MALE, 12.9, False),
        (US_2026, WB, Sex.MALE, 13.0, True),
        (US_2026, DRC, Sex.MALE, 13.2, False),
        (UK_2026, WB, Sex.MALE, 13.4, False),  # 135 g/L
        (UK_2026, WB, Sex.MALE, 13.5, True),
        (UK_2026, WB, Sex.FEMALE, 12.5, True),  # 125 g/L
        (UK_2026, WB, None, 13.0, False),  # unknown sex: the stricter minimum
    ],
)
def test_haemoglobin_minimums_at_donation(rules, kind, sex, hb, eligible) -> None:  # type: ignore[no-untyped-def]
    verdict = assess(rules, facts(sex=sex, weight_kg=80), NOW, kind, haemoglobin_g_dl=hb)
    assert verdict.eligible is eligible, verdict.reasons
    if not eligible:
        assert "haemoglobin" in verdict.reasons[0]


def _deferral(ends: date | None, types: frozenset[DonationType] = frozenset(DonationType)) -> Deferral:
    return Deferral(
        id="d1",
        reason=DeferralReason.RECENT_TRAVEL,
        starts_on=date(2026, 11, 1),
        ends_on=ends,
        recorded_by="staff-1",
        recorded_at=NOW,
        donation_types=types,
        note="Malaria area; private note",
    )


def test_temporary_deferral_until_its_end_date() -> None:
    verdict = assess(US_2026, facts(deferrals=[_deferral(date(2027, 1, 10))]), NOW, WB)
    assert not verdict.eligible
    assert verdict.next_eligible_at == datetime(2027, 1, 10, tzinfo=UTC)
    assert verdict.reasons == ("deferred until 2027-01-10 (recent travel)",)
    assert "Malaria" not in " ".join(verdict.reasons)  # staff notes never reach the reasons
    later = NOW.replace(year=2027, month=1, day=10)
    assert assess(US_2026, facts(deferrals=[_deferral(date(2027, 1, 10))]), later, WB).eligible


def test_permanent_deferral_has_no_next_date() -> None:
    verdict = assess(US_2026, facts(deferrals=[_deferral(None)]), NOW, PLT)
    assert not verdict.eligible
    assert verdict.next_eligible_at is None
    assert verdict.reasons == ("permanently deferred (recent travel)",)


def test_deferral_of_some_types_only() -> None:
    deferred = facts(deferrals=[_deferral(date(2027, 1, 10), frozenset({PLT}))])
    assert assess(US_2026, deferred, NOW, WB).eligible
    assert not assess(US_2026, deferred, NOW, PLT).eligible


def test_missing_facts_are_reasons() -> None:
    verdict = assess(US_2026, facts(date_of_birth=None, weight_kg=None), NOW, WB)
    assert not verdict.eligible
    assert verdict.next_eligible_at is None
    assert set(verdict.reasons) == {"date of birth is not recorded", "weight is not recorded"}


def test_several_waits_give_the_latest_date() -> None:
    verdict = assess(US_2026, facts((WB, 50), deferrals=[_deferral(date(2026, 12, 1))]), NOW, WB)
    assert len(verdict.reasons) == 2
    # The interval ends on 28 November; the deferral on 1 December, which is the later.
    assert verdict.next_eligible_at == datetime(2026, 12, 1, tzinfo=UTC)


def test_assess_all_answers_every_type() -> None:
    answers = assess_all(US_2026, facts((WB, 10)), NOW)
    assert [a.donation_type for a in answers] == list(DonationType)
    assert {a.donation_type: a.eligible for a in answers} == {WB: False, DRC: False, PLT: True, PLA: False}
