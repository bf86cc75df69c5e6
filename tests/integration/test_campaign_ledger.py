"""The campaign store and send ledger on DynamoDB Local (Amazon's engine): the same promises as the
fake, and exactly once under concurrent senders that each get every job (conditions and
transactions are only trustworthy on a real engine; moto's DynamoDB is not thread-safe)."""

from __future__ import annotations

import queue
import threading
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bloodbank.cursor import CursorCodec
from bloodbank.domain import deliveries
from bloodbank.domain.campaigns import Campaign, CampaignStatus, ListAudience, address_key
from bloodbank.domain.deliveries import Delivery, Stage
from bloodbank.fakes import InMemoryCampaigns
from bloodbank.local import stack
from bloodbank.ports import ChunkMarker
from bloodbank.storage.campaigns import DynamoCampaigns, DynamoDeliveries
from tests.conftest import PAGE_SECRET, REGION
from tests.unit.test_campaign_sending import STAFF, make_rig

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


class Stores:
    def __init__(self, campaigns: object, ledger: object) -> None:
        self.campaigns: Any = campaigns
        self.ledger: Any = ledger


@pytest.fixture(params=["memory", "dynamodb-local"])
def stores(request: pytest.FixtureRequest) -> Iterator[Stores]:
    if request.param == "memory":
        fake = InMemoryCampaigns()
        yield Stores(fake, fake)
        return
    endpoint = request.getfixturevalue("dynamodb_local")
    binding = stack.open_table(endpoint, REGION, f"bloodbank-{uuid.uuid4().hex[:12]}")
    cursors = CursorCodec(PAGE_SECRET)
    yield Stores(DynamoCampaigns(binding, cursors), DynamoDeliveries(binding, cursors))


def a_campaign(**changes: Any) -> Campaign:
    values: dict[str, Any] = {
        "id": f"c-{uuid.uuid4().hex[:8]}",
        "name": "Winter appeal",
        "template_id": "t1",
        "audience": ListAudience("l1"),
        "status": CampaignStatus.DRAFT,
        "created_by": "staff-1",
        "created_at": NOW,
        "updated_at": NOW,
        **changes,
    }
    return Campaign(**values)


def test_campaigns_round_trip_and_save_only_over_the_version_read(stores: Stores) -> None:
    campaign = a_campaign()
    stores.campaigns.create(campaign)
    assert stores.campaigns.get(campaign.id) == campaign
    sending = replace(campaign, status=CampaignStatus.SENDING, version=2)
    assert stores.campaigns.save(sending, campaign)
    assert not stores.campaigns.save(replace(campaign, status=CampaignStatus.PAUSED, version=2), campaign)
    assert stores.campaigns.get(campaign.id) == sending
    page = stores.campaigns.campaigns(CampaignStatus.SENDING, 10, None)
    assert [c.id for c in page.items] == [campaign.id]
    assert stores.campaigns.campaigns(CampaignStatus.DRAFT, 10, None).items == []


def test_due_lists_scheduled_campaigns_whose_time_came(stores: Stores) -> None:
    soon = a_campaign(status=CampaignStatus.SCHEDULED, send_at=NOW + timedelta(minutes=5))
    later = a_campaign(status=CampaignStatus.SCHEDULED, send_at=NOW + timedelta(days=1))
    for c in (soon, later):
        stores.campaigns.create(c)
    assert [c.id for c in stores.campaigns.due(NOW + timedelta(minutes=10))] == [soon.id]


def test_a_chunk_is_counted_once(stores: Stores) -> None:
    campaign = a_campaign()
    stores.campaigns.create(campaign)
    marker = ChunkMarker(0, 500, False, "next")
    assert stores.campaigns.count_chunk(campaign.id, marker, NOW)
    assert not stores.campaigns.count_chunk(campaign.id, marker, NOW)
    assert stores.campaigns.chunk(campaign.id, 0) == marker
    stores.campaigns.chunk_enqueued(campaign.id, 0)
    assert stores.campaigns.chunk(campaign.id, 0) == ChunkMarker(0, 500, True, "next")
    stats = stores.campaigns.stats(campaign.id)
    assert (stats.recipients, stats.queued) == (500, 500)


def test_the_ledger_never_overwrites_and_applies_over_the_version_read(stores: Stores) -> None:
    first = [
        Delivery("c1", address_key(f"d{n}@example.org"), f"d{n}@example.org", {"first_name": "Ann"})
        for n in range(30)
    ]
    assert stores.ledger.add(first) == 30
    assert stores.ledger.add(first) == 0
    one = stores.ledger.delivery("c1", first[0].recipient)
    assert one == first[0]
    claimed = deliveries.claim(one, "tok", NOW)
    assert claimed is not None
    assert stores.ledger.apply(claimed, one)
    assert not stores.ledger.apply(claimed, one)  # stale: the version moved on
    sent = deliveries.mark_sent(claimed.delivery, "tok", "ses-1", NOW)
    assert sent is not None
    assert stores.ledger.apply(sent, claimed.delivery)
    stored = stores.ledger.delivery("c1", first[0].recipient)
    assert stored == sent.delivery
    assert stored.seen == frozenset({Stage.SENT})
    queued = stores.ledger.by_stage("c1", Stage.QUEUED, 100, None)
    assert len(queued.items) == 29
    page = stores.ledger.by_stage("c1", None, 20, None)
    rest = stores.ledger.by_stage("c1", None, 20, page.next_token)
    assert len(page.items) + len(rest.items) == 30
    assert rest.next_token is None
    many = stores.ledger.get_many("c1", [d.recipient for d in first[:5]] + ["missing"])
    assert [d.recipient for d in many] == [d.recipient for d in first[:5]]


class ThreadSafeQueue:
    """CampaignQueue for concurrent senders: every job is delivered twice (SQS's worst case)."""

    def __init__(self) -> None:
        self.jobs: queue.Queue[Mapping[str, object]] = queue.Queue()

    def send(self, jobs: Any) -> None:
        for job in jobs:
            self.jobs.put(dict(job))
            self.jobs.put(dict(job))


def test_concurrent_senders_each_given_every_job_mail_each_recipient_once(dynamodb_local: str) -> None:
    binding = stack.open_table(dynamodb_local, REGION, f"bloodbank-{uuid.uuid4().hex[:12]}")
    cursors = CursorCodec(PAGE_SECRET)
    rig = make_rig()
    jobs = ThreadSafeQueue()
    store, ledger = DynamoCampaigns(binding, cursors), DynamoDeliveries(binding, cursors)
    service = rig.service
    service.campaigns, service.deliveries, service.queue = store, ledger, jobs
    rig.store = store  # type: ignore[assignment]
    campaign_id = rig.campaign(700)
    service.launch(STAFF, campaign_id)

    def sender() -> None:
        while True:
            try:
                job = jobs.jobs.get(timeout=3)
            except queue.Empty:
                return
            service.handle(job)

    threads = [threading.Thread(target=sender) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    rig.each_sent_once(700)
    stats = store.stats(campaign_id)
    assert (stats.recipients, stats.sent, stats.queued) == (700, 700, 0)
    campaign = store.get(campaign_id)
    assert campaign is not None
    assert campaign.status is CampaignStatus.SENT
