"""Campaign sending over the fakes: exactly once through crashes, duplicate jobs, throttling, pauses,
quotas and expiry; SES events move recipients once in any order and suppress; the guardrails."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bloodbank.cursor import CursorCodec
from bloodbank.domain import deliveries
from bloodbank.domain.campaigns import (
    BounceType,
    CampaignStatus,
    DeliveryEvent,
    DeliveryEventKind,
    PauseReason,
    SuppressionReason,
    address_key,
)
from bloodbank.domain.deliveries import Stage
from bloodbank.domain.email_templates import new_template, validate_new
from bloodbank.domain.identity import Group, Identity
from bloodbank.domain.recipients import ImportCounts, ListMember, ListStatus, RecipientList
from bloodbank.errors import BadUserInput, Forbidden
from bloodbank.fakes import (
    FixedClock,
    InMemoryCampaigns,
    InMemoryEmailTemplates,
    InMemoryRecipientLists,
    InMemorySuppressions,
    RecordingMailer,
    RecordingQueue,
    SequentialIds,
)
from bloodbank.services.campaigns import CampaignService, Sending
from bloodbank.services.pacing import Pacer

STAFF = Identity("staff-1", "staff-1", frozenset({Group.STAFF}), "access")
DONOR = Identity("donor-1", "donor-1", frozenset({Group.DONORS}), "access")
SECRET = "a-page-token-secret-that-is-long-enough-0123"


class FakeTime:
    """Seconds for the pacer: sleeping moves it on, so tests never wait."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.slept += seconds


@dataclass
class Rig:
    service: CampaignService
    store: InMemoryCampaigns
    queue: RecordingQueue
    mailer: RecordingMailer
    suppressions: InMemorySuppressions
    lists: InMemoryRecipientLists
    templates: InMemoryEmailTemplates
    clock: FixedClock
    time: FakeTime

    def campaign(self, members: int, *, template: str = "t1", **values: Any) -> str:
        list_id = f"list-{len(self.lists.lists) + 1}"
        now = self.clock()
        self.lists.create(
            RecipientList(
                list_id, "Donors", ListStatus.READY, ("first_name",), ImportCounts(), now, now, "staff-1"
            )
        )
        self.lists.add_members(
            list_id,
            [ListMember(f"donor{n:05d}@example.org", {"first_name": f"Donor {n}"}) for n in range(members)],
        )
        campaign = self.service.create(
            STAFF, {"name": "Winter appeal", "template_id": template, "list_id": list_id, **values}
        )
        return campaign.id

    def run(self) -> None:
        self.queue.drain(self.service.handle)

    def status(self, campaign_id: str) -> CampaignStatus:
        found = self.store.get(campaign_id)
        assert found is not None
        return found.status

    def each_sent_once(self, members: int) -> None:
        addresses = [e.to for _, e in self.mailer.sent]
        assert len(addresses) == len(set(addresses)), "someone was mailed twice"
        assert sorted(addresses) == [f"donor{n:05d}@example.org" for n in range(members)], (
            "someone was skipped"
        )


