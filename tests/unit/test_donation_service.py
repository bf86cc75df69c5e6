"""Recording donations, eligibility, deferrals and reminders through the service, with fakes."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta

import pytest

from bloodbank.cursor import CursorCodec
from bloodbank.domain.blood import BloodGroup, Component
from bloodbank.domain.donations import DonationType, UnitStatus
from bloodbank.domain.eligibility import DeferralReason, Sex
from bloodbank.domain.identity import Group, Identity
from bloodbank.domain.isbt import parse_din
from bloodbank.domain.notifications import Contact, NotificationKind, NotificationPreferences
from bloodbank.errors import BadUserInput, Forbidden, NotEligible, NotFound
from bloodbank.fakes import (
    FixedClock,
    InMemoryDirectory,
    InMemoryDonations,
    InMemoryDonorRepository,
    SequentialIds,
)
from bloodbank.local import seed
from bloodbank.services.donations import DonationService
from bloodbank.services.donors import DonorService


def who(*groups: Group, sub: str) -> Identity:
    return Identity(sub=sub, username=sub, groups=frozenset(groups), token_use="access")


STAFF = who(Group.STAFF, sub="staff-1")
DONOR = who(Group.DONORS, sub="donor-sub-1")
OTHER_DONOR = who(Group.DONORS, sub="donor-sub-2")
HOSPITAL = who(Group.HOSPITALS, sub="hospital-user")
START = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


class RecordingNotifications:
    def __init__(self) -> None:
        self.sent: list[tuple[NotificationKind, str, str]] = []
        self.fail = False

    def notify(
        self,
        kind: NotificationKind,
        contact: Contact,
        preferences: NotificationPreferences,
        reference: str,
        facts: Mapping[str, str],
    ) -> list[str]:
        if self.fail:
            raise RuntimeError("SNS is down")
        self.sent.append((kind, contact.donor_id, reference))
        return [f"{kind.value}#{reference}"]


class Setup:
    def __init__(self) -> None:
        self.clock = FixedClock(START)
        directory = InMemoryDirectory(site_list=list(seed.SITES))
        cursors = CursorCodec("x" * 40)
        self.donor_repo = InMemoryDonorRepository(directory, cursors)
        self.store = InMemoryDonations(self.donor_repo, cursors)
        self.notes = RecordingNotifications()
        self.donors = DonorService(self.donor_repo, self.clock, SequentialIds("donor"))
        self.service = DonationService(
            donors=self.donor_repo,
            donations=self.store,
            sequences=self.store,
            units=self.store,
            reminders=self.store,
            directory=directory,
            notifications=self.notes,
            clock=self.clock,
            new_id=SequentialIds("deferral"),
        )

    def donor(
        self, site: str = "site-north", sex: Sex = Sex.FEMALE, group: BloodGroup = BloodGroup.O_NEG
    ) -> str:
        fields = {
            "first_name": "Ann",
            "last_name": "Lee",
            "email": f"ann{len(self.donor_repo.donors)}@example.org",
            "site_id": site,
            "blood_group": group,
            "date_of_birth": date(1990, 1, 2),
            "sex": sex,
            "weight_kg": 70.0,
        }
        return self.donors.register(STAFF, fields).id

    def record(self, donor_id: str, kind: DonationType = DonationType.WHOLE_BLOOD, **extra: object):  # type: ignore[no-untyped-def]
        values = {"donor_id": donor_id, "donation_type": kind, "haemoglobin_g_dl": 13.8, **extra}
        return self.service.record(STAFF, values)


@pytest.fixture
def s() -> Setup:
    return Setup()


def test_recording_a_donation_makes_quarantined_units_with_a_din(s: Setup) -> None:
    donor_id = s.donor()
    recorded = s.record(donor_id)
    din = recorded.donation.din
    assert din == parse_din("W123426000001")  # site-north's facility, 2026, first number
    assert [(u.component, u.status, u.blood_group) for u in recorded.units] == [
        (Component.RED_CELLS, UnitStatus.QUARANTINED, BloodGroup.O_NEG),
        (Component.PLASMA, UnitStatus.QUARANTINED, BloodGroup.O_NEG),
    ]
    assert recorded.units[0].expires_at == START + timedelta(days=42)
    donor = s.donor_repo.donors[donor_id]
    assert (donor.donation_count, donor.last_donation_at, donor.version) == (1, START, 2)
    assert recorded.donation.haemoglobin_g_dl == 13.8
    assert s.notes.sent == [(NotificationKind.DONATION_THANKS, donor_id, din)]
    [reminder] = s.store.reminders.values()
    assert reminder.due_at == START + timedelta(days=56)


def test_dins_follow_the_facility_and_never_repeat(s: Setup) -> None:
    dins = [s.record(s.donor()).donation.din for _ in range(3)]
    assert [d[:13] for d in dins] == ["W123426000001", "W123426000002", "W123426000003"]
    uk = s.record(s.donor(site="site-london")).donation.din
    assert uk[:13] == "G151726000001"


def test_an_ineligible_donor_is_refused_with_reasons_and_nothing_is_written(s: Setup) -> None:
    donor_id = s.donor()
    s.record(donor_id)
    s.clock.advance(days=10)
    before = (
        dict(s.store.donations),
        dict(s.store.units),
        s.donor_repo.donors[donor_id],
        dict(s.store.sequences),
    )
    with pytest.raises(NotEligible) as refused:
        s.record(donor_id)
    assert refused.value.reasons == ("56 days must pass after a whole blood donation (last on 2026-11-22)",)
    assert refused.value.next_eligible_at == (START + timedelta(days=56)).isoformat()
    assert refused.value.extensions()["errorType"] == "DonorNotEligible"
    after = (
        dict(s.store.donations),
        dict(s.store.units),
        s.donor_repo.donors[donor_id],
        dict(s.store.sequences),
    )
    assert after == before  # not even a DIN was used


def test_low_haemoglobin_is_refused(s: Setup) -> None:
    with pytest.raises(NotEligible, match=r"haemoglobin 12.2 g/dL is below the 12.5 g/dL minimum"):
        s.record(s.donor(), haemoglobin_g_dl=12.2)


def test_uk_site_applies_uk_intervals(s: Setup) -> None:
    donor_id = s.donor(site="site-london", sex=Sex.MALE)
    s.record(donor_id)
    s.clock.advance(days=83)
    with pytest.raises(NotEligible, match="84 days"):
        s.record(donor_id)
    s.clock.advance(days=1)
    assert s.record(donor_id).donation.din[:7] == "G151727"  # 84 days on is February 2027


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"haemoglobin_g_dl": 55}, "input.haemoglobinGdl"),
        ({"collected_at": START + timedelta(hours=1)}, "input.collectedAt"),
        ({"collected_at": START - timedelta(days=4)}, "input.collectedAt"),
        ({"weight_kg": 5}, "input.weightKg"),
        ({"components": [Component.WHOLE_BLOOD]}, "input.anticoagulant"),
        ({"site_id": "nowhere"}, "input.siteId"),
    ],
)
def test_bad_input(s: Setup, values: dict[str, object], field: str) -> None:
    with pytest.raises(BadUserInput) as bad:
        s.record(s.donor(), **values)
    assert field in [p.field for p in bad.value.problems]


def test_only_staff_record_and_the_donor_must_exist(s: Setup) -> None:
    with pytest.raises(Forbidden):
        s.service.record(
            DONOR, {"donor_id": "x", "donation_type": DonationType.PLASMA, "haemoglobin_g_dl": 13}
        )
    with pytest.raises(NotFound):
        s.record("no-such-donor")


def test_a_failed_thank_you_does_not_fail_the_donation(s: Setup) -> None:
    s.notes.fail = True
    recorded = s.record(s.donor())
    assert recorded.donation.din in s.store.donations


def test_eligibility_per_type_and_who_may_see_it(s: Setup) -> None:
    donor_id = s.donor()
    s.record(donor_id)
    donor = s.donor_repo.donors[donor_id]
    answers = {e.donation_type: e for e in s.service.eligibility(STAFF, donor)}
    assert not answers[DonationType.WHOLE_BLOOD].eligible
    assert answers[DonationType.PLATELETS].next_eligible_at == START + timedelta(days=7)
    with pytest.raises(Forbidden):
        s.service.eligibility(OTHER_DONOR, donor)
    with pytest.raises(Forbidden):
        s.service.eligibility(HOSPITAL, donor)


def test_history_newest_first_in_pages(s: Setup) -> None:
    donor_id = s.donor()
    for _ in range(3):
        s.record(donor_id, DonationType.PLATELETS)
        s.clock.advance(days=7)
    donor = s.donor_repo.donors[donor_id]
    first = s.service.history(STAFF, donor, 2, None)
    second = s.service.history(STAFF, donor, 2, first.next_token)
    times = [d.collected_at for d in [*first.items, *second.items]]
    assert times == sorted(times, reverse=True)
    assert len(times) == 3
    assert second.next_token is None


def test_deferral_stops_donations_until_it_ends(s: Setup) -> None:
    donor_id = s.donor()
    donor = s.service.defer(
        STAFF,
        {
            "donor_id": donor_id,
            "reason": DeferralReason.TATTOO_OR_PIERCING,
            "ends_on": date(2027, 2, 1),
            "note": "x",
        },
    )
    assert [d.reason for d in donor.deferrals] == [DeferralReason.TATTOO_OR_PIERCING]
    with pytest.raises(NotEligible, match=r"deferred until 2027-02-01 \(tattoo or piercing\)"):
        s.record(donor_id)


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"ends_on": None}, "input.endsOn"),
        ({"permanent": True, "ends_on": date(2027, 1, 1)}, "input.endsOn"),
        ({"ends_on": date(2026, 11, 1)}, "input.endsOn"),
    ],
)
def test_bad_deferrals(s: Setup, values: dict[str, object], field: str) -> None:
    with pytest.raises(BadUserInput) as bad:
        s.service.defer(STAFF, {"donor_id": s.donor(), "reason": DeferralReason.OTHER, **values})
    assert [p.field for p in bad.value.problems] == [field]


def test_eligible_again_reminders_are_sent_once_when_due(s: Setup) -> None:
    donor_id = s.donor()
    din = s.record(donor_id).donation.din
    s.notes.sent.clear()
    s.clock.advance(days=55)
    assert s.service.send_due_reminders() == 0
    s.clock.advance(days=1)
    assert s.service.send_due_reminders() == 1
    assert s.notes.sent == [(NotificationKind.ELIGIBLE_AGAIN, donor_id, din)]
    assert s.service.send_due_reminders() == 0  # handled reminders are gone
    assert s.notes.sent == [(NotificationKind.ELIGIBLE_AGAIN, donor_id, din)]


def test_a_deferred_donor_gets_no_reminder(s: Setup) -> None:
    donor_id = s.donor()
    s.record(donor_id)
    s.service.defer(STAFF, {"donor_id": donor_id, "reason": DeferralReason.ILLNESS, "permanent": True})
    s.notes.sent.clear()
    s.clock.advance(days=57)
    assert s.service.send_due_reminders() == 0
    assert s.notes.sent == []
    assert s.store.reminders == {}


def test_a_failed_reminder_is_kept_for_the_next_run_and_others_still_go(s: Setup) -> None:
    first, second = s.donor(), s.donor()
    s.record(first)
    s.record(second)
    s.clock.advance(days=57)
    s.notes.fail = True
    assert s.service.send_due_reminders() == 0
    assert len(s.store.reminders) == 2  # both kept
    s.notes.fail = False
    assert s.service.send_due_reminders() == 2
    assert s.store.reminders == {}


def test_the_donor_keeps_one_year_of_donations_for_eligibility(s: Setup) -> None:
    donor_id = s.donor()
    for _ in range(15):  # plasma every 30 days: 420 days in all, never more than 13 in 12 months
        s.record(donor_id, DonationType.PLASMA)
        s.clock.advance(days=30)
    donor = s.donor_repo.donors[donor_id]
    assert donor.donation_count == 15
    assert len(donor.recent_donations) == 13  # the first two fell out of the 366-day window
    assert all(
        d.collected_at >= donor.recent_donations[-1].collected_at - timedelta(days=366)
        for d in donor.recent_donations
    )
    assert len(s.store.donations) == 15  # the full history stays in the donations


def test_the_donor_hears_when_their_blood_reaches_a_hospital(s: Setup) -> None:
    recorded = s.record(s.donor())
    s.notes.sent.clear()
    unit = recorded.units[0]
    s.service.notify_unit_issued(unit)
    assert s.notes.sent == [(NotificationKind.BLOOD_ISSUED, unit.donor_id, unit.id)]
