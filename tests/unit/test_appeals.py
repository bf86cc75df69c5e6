"""Donor appeals on a shortage: who can help (table-driven), and the service around it, on fakes."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta

import pytest

from bloodbank.adapters.sns import alert_document
from bloodbank.cursor import CursorCodec
from bloodbank.domain.alerts import Announced, ShortageAlert, alert_from_document
from bloodbank.domain.appeals import (
    APPEAL_DONATION_TYPES,
    StopReason,
    appeal_groups,
    donation_type_within,
    facts_of,
    opted_in,
    why_stop,
)
from bloodbank.domain.blood import BloodGroup, Component
from bloodbank.domain.donations import DonationType
from bloodbank.domain.donors import Donor, Personal
from bloodbank.domain.eligibility import (
    UK_2026,
    US_2026,
    Deferral,
    DeferralReason,
    PastDonation,
    RuleSet,
    Sex,
)
from bloodbank.domain.inventory import LevelKey, StockStatus
from bloodbank.domain.lazy import Lazy
from bloodbank.domain.notifications import (
    Channel,
    NotificationKind,
    NotificationPreferences,
    OutgoingMessage,
)
from bloodbank.fakes import (
    FixedClock,
    InMemoryAnnouncedLevels,
    InMemoryAppealLedger,
    InMemoryDirectory,
    InMemoryDonations,
    InMemoryDonorRepository,
    InMemoryInventory,
    InMemoryNotificationLedger,
    RecordingNotifier,
)
from bloodbank.local import seed
from bloodbank.services.appeals import AppealPosition, AppealReport, AppealService
from bloodbank.services.notifications import NotificationService
from tests.conftest import PAGE_SECRET

G = BloodGroup
C = Component
T = DonationType
NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
CONSENTED = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
NORTH, SOUTH, LONDON = "site-north", "site-south", "site-london"
NORTH_NAME = "Northgate Blood Centre"


# --- compatibility: who can replenish which component ------------------------------------------
@pytest.mark.parametrize(
    ("component", "short", "donors"),
    [
        (C.RED_CELLS, G.O_NEG, (G.O_NEG,)),
        (C.RED_CELLS, G.AB_POS, (G.AB_POS,)),
        (C.WHOLE_BLOOD, G.A_POS, (G.A_POS,)),
        (C.WHOLE_BLOOD, G.B_NEG, (G.B_NEG,)),
        (C.PLATELETS, G.O_POS, (G.O_POS,)),
        (C.PLATELETS, G.A_NEG, (G.A_NEG,)),
        (C.PLASMA, G.AB_POS, (G.AB_POS, G.AB_NEG)),
        (C.PLASMA, G.AB_NEG, (G.AB_NEG, G.AB_POS)),
        (C.PLASMA, G.O_NEG, (G.O_NEG, G.O_POS)),
        (C.CRYO, G.A_POS, (G.A_POS, G.A_NEG)),
        (C.CRYO, G.B_NEG, (G.B_NEG, G.B_POS)),
    ],
)
def test_which_donor_groups_are_asked(component: Component, short: BloodGroup, donors: tuple[G, ...]) -> None:
    assert appeal_groups(component, short) == donors


@pytest.mark.parametrize("component", list(Component))
@pytest.mark.parametrize("short", list(BloodGroup))
def test_every_component_and_group_asks_its_own_group_first_and_only_its_abo(
    component: Component, short: BloodGroup
) -> None:
    groups = appeal_groups(component, short)
    assert groups[0] is short
    assert len(set(groups)) == len(groups)
    assert {g.value.split("_")[0] for g in groups} == {short.value.split("_")[0]}
    exact = component in (C.RED_CELLS, C.WHOLE_BLOOD, C.PLATELETS)
    assert len(groups) == (1 if exact else 2)


@pytest.mark.parametrize(
    ("component", "types"),
    [
        (C.RED_CELLS, (T.WHOLE_BLOOD, T.DOUBLE_RED_CELLS)),
        (C.WHOLE_BLOOD, (T.WHOLE_BLOOD,)),
        (C.PLATELETS, (T.PLATELETS,)),
        (C.PLASMA, (T.PLASMA, T.WHOLE_BLOOD)),
        (C.CRYO, (T.WHOLE_BLOOD, T.PLASMA)),
    ],
)
def test_which_donation_types_make_a_component(component: Component, types: tuple[T, ...]) -> None:
    assert APPEAL_DONATION_TYPES[component] == types


# --- eligibility within the window -------------------------------------------------------------
PERMANENT = Deferral(
    "d1", DeferralReason.TEST_RESULT, date(2026, 1, 1), None, "staff", datetime(2026, 1, 1, tzinfo=UTC)
)
PLATELETS_ONLY_PERMANENT = replace(PERMANENT, donation_types=frozenset({T.PLATELETS}))
SHORT_DEFERRAL = replace(PERMANENT, ends_on=date(2026, 11, 25))  # 3 days after NOW (22 Nov)
LONG_DEFERRAL = replace(PERMANENT, ends_on=date(2026, 12, 20))


@dataclass(frozen=True)
class Case:
    component: Component
    last: tuple[T, int] | None = None  # (type, days ago) of the last donation
    deferral: Deferral | None = None
    rules: RuleSet = US_2026
    sex: Sex | None = Sex.MALE
    born: date | None = date(1990, 5, 1)
    weight: float | None = 75.0


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        (Case(C.RED_CELLS), T.WHOLE_BLOOD),  # never donated: eligible now
        (Case(C.RED_CELLS, (T.WHOLE_BLOOD, 50)), T.WHOLE_BLOOD),  # 56-day interval ends in 6 days
        (Case(C.RED_CELLS, (T.WHOLE_BLOOD, 40)), None),  # ends in 16 days: outside the window
        (Case(C.RED_CELLS, (T.PLATELETS, 2)), T.WHOLE_BLOOD),  # 7 days after platelets: in 5 days
        (Case(C.WHOLE_BLOOD, (T.DOUBLE_RED_CELLS, 100)), None),  # 112 days after double red cells
        (Case(C.WHOLE_BLOOD, (T.DOUBLE_RED_CELLS, 106)), T.WHOLE_BLOOD),
        (Case(C.PLASMA, (T.WHOLE_BLOOD, 40)), T.PLASMA),  # 28 days after whole blood: plasma now
        (Case(C.PLASMA, (T.PLASMA, 10)), None),  # 28 days after plasma, for either type
        (Case(C.PLATELETS, (T.WHOLE_BLOOD, 3)), T.PLATELETS),  # 7 days after whole blood: in 4 days
        (Case(C.PLATELETS, (T.PLASMA, 3)), None),  # 28 days after plasma
        (Case(C.CRYO, (T.WHOLE_BLOOD, 30)), T.PLASMA),  # whole blood in 26 days, plasma now
        (Case(C.RED_CELLS, deferral=PERMANENT), None),  # permanently deferred: never asked
        (Case(C.PLASMA, deferral=PERMANENT), None),
        (Case(C.RED_CELLS, deferral=PLATELETS_ONLY_PERMANENT), T.WHOLE_BLOOD),  # not from red cells
        (Case(C.PLATELETS, deferral=PLATELETS_ONLY_PERMANENT), None),
        (Case(C.RED_CELLS, deferral=SHORT_DEFERRAL), T.WHOLE_BLOOD),  # ends within the window
        (Case(C.RED_CELLS, deferral=LONG_DEFERRAL), None),
        (Case(C.RED_CELLS, born=None), None),  # nothing can be foreseen without a date of birth
        (Case(C.RED_CELLS, weight=None), None),
        (Case(C.RED_CELLS, born=date(2009, 11, 25)), T.WHOLE_BLOOD),  # turns 17 in 3 days
        (Case(C.RED_CELLS, born=date(2010, 1, 25)), None),  # turns 17 in two months
        (Case(C.RED_CELLS, (T.WHOLE_BLOOD, 80), rules=UK_2026), T.WHOLE_BLOOD),  # UK men: 84 days
        (Case(C.RED_CELLS, (T.WHOLE_BLOOD, 80), rules=UK_2026, sex=Sex.FEMALE), None),  # 112 days
    ],
)
def test_eligible_now_or_within_the_window(case: Case, expected: T | None) -> None:
    history = () if case.last is None else (PastDonation(case.last[0], NOW - timedelta(days=case.last[1])),)
    donor = make_donor(
        "d", born=case.born, weight=case.weight, sex=case.sex, recent=history, deferrals=_opt(case.deferral)
    )
    chosen = donation_type_within(case.rules, facts_of(donor), NOW, case.component, timedelta(days=7))
    assert chosen is expected


def _opt(deferral: Deferral | None) -> tuple[Deferral, ...]:
    return () if deferral is None else (deferral,)


@pytest.mark.parametrize(
    ("preferences", "expected"),
    [
        (NotificationPreferences(CONSENTED, frozenset(Channel)), True),
        (NotificationPreferences(None, frozenset(Channel)), False),  # no consent
        (NotificationPreferences(CONSENTED, frozenset()), False),  # no channel
        (
            NotificationPreferences(
                CONSENTED, frozenset(Channel), frozenset(NotificationKind) - {NotificationKind.APPEAL}
            ),
            False,
        ),
    ],
)
def test_opted_in(preferences: NotificationPreferences, expected: bool) -> None:
    assert opted_in(preferences) is expected


RED, AMBER, GREEN = StockStatus.RED, StockStatus.AMBER, StockStatus.GREEN


@pytest.mark.parametrize(
    ("alert_status", "announced", "expected"),
    [
        (RED, Announced(RED, NOW, 1), None),
        (AMBER, Announced(AMBER, NOW, 1), None),
        (GREEN, Announced(GREEN, NOW, 1), StopReason.NOT_A_SHORTAGE),
        (RED, Announced(GREEN, NOW + timedelta(hours=1), 2), StopReason.SHORTAGE_ENDED),
        (AMBER, Announced(RED, NOW + timedelta(hours=1), 2), StopReason.SUPERSEDED),
        (RED, Announced(AMBER, NOW + timedelta(hours=1), 2), StopReason.SUPERSEDED),
    ],
)
def test_when_an_appeal_stops(
    alert_status: StockStatus, announced: Announced, expected: StopReason | None
) -> None:
    alert = ShortageAlert("a1", NORTH, G.O_NEG, C.RED_CELLS, alert_status, GREEN, 0, 4, None, NOW)
    assert why_stop(alert, announced) is expected


# --- the alert document, back from the alerts topic -------------------------------------------
def test_an_alert_round_trips_through_its_published_document() -> None:
    alert = ShortageAlert(
        "alert-1", NORTH, G.AB_NEG, C.PLASMA, AMBER, GREEN, 3, 10, 1.5, NOW + timedelta(microseconds=7)
    )
    assert alert_from_document(alert_document(alert)) == alert
    no_rate = replace(alert, days_of_supply=None)
    assert alert_from_document(alert_document(no_rate)) == no_rate


@pytest.mark.parametrize(
    "broken",
    [
        {"id": None},
        {"bloodGroup": "O"},
        {"status": "PURPLE"},
        {"available": "3"},
        {"raisedAt": "yesterday"},
        {"daysOfSupply": "many"},
    ],
)
def test_a_broken_alert_document_is_refused(broken: dict[str, object]) -> None:
    alert = ShortageAlert("alert-1", NORTH, G.O_NEG, C.RED_CELLS, RED, GREEN, 0, 4, None, NOW)
    with pytest.raises(ValueError):  # noqa: PT011 - any broken field is a ValueError
        alert_from_document({**alert_document(alert), **broken})
    document = alert_document(alert)
    del document["siteId"]
    with pytest.raises(ValueError, match="siteId"):
        alert_from_document(document)


# --- the service -------------------------------------------------------------------------------
def make_donor(
    donor_id: str,
    group: BloodGroup | None = G.O_NEG,
    site: str = NORTH,
    *,
    channels: Sequence[Channel] = (Channel.SMS, Channel.EMAIL),
    consented: datetime | None = CONSENTED,
    kinds: frozenset[NotificationKind] = frozenset(NotificationKind),
    phone: str | None = "+13125550100",
    born: date | None = date(1990, 5, 1),
    weight: float | None = 75.0,
    sex: Sex | None = Sex.MALE,
    recent: tuple[PastDonation, ...] = (),
    deferrals: tuple[Deferral, ...] = (),
) -> Donor:
    return Donor(
        id=donor_id,
        first_name=f"Given{donor_id}",
        last_name=f"Family{donor_id}",
        email=f"{donor_id}@example.org",
        blood_group=group,
        site_id=site,
        created_at=CONSENTED,
        updated_at=CONSENTED,
        version=1,
        sex=sex,
        preferences=NotificationPreferences(consented, frozenset(channels), kinds),
        donation_count=len(recent),
        last_donation_at=recent[-1].collected_at if recent else None,
        recent_donations=recent,
        private=Lazy(Personal(date_of_birth=born, phone=phone, weight_kg=weight, deferrals=deferrals)),
    )


class Env:
    """An AppealService on fakes, with the fakes to arrange and inspect."""

    def __init__(self, page_size: int = 2) -> None:
        cursors = CursorCodec(PAGE_SECRET)
        self.clock = FixedClock(NOW)
        self.directory = InMemoryDirectory(site_list=list(seed.SITES))
        self.donors = InMemoryDonorRepository(self.directory, cursors)
        self.inventory = InMemoryInventory(InMemoryDonations(self.donors, cursors), cursors)
        self.levels = InMemoryAnnouncedLevels(self.inventory)
        self.claims = InMemoryAppealLedger()
        self.notifier = RecordingNotifier()
        self.sent_ledger = InMemoryNotificationLedger()
        self.notifications = NotificationService(self.notifier, self.sent_ledger, self.clock)
        self.service = AppealService(
            donors=self.donors,
            directory=self.directory,
            ledger=self.claims,
            levels=self.levels,
            notifications=self.notifications,
            clock=self.clock,
            page_size=page_size,
        )
        self._ids = 0

    def add(self, *donors: Donor) -> None:
        for d in donors:
            self.donors.create(d)

    def alert(
        self,
        status: StockStatus = RED,
        component: Component = C.RED_CELLS,
        group: BloodGroup = G.O_NEG,
        site: str = NORTH,
    ) -> ShortageAlert:
        """An alert raised now, and announced on its level as the alert service does."""
        self._ids += 1
        key = LevelKey(site, group, component)
        previous = self.inventory.announced.get(key)
        alert = ShortageAlert(
            f"alert-{self._ids}",
            site,
            group,
            component,
            status,
            previous.status if previous else GREEN,
            0,
            4,
            None,
            self.clock(),
        )
        self.inventory.announced[key] = Announced(
            status, alert.raised_at, (previous.version if previous else 0) + 1
        )
        return alert

    def appealed(self) -> list[str]:
        """Donors messaged, in order, once each."""
        return list(dict.fromkeys(m.donor_id for m in self.notifier.sent))

    def donor_queries(self) -> list[object]:
        return [arg for name, arg in self.donors.calls if name == "list"]


@pytest.fixture
def env() -> Env:
    return Env()


def _counts(report: AppealReport) -> dict[str, object]:
    counts = report.counts()
    del counts["alert"]
    return {k: v for k, v in counts.items() if v not in (0, None)}


def test_compatible_eligible_opted_in_donors_of_the_site_are_asked(env: Env) -> None:
    env.add(
        make_donor("n1"),
        make_donor("n2", channels=(Channel.EMAIL,)),
        make_donor("n3", G.O_POS),  # another group
        make_donor("s1", site=SOUTH),  # another site
        make_donor("n4", None),  # not typed yet
    )
    report = env.service.appeal(env.alert())
    assert env.appealed() == ["n1", "n2"]
    assert _counts(report) == {"considered": 2, "sent": 2, "pages": 1, "stopped_because": "COMPLETED"}
    assert sorted((m.donor_id, m.channel.value) for m in env.notifier.sent) == [
        ("n1", "EMAIL"),
        ("n1", "SMS"),
        ("n2", "EMAIL"),
    ]
    for m in env.notifier.sent:
        assert m.kind is NotificationKind.APPEAL
        assert m.key.startswith("APPEAL#alert-1#")
        assert NORTH_NAME in m.text
        assert "whole blood" in m.text
    # One Query of the site's O_NEG donors (pattern 7), nothing wider.
    assert env.donor_queries() == [
        '["and",[["site_id","eq","site-north"],["blood_group","eq","O_NEG"]]]',
    ]


def test_a_plasma_shortage_asks_both_rhd_groups_one_query_each(env: Env) -> None:
    env.add(make_donor("p1", G.AB_POS), make_donor("n1", G.AB_NEG), make_donor("a1", G.A_POS))
    report = env.service.appeal(env.alert(component=C.PLASMA, group=G.AB_POS))
    assert env.appealed() == ["p1", "n1"]
    assert report.sent == 2
    assert env.donor_queries() == [
        '["and",[["site_id","eq","site-north"],["blood_group","eq","AB_POS"]]]',
        '["and",[["site_id","eq","site-north"],["blood_group","eq","AB_NEG"]]]',
    ]
    assert all("plasma" in m.text for m in env.notifier.sent)


def test_donors_not_opted_in_are_skipped(env: Env) -> None:
    env.add(
        make_donor("c1", consented=None),
        make_donor("c2", kinds=frozenset(NotificationKind) - {NotificationKind.APPEAL}),
        make_donor("c3", channels=()),
        make_donor("c4", channels=(Channel.SMS,), phone=None),  # SMS only, no phone to send to
        make_donor("ok"),
    )
    report = env.service.appeal(env.alert())
    assert env.appealed() == ["ok"]
    assert report.skipped_not_opted_in == 4
    assert report.sent == 1
    assert set(env.claims.records) == {"ok"}  # nobody else was claimed


def test_donors_ineligible_within_the_window_are_skipped(env: Env) -> None:
    env.add(
        make_donor("recent", recent=(PastDonation(T.WHOLE_BLOOD, NOW - timedelta(days=20)),)),
        make_donor("soon", recent=(PastDonation(T.WHOLE_BLOOD, NOW - timedelta(days=52)),)),
        make_donor("deferred", deferrals=(PERMANENT,)),
        make_donor("unknown", born=None),
    )
    report = env.service.appeal(env.alert())
    assert env.appealed() == ["soon"]
    assert report.skipped_ineligible == 3
    assert "deferred" not in env.claims.records


def test_the_appeal_window_is_configurable(env: Env) -> None:
    env.add(make_donor("soon", recent=(PastDonation(T.WHOLE_BLOOD, NOW - timedelta(days=52)),)))
    env.service.window = timedelta(days=2)  # eligible in 4 days: too late now
    assert env.service.appeal(env.alert()).skipped_ineligible == 1
    env.service.window = timedelta(days=5)
    assert env.service.appeal(env.alert()).sent == 1


def test_one_appeal_per_donor_per_period(env: Env) -> None:
    env.add(make_donor("d1"), make_donor("d2"))
    assert env.service.appeal(env.alert()).sent == 2
    env.clock.advance(days=13)  # another shortage of the site 13 days later: not again
    second = env.service.appeal(env.alert(component=C.WHOLE_BLOOD))
    assert second.skipped_recently_appealed == 2
    assert second.sent == 0
    assert len(env.notifier.sent) == 4
    env.clock.advance(days=1, seconds=1)  # 14 days after the first appeal (rolling, not by week)
    third = env.service.appeal(env.alert(component=C.PLATELETS))
    assert third.sent == 2
    assert {m.key.split("#")[1] for m in env.notifier.sent} == {"alert-1", "alert-3"}


def test_the_period_is_configurable(env: Env) -> None:
    env.add(make_donor("d1"))
    env.service.period = timedelta(days=3)
    env.service.appeal(env.alert())
    env.clock.advance(days=2)
    assert env.service.appeal(env.alert(component=C.WHOLE_BLOOD)).skipped_recently_appealed == 1
    env.clock.advance(days=1, seconds=1)
    assert env.service.appeal(env.alert(component=C.PLATELETS)).sent == 1


def test_a_retried_alert_sends_nothing_twice(env: Env) -> None:
    env.add(make_donor("d1"), make_donor("d2"), make_donor("d3"))
    alert = env.alert()
    assert env.service.appeal(alert).sent == 3
    env.clock.advance(minutes=5)
    again = env.service.appeal(alert)
    assert (again.sent, again.already_sent, again.skipped_recently_appealed) == (0, 3, 0)
    assert len(env.notifier.sent) == 6  # 3 donors x 2 channels, once each


def test_a_send_that_fails_entirely_releases_the_claim(env: Env) -> None:
    env.add(make_donor("d1"))
    alert = env.alert()
    env.notifier.fail_next = 2  # SMS and e-mail both fail
    report = env.service.appeal(alert)
    assert (report.sent, report.failed) == (0, 1)
    assert env.claims.records == {}
    assert ("release", "d1", "alert-1", True) in env.claims.calls
    # A retry (of this alert, or another alert) reaches the donor.
    retried = env.service.appeal(alert)
    assert retried.sent == 1
    assert sorted(m.channel.value for m in env.notifier.sent) == ["EMAIL", "SMS"]


def test_a_partly_failed_send_keeps_the_claim_and_a_retry_sends_only_what_is_missing(env: Env) -> None:
    env.add(make_donor("d1"))
    alert = env.alert()
    env.notifier.fail_next = 1  # the SMS fails, the e-mail goes
    report = env.service.appeal(alert)
    assert (report.sent, report.failed) == (1, 0)
    assert [m.channel for m in env.notifier.sent] == [Channel.EMAIL]
    assert env.claims.records["d1"].alert_id == "alert-1"
    # Another alert does not reach the donor again, but a retry of this one completes the SMS.
    assert env.service.appeal(env.alert(component=C.WHOLE_BLOOD)).skipped_recently_appealed == 1
    assert env.service.appeal(alert).sent == 1
    assert sorted(m.channel.value for m in env.notifier.sent) == ["EMAIL", "SMS"]


def test_a_donor_whose_claim_cannot_be_written_is_counted_and_the_others_go_on(env: Env) -> None:
    env.add(make_donor("d1"), make_donor("d2"))
    env.claims.unavailable = True
    report = env.service.appeal(env.alert())
    assert (report.failed, report.sent, report.considered) == (2, 0, 2)
    assert env.notifier.sent == []


class FlippingNotifier(RecordingNotifier):
    """Runs ``then`` once ``after`` messages were sent (the level changes while the appeal runs)."""

    def __init__(self, after: int, then: Callable[[], None]) -> None:
        super().__init__()
        self.after, self.then = after, then

    def send(self, message: OutgoingMessage) -> str:
        message_id = super().send(message)
        if len(self.sent) == self.after:
            self.then()
        return message_id


def _with_notifier(env: Env, notifier: RecordingNotifier) -> None:
    env.notifier = notifier
    env.service.notifications = NotificationService(notifier, env.sent_ledger, env.clock)


def test_the_appeal_stops_when_the_level_is_green_again(env: Env) -> None:
    env.add(*(make_donor(f"d{n}", channels=(Channel.EMAIL,)) for n in range(5)))
    alert = env.alert()
    key = LevelKey(NORTH, G.O_NEG, C.RED_CELLS)

    def recover() -> None:
        env.clock.advance(minutes=40)
        env.inventory.announced[key] = Announced(GREEN, env.clock(), 2)

    _with_notifier(env, FlippingNotifier(2, recover))  # the first page (2 donors) is sent
    report = env.service.appeal(alert)
    assert report.stopped_because is StopReason.SHORTAGE_ENDED
    assert (report.pages, report.sent) == (1, 2)
    assert env.appealed() == ["d0", "d1"]
    assert len(env.levels.reads) == 2  # before each page


def test_the_appeal_stops_when_a_newer_alert_supersedes_it(env: Env) -> None:
    env.add(*(make_donor(f"d{n}", channels=(Channel.EMAIL,)) for n in range(5)))
    amber = env.alert(AMBER)
    newer: list[ShortageAlert] = []

    def worse() -> None:
        env.clock.advance(minutes=10)
        newer.append(env.alert(RED))

    _with_notifier(env, FlippingNotifier(4, worse))
    report = env.service.appeal(amber)
    assert report.stopped_because is StopReason.SUPERSEDED
    assert report.sent == 4
    # The RED alert's own appeal asks the rest, not those the AMBER one reached.
    red = env.service.appeal(newer[0])
    assert (red.sent, red.skipped_recently_appealed) == (1, 4)
    assert len(env.appealed()) == 5
    assert len(env.notifier.sent) == 5


def test_a_late_alert_of_a_level_already_green_asks_nobody(env: Env) -> None:
    env.add(make_donor("d1"))
    alert = env.alert()
    env.inventory.announced[LevelKey(NORTH, G.O_NEG, C.RED_CELLS)] = Announced(
        GREEN, NOW + timedelta(hours=1), 2
    )
    report = env.service.appeal(alert)
    assert report.stopped_because is StopReason.SHORTAGE_ENDED
    assert (report.pages, report.considered) == (0, 0)
    assert env.notifier.sent == []


def test_a_green_alert_asks_nobody(env: Env) -> None:
    env.add(make_donor("d1"))
    env.alert(RED)
    env.clock.advance(hours=1)
    report = env.service.appeal(env.alert(GREEN))
    assert report.stopped_because is StopReason.NOT_A_SHORTAGE
    assert env.notifier.sent == []
    assert env.donor_queries() == []
    assert env.levels.reads == []


def test_the_appeal_stops_before_the_deadline_and_resumes_where_it_stopped(env: Env) -> None:
    env.add(*(make_donor(f"d{n}", channels=(Channel.EMAIL,)) for n in range(5)))
    alert = env.alert()
    ticks = iter([60.0] * 5 + [9.0] * 100)  # 60 s left for five checks, then under the 10 s reserve
    report = env.service.appeal(alert, remaining_seconds=lambda: next(ticks))
    assert report.stopped_because is StopReason.DEADLINE
    assert report.sent == 3
    assert report.resume_at is not None
    assert report.resume_at.group is G.O_NEG
    assert report.resume_at.next_token is not None  # the second page
    resumed = env.service.appeal(alert, remaining_seconds=lambda: 60.0, start=report.resume_at)
    assert resumed.stopped_because is StopReason.COMPLETED
    # The resumed run reads that page again: the donor sent already is not sent twice.
    assert (resumed.sent, resumed.already_sent) == (2, 1)
    assert env.appealed() == [f"d{n}" for n in range(5)]
    assert len(env.notifier.sent) == 5


def test_a_resume_position_of_a_group_not_asked_is_refused(env: Env) -> None:
    with pytest.raises(ValueError, match="A_POS"):
        env.service.appeal(env.alert(), start=AppealPosition(G.A_POS))


def test_an_alert_of_an_unknown_site_asks_nobody(env: Env) -> None:
    env.add(make_donor("d1"))
    report = env.service.appeal(env.alert(site="site-nowhere"))
    assert report.stopped_because is StopReason.UNKNOWN_SITE
    assert env.notifier.sent == []


def test_uk_rules_apply_at_a_uk_site(env: Env) -> None:
    eighty_days = (PastDonation(T.WHOLE_BLOOD, NOW - timedelta(days=80)),)
    env.add(
        make_donor("man", site=LONDON, sex=Sex.MALE, recent=eighty_days, phone="+447700900123"),
        make_donor("woman", site=LONDON, sex=Sex.FEMALE, recent=eighty_days, phone="+447700900124"),
    )
    report = env.service.appeal(env.alert(site=LONDON))
    assert env.appealed() == ["man"]  # 84 days for men, 112 for women
    assert report.skipped_ineligible == 1


def test_logs_carry_ids_and_counts_but_no_personal_data(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    env.add(make_donor("d1"), make_donor("d2"))
    env.notifier.fail_next = 1
    with caplog.at_level(logging.DEBUG):
        env.service.appeal(env.alert())
    assert any(r.name == "bloodbank.appeals" for r in caplog.records)
    for record in caplog.records:
        shown = f"{record.getMessage()} {record.__dict__}"
        for secret in ("Givend1", "Familyd1", "d1@example.org", "+13125550100", NORTH_NAME):
            assert secret not in shown