def make_rig(mailer: RecordingMailer | None = None, queue: RecordingQueue | None = None) -> Rig:
    clock = FixedClock(datetime(2026, 12, 1, 9, 0, tzinfo=UTC))
    cursors = CursorCodec(SECRET)
    store = InMemoryCampaigns()
    templates = InMemoryEmailTemplates(cursors)
    draft = validate_new(
        {
            "name": "Appeal",
            "subject": "We need you, {{ first_name }}",
            "html": "<p>Hello {{ first_name }}</p><a href='{{ unsubscribe_url }}'>Unsubscribe</a>",
            "text": "Hello {{ first_name }}. Unsubscribe: {{ unsubscribe_url }}",
        }
    )
    templates.create(new_template("t1", draft, clock(), "staff-1"))
    tricky = validate_new(
        {"name": "Needs blood group", "subject": "Hi", "text": "Your group: {{ blood_group }}"}
    )
    templates.create(new_template("t-group", tricky, clock(), "staff-1"))
    lists = InMemoryRecipientLists(cursors)
    suppressions = InMemorySuppressions()
    fake_time = FakeTime()
    mailer = mailer or RecordingMailer()
    queue = queue or RecordingQueue()
    service = CampaignService(
        campaigns=store,
        deliveries=store,
        queue=queue,
        templates=templates,
        lists=lists,
        audience_segments=lambda segment, token, limit: ([], None),
        suppressions=suppressions,
        mailer=mailer,
        sending=Sending(
            "appeals@bloodbank.example",
            "bloodbank",
            lambda c, r: f"https://bloodbank.example/unsubscribe/{c}.{r}",
        ),
        clock=clock,
        new_id=SequentialIds("campaign"),
        pacer=Pacer(14.0, fake_time, fake_time.sleep),
        send_threads=1,  # one at a time: crashes land on a known recipient (integration tests run 8)
    )
    return Rig(service, store, queue, mailer, suppressions, lists, templates, clock, fake_time)


@pytest.fixture
def rig() -> Rig:
    return make_rig()


def event(
    rig: Rig, campaign_id: str, n: int, kind: DeliveryEventKind, bounce: BounceType | None = None
) -> DeliveryEvent:
    email = f"donor{n:05d}@example.org"
    delivery = rig.store.delivery(campaign_id, address_key(email))
    message_id = delivery.message_id if delivery and delivery.message_id else f"ses-{n}"
    return DeliveryEvent(kind, campaign_id, address_key(email), email, message_id, rig.clock(), bounce)


# --- the happy path --------------------------------------------------------------------------------
def test_a_launched_campaign_mails_every_member_once_and_finishes(rig: Rig) -> None:
    campaign_id = rig.campaign(1234)
    assert rig.service.launch(STAFF, campaign_id).status is CampaignStatus.SENDING
    rig.run()
    rig.each_sent_once(1234)
    assert rig.status(campaign_id) is CampaignStatus.SENT
    stats = rig.store.stats(campaign_id)
    assert (stats.recipients, stats.queued, stats.sent) == (1234, 0, 1234)
    _, first = rig.mailer.sent[0]
    assert first.subject.startswith("We need you, Donor")
    assert first.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert first.headers["List-Unsubscribe"].startswith(
        f"<https://bloodbank.example/unsubscribe/{campaign_id}."
    )
    assert first.tags == {"campaign": campaign_id, "recipient": address_key(first.to)}
    assert first.configuration_set == "bloodbank"
    assert f"unsubscribe/{campaign_id}." in first.html  # the template's own link, per recipient


def test_the_pacer_holds_the_send_rate_the_account_reports() -> None:
    rig = make_rig(RecordingMailer(max_send_rate=20.0))
    rig.service.pacer = None  # made from GetSendQuota on the first send
    campaign_id = rig.campaign(5)
    rig.service.launch(STAFF, campaign_id)
    rig.run()
    assert rig.service.pacer is not None
    assert rig.service.pacer.ceiling == 20.0


# --- exactly once --------------------------------------------------------------------------------
@pytest.mark.parametrize("crash_after", [0, 1, 37, 499])
def test_a_crash_after_n_sends_then_a_retry_mails_everyone_exactly_once(crash_after: int) -> None:
    rig = make_rig(RecordingMailer(fail_after=crash_after, failure=SystemExit("the sender died")))
    campaign_id = rig.campaign(600)
    rig.service.launch(STAFF, campaign_id)
    with pytest.raises(SystemExit):
        rig.run()
    rig.mailer.fail_after = None  # a new process: SQS delivers the job again
    rig.run()
    # The recipient the dead sender had claimed (it never reached SES, and no Send event comes) goes
    # back to the queue once the claim is stale.
    rig.clock.advance(minutes=16)
    rig.service.tick()
    rig.run()
    rig.each_sent_once(600)
    assert rig.status(campaign_id) is CampaignStatus.SENT


def test_between_send_and_mark_the_ses_send_event_marks_it_and_nobody_is_mailed_twice() -> None:
    rig = make_rig(RecordingMailer(fail_after=10, fail_after_sending=True, failure=TimeoutError("no reply")))
    campaign_id = rig.campaign(50)
    rig.service.launch(STAFF, campaign_id)
    with pytest.raises(TimeoutError):
        rig.run()  # SES took the 11th message; the sender never heard
    [(message_id, limbo)] = rig.mailer.sent[10:]
    stuck = rig.store.delivery(campaign_id, address_key(limbo.to))
    assert stuck is not None
    assert stuck.stage is Stage.SENDING
    # SES's Send event (tagged with campaign and recipient) arrives through handler.ses_events.
    rig.service.record_event(
        DeliveryEvent(DeliveryEventKind.SEND, campaign_id, stuck.recipient, limbo.to, message_id, rig.clock())
    )
    rig.mailer.fail_after = None
    rig.run()
    rig.clock.advance(minutes=20)
    assert rig.service.tick()["reclaimed"] == 0
    rig.run()
    rig.each_sent_once(50)
    marked = rig.store.delivery(campaign_id, stuck.recipient)
    assert marked is not None
    assert (marked.stage, marked.message_id) == (Stage.SENT, message_id)
    assert rig.status(campaign_id) is CampaignStatus.SENT


def test_a_claim_nothing_marked_goes_back_to_the_queue_after_the_stale_window() -> None:
    """The documented window: the sender died after claiming (here: before SES took it) and no
    Send event came. After STALE_CLAIM the sweep gives the recipient back, and it is mailed once."""
    rig = make_rig(RecordingMailer(fail_after=7, failure=TimeoutError("no reply")))
    campaign_id = rig.campaign(20)
    rig.service.launch(STAFF, campaign_id)
    with pytest.raises(TimeoutError):
        rig.run()
    rig.mailer.fail_after = None
    rig.run()  # the retried job: the claimed recipient is not resent yet
    assert rig.status(campaign_id) is CampaignStatus.SENDING
    assert len(rig.mailer.sent) == 19
    rig.clock.advance(minutes=5)
    assert rig.service.tick()["reclaimed"] == 0  # too early to tell a slow sender from a dead one
    rig.clock.advance(minutes=11)
    assert rig.service.tick()["reclaimed"] == 1
    rig.run()
    rig.each_sent_once(20)
    assert rig.status(campaign_id) is CampaignStatus.SENT


def test_duplicate_sqs_deliveries_send_nothing_twice() -> None:
    rig = make_rig(queue=RecordingQueue(duplicate_every=1))  # every job delivered twice
    campaign_id = rig.campaign(1100)
    rig.service.launch(STAFF, campaign_id)
    rig.run()
    rig.each_sent_once(1100)
    stats = rig.store.stats(campaign_id)
    assert (stats.recipients, stats.sent, stats.queued) == (1100, 1100, 0)


def test_throttling_backs_off_slows_down_and_loses_nothing() -> None:
    rig = make_rig(RecordingMailer(throttle_every=4))
    campaign_id = rig.campaign(300)
    rig.service.launch(STAFF, campaign_id)
    rig.run()
    rig.each_sent_once(300)
    assert rig.mailer.throttled >= 70
    assert rig.time.slept > 0


def test_throttled_for_longer_than_the_backoff_the_job_comes_back_and_nobody_is_lost() -> None:
    rig = make_rig(RecordingMailer(throttle_every=1))  # SES refuses everything for a while
    campaign_id = rig.campaign(30)
    rig.service.launch(STAFF, campaign_id)
    with pytest.raises(Exception, match="every Nth call"):
        rig.run()
    assert rig.store.stats(campaign_id).sent == 0
    assert all(d.stage is Stage.QUEUED for d in rig.store.ledger.values())  # claims given back
    rig.mailer.throttle_every = None
    rig.run()
    rig.each_sent_once(30)


# --- pausing, resuming, expiring, quotas -----------------------------------------------------------
def test_pause_stops_sending_and_resume_sends_the_rest_once(rig: Rig) -> None:
    campaign_id = rig.campaign(400)
    rig.service.launch(STAFF, campaign_id)
    for _ in range(4):  # the materialize job and a few send jobs
        job = rig.queue.jobs.pop(0)
        rig.service.handle(job)
    rig.service.pause(STAFF, campaign_id)
    rig.run()
    sent_before = len(rig.mailer.sent)
    assert 0 < sent_before < 400
    assert rig.status(campaign_id) is CampaignStatus.PAUSED
    assert rig.service.launch(STAFF, campaign_id).status is CampaignStatus.SENDING  # launch resumes
    rig.run()
    rig.each_sent_once(400)
    assert rig.status(campaign_id) is CampaignStatus.SENT


def test_an_expired_campaign_sends_no_more() -> None:
    rig = make_rig()
    expires = rig.clock() + timedelta(hours=1)
    campaign_id = rig.campaign(200, expires_at=expires)
    rig.service.launch(STAFF, campaign_id)
    for _ in range(2):
        rig.service.handle(rig.queue.jobs.pop(0))
    sent = len(rig.mailer.sent)
    rig.clock.advance(hours=2)
    rig.run()
    assert len(rig.mailer.sent) == sent
    assert rig.status(campaign_id) is CampaignStatus.EXPIRED


def test_the_daily_quota_pauses_the_campaign_and_a_resume_finishes_it() -> None:
    rig = make_rig(RecordingMailer(quota=120))
    campaign_id = rig.campaign(300)
    rig.service.launch(STAFF, campaign_id)
    rig.run()
    campaign = rig.store.get(campaign_id)
    assert campaign is not None
    assert (campaign.status, campaign.pause_reason) == (CampaignStatus.PAUSED, PauseReason.DAILY_QUOTA)
    assert len(rig.mailer.sent) == 120
    rig.mailer.quota = None  # a day later
    rig.service.resume(STAFF, campaign_id)
    rig.run()
    rig.each_sent_once(300)


def test_a_scheduled_campaign_starts_when_due(rig: Rig) -> None:
    campaign_id = rig.campaign(10, send_at=rig.clock() + timedelta(hours=3))
    assert rig.service.launch(STAFF, campaign_id).status is CampaignStatus.SCHEDULED
    assert rig.queue.jobs == []
    assert rig.service.tick()["started"] == 0
    rig.clock.advance(hours=3)
    assert rig.service.tick()["started"] == 1
    rig.run()
    rig.each_sent_once(10)


# --- launch checks ---------------------------------------------------------------------------------
def test_launch_refuses_a_template_using_a_variable_the_audience_lacks(rig: Rig) -> None:
    campaign_id = rig.campaign(3, template="t-group")
    with pytest.raises(BadUserInput, match="blood_group"):
        rig.service.launch(STAFF, campaign_id)
    assert rig.status(campaign_id) is CampaignStatus.DRAFT
    assert rig.queue.jobs == []


def test_only_staff_run_campaigns(rig: Rig) -> None:
    with pytest.raises(Forbidden):
        rig.service.create(DONOR, {"name": "x", "template_id": "t1", "list_id": "l"})


def test_create_says_what_is_wrong(rig: Rig) -> None:
    with pytest.raises(BadUserInput) as refused:
        rig.service.create(
            STAFF,
            {"name": "", "template_id": "nope", "send_at": rig.clock() - timedelta(days=1),
             "expires_at": rig.clock() - timedelta(days=2)},
        )  # fmt: skip
    fields = {p.field for p in refused.value.problems}
    assert fields == {"input.name", "input.templateId", "input", "input.sendAt", "input.expiresAt"}


# --- suppression and events ------------------------------------------------------------------------
def test_suppressed_addresses_are_skipped_and_counted(rig: Rig) -> None:
    for n in (3, 5):
        rig.suppressions.suppress(
            address_key(f"donor{n:05d}@example.org"), SuppressionReason.COMPLAINT, rig.clock()
        )
    campaign_id = rig.campaign(10)
    rig.service.launch(STAFF, campaign_id)
    rig.run()
    assert {e.to for _, e in rig.mailer.sent} == {
        f"donor{n:05d}@example.org" for n in range(10) if n not in (3, 5)
    }
    stats = rig.store.stats(campaign_id)
    assert (stats.sent, stats.suppressed, stats.queued) == (8, 2, 0)
    assert rig.status(campaign_id) is CampaignStatus.SENT


def test_hard_bounces_and_complaints_suppress_at_once_and_later_campaigns_skip_them(rig: Rig) -> None:
    first = rig.campaign(10)
    rig.service.launch(STAFF, first)
    rig.run()
    assert rig.service.record_event(event(rig, first, 1, DeliveryEventKind.BOUNCE, BounceType.PERMANENT))
    assert rig.service.record_event(event(rig, first, 2, DeliveryEventKind.COMPLAINT))
    assert rig.service.record_event(event(rig, first, 4, DeliveryEventKind.BOUNCE, BounceType.TRANSIENT))
    assert set(rig.suppressions.entries) == {
        address_key("donor00001@example.org"),
        address_key("donor00002@example.org"),
    }
    rig.mailer.sent.clear()
    second = rig.campaign(10)
    rig.service.launch(STAFF, second)
    rig.run()
    assert {e.to for _, e in rig.mailer.sent} == {
        f"donor{n:05d}@example.org" for n in range(10) if n not in (1, 2)
    }


def test_transient_bounces_suppress_after_the_limit_counted_once_per_campaign(rig: Rig) -> None:
    key = address_key("donor00000@example.org")
    for round_ in range(3):
        campaign_id = rig.campaign(1)
        rig.service.launch(STAFF, campaign_id)
        rig.run()
        bounce = event(rig, campaign_id, 0, DeliveryEventKind.BOUNCE, BounceType.TRANSIENT)
        rig.service.record_event(bounce)
        rig.service.record_event(bounce)  # SNS delivers it again: counted once
        assert (key in rig.suppressions.entries) is (round_ == 2)
    assert rig.suppressions.entries[key][0] is SuppressionReason.TRANSIENT_BOUNCES


def test_events_apply_once_in_any_order(rig: Rig) -> None:
    campaign_id = rig.campaign(3)
    rig.service.launch(STAFF, campaign_id)
    rig.run()
    for kind in (
        DeliveryEventKind.CLICK,
        DeliveryEventKind.OPEN,
        DeliveryEventKind.DELIVERY,
        DeliveryEventKind.SEND,
    ):
        rig.service.record_event(event(rig, campaign_id, 0, kind))
        rig.service.record_event(event(rig, campaign_id, 0, kind))
    rig.service.record_event(event(rig, campaign_id, 1, DeliveryEventKind.DELIVERY))
    rig.service.record_event(event(rig, campaign_id, 1, DeliveryEventKind.COMPLAINT))
    rig.service.record_event(event(rig, campaign_id, 1, DeliveryEventKind.OPEN))
    stats = rig.store.stats(campaign_id)
    assert (stats.sent, stats.delivered, stats.opened, stats.clicked, stats.complained) == (3, 2, 2, 1, 1)
    clicked = rig.store.delivery(campaign_id, address_key("donor00000@example.org"))
    complained = rig.store.delivery(campaign_id, address_key("donor00001@example.org"))
    assert clicked is not None
    assert complained is not None
    assert (clicked.status.value, complained.status.value) == ("CLICKED", "COMPLAINED")


def test_a_bounce_storm_pauses_the_campaign_itself(rig: Rig) -> None:
    campaign_id = rig.campaign(200)
    rig.service.launch(STAFF, campaign_id)
    rig.run()
    for n in range(11):
        rig.service.record_event(event(rig, campaign_id, n, DeliveryEventKind.BOUNCE, BounceType.PERMANENT))
    campaign = rig.store.get(campaign_id)
    assert campaign is not None
    assert campaign.status is CampaignStatus.SENT  # nothing left to pause: it had finished
    # A campaign still sending pauses.
    rig2 = make_rig()
    running = rig2.campaign(300)
    rig2.service.launch(STAFF, running)
    for _ in range(4):
        rig2.service.handle(rig2.queue.jobs.pop(0))
    for n in range(8):
        rig2.service.record_event(event(rig2, running, n, DeliveryEventKind.BOUNCE, BounceType.PERMANENT))
    paused = rig2.store.get(running)
    assert paused is not None
    assert (paused.status, paused.pause_reason) == (CampaignStatus.PAUSED, PauseReason.BOUNCE_RATE)


def test_unsubscribing_marks_the_recipient(rig: Rig) -> None:
    campaign_id = rig.campaign(2)
    rig.service.launch(STAFF, campaign_id)
    rig.run()
    key = address_key("donor00001@example.org")
    rig.service.unsubscribed(campaign_id, key, rig.clock())
    rig.service.unsubscribed(campaign_id, key, rig.clock())
    marked = rig.store.delivery(campaign_id, key)
    assert marked is not None
    assert marked.status.value == "UNSUBSCRIBED"
    assert rig.store.stats(campaign_id).unsubscribed == 1


# --- the ledger's rules ----------------------------------------------------------------------------
def test_a_sent_recipient_is_never_claimed_again() -> None:
    d = deliveries.Delivery("c", "k", "a@example.org")
    claimed = deliveries.claim(d, "t1", datetime(2026, 1, 1, tzinfo=UTC))
    assert claimed is not None
    assert deliveries.claim(claimed.delivery, "t2", datetime(2026, 1, 1, tzinfo=UTC)) is None
    sent = deliveries.mark_sent(claimed.delivery, "t1", "m1", datetime(2026, 1, 1, tzinfo=UTC))
    assert sent is not None
    assert sent.deltas == {Stage.SENT: 1, Stage.QUEUED: -1}
    assert deliveries.claim(sent.delivery, "t3", datetime(2026, 1, 1, tzinfo=UTC)) is None
    assert deliveries.release(sent.delivery, "t1", datetime(2026, 1, 1, tzinfo=UTC)) is None
    assert deliveries.mark_sent(claimed.delivery, "other", "m2", datetime(2026, 1, 1, tzinfo=UTC)) is None
    assert replace(sent.delivery).stage is Stage.SENT


def test_a_pause_racing_a_worker_that_wrote_the_campaign_still_pauses(rig: Rig) -> None:
    campaign_id = rig.campaign(10)
    rig.service.launch(STAFF, campaign_id)
    store = rig.store
    original = store.save
    raced = []

    def worker_first(campaign: Any, previous: Any) -> bool:
        if not raced:  # a worker marks the audience materialized between the read and the write
            raced.append(True)
            current = store.get(campaign.id)
            assert current is not None
            original(replace(current, materialized=True, version=current.version + 1), current)
        return original(campaign, previous)

    store.save = worker_first  # type: ignore[method-assign]
    paused = rig.service.pause(STAFF, campaign_id)
    assert paused.status is CampaignStatus.PAUSED
    stored = store.get(campaign_id)
    assert stored is not None
    assert (stored.status, stored.materialized) == (CampaignStatus.PAUSED, True)
