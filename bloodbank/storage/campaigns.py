"""Campaigns, their counters and their send ledger in the single table (ACCESS_PATTERNS.md, "Campaigns").

- ``CAMPAIGN#<id>``: the campaign (``CAMPAIGN``), its counters in ``STATS#00``..``STATS#07`` (moved by
  ADD, a shard per recipient so that concurrent writers rarely touch the same item), and a marker per
  page of the audience put in the ledger (``CHUNK#<n>``).
- ``DELIVERY#<campaign>#<address key>``: one recipient (a partition each, so sends spread over the
  table), indexed by stage on gsi1 (``DELIVERIES#<campaign>#<stage>``) and by campaign on gsi2.

Every change of a recipient is one TransactWriteItems: the recipient on the condition that its
version is the one read, and the ADD of its deltas to its stats shard. So counters count each
recipient's stage once, whatever retries and duplicates happen.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from pynamodb.exceptions import DoesNotExist, PutError, TransactWriteError

from bloodbank.cursor import CursorCodec
from bloodbank.domain.campaigns import (
    Audience,
    Campaign,
    CampaignStatus,
    ListAudience,
    PauseReason,
    SegmentAudience,
    Stats,
)
from bloodbank.domain.deliveries import Change, Delivery, Stage
from bloodbank.ports import ChunkMarker, Page
from bloodbank.storage import keys, transactions
from bloodbank.storage.models import (
    CampaignChunkItem,
    CampaignItem,
    CampaignStatsItem,
    DeliveryItem,
    TableBinding,
    TableItem,
)
from bloodbank.storage.paging import token_page
from bloodbank.storage.transactions import (
    ConditionsFailed,
    Transaction,
    collided,
    retry_on_transaction_conflict,
)

_CONDITION_FAILED = "ConditionalCheckFailedException"
_COUNTERS = {
    Stage.QUEUED: "queued",
    Stage.SENT: "sent",
    Stage.DELIVERED: "delivered",
    Stage.BOUNCED: "bounced",
    Stage.COMPLAINED: "complained",
    Stage.OPENED: "opened",
    Stage.CLICKED: "clicked",
    Stage.UNSUBSCRIBED: "unsubscribed",
    Stage.SUPPRESSED: "suppressed",
    Stage.FAILED: "failed",
}
PUT_THREADS = 16


# --- mapping ----------------------------------------------------------------------------------------
def audience_json(audience: Audience) -> str:
    if isinstance(audience, ListAudience):
        return json.dumps({"listId": audience.list_id})
    segment = {
        "bloodGroups": sorted(audience.blood_groups),
        "siteId": audience.site_id,
        "eligibleNow": audience.eligible_now,
    }
    return json.dumps({"segment": segment})


def audience_from(raw: str) -> Audience:
    value = json.loads(raw)
    if "listId" in value:
        return ListAudience(value["listId"])
    segment = value["segment"]
    return SegmentAudience(frozenset(segment["bloodGroups"]), segment["siteId"], bool(segment["eligibleNow"]))


def _status_at(campaign: Campaign) -> datetime:
    if campaign.status is CampaignStatus.SCHEDULED and campaign.send_at is not None:
        return campaign.send_at
    return campaign.created_at


def campaign_item(campaign: Campaign) -> CampaignItem:
    item = CampaignItem(
        campaign_id=campaign.id,
        name=campaign.name,
        template_id=campaign.template_id,
        audience=audience_json(campaign.audience),
        status=campaign.status.value,
        created_by=campaign.created_by,
        created_at=campaign.created_at,
        updated_at=campaign.updated_at,
        send_at=campaign.send_at,
        expires_at=campaign.expires_at,
        launched_at=campaign.launched_at,
        finished_at=campaign.finished_at,
        pause_reason=campaign.pause_reason.value if campaign.pause_reason else None,
        materialized=1 if campaign.materialized else None,
        version=campaign.version,
    )
    item.set_key(keys.campaign(campaign.id))
    item.set_index(keys.campaigns_by_status(campaign.status.value, _status_at(campaign), campaign.id))
    item.set_index(keys.all_campaigns(campaign.created_at, campaign.id))
    return item


def to_campaign(item: CampaignItem) -> Campaign:
    return Campaign(
        id=item.campaign_id,
        name=item.name,
        template_id=item.template_id,
        audience=audience_from(item.audience),
        status=CampaignStatus(item.status),
        created_by=item.created_by,
        created_at=item.created_at,
        updated_at=item.updated_at,
        send_at=item.send_at,
        expires_at=item.expires_at,
        launched_at=item.launched_at,
        finished_at=item.finished_at,
        pause_reason=PauseReason(item.pause_reason) if item.pause_reason else None,
        materialized=bool(item.materialized),
        version=int(item.version),
    )


def delivery_item(delivery: Delivery) -> DeliveryItem:
    item = DeliveryItem(
        campaign_id=delivery.campaign_id,
        recipient=delivery.recipient,
        email=delivery.email,
        variables=json.dumps(delivery.variables, ensure_ascii=False, separators=(",", ":"))
        if delivery.variables
        else None,
        stage=delivery.stage.value,
        seen={s.value for s in delivery.seen} or None,
        claim=delivery.claim,
        claimed_at=delivery.claimed_at,
        message_id=delivery.message_id,
        sent_at=delivery.sent_at,
        updated_at=delivery.updated_at,
        reason=delivery.reason,
        version=delivery.version,
    )
    item.set_key(keys.delivery(delivery.campaign_id, delivery.recipient))
    item.set_index(keys.deliveries_by_stage(delivery.campaign_id, delivery.stage.value, delivery.recipient))
    item.set_index(keys.deliveries_of_campaign(delivery.campaign_id, delivery.recipient))
    return item


def to_delivery(item: DeliveryItem) -> Delivery:
    return Delivery(
        campaign_id=item.campaign_id,
        recipient=item.recipient,
        email=item.email,
        variables=json.loads(item.variables) if item.variables else {},
        stage=Stage(item.stage),
        seen=frozenset(Stage(s) for s in item.seen or ()),
        claim=item.claim,
        claimed_at=item.claimed_at,
        message_id=item.message_id,
        sent_at=item.sent_at,
        updated_at=item.updated_at,
        reason=item.reason,
        version=int(item.version),
    )


def _stats_actions(
    campaign_id: str, deltas: dict[Stage, int], extra: dict[str, int] | None = None
) -> list[Any]:
    actions: list[Any] = [  # the first ADD creates the shard: make it whole
        TableItem.entity.set(CampaignStatsItem),
        CampaignStatsItem.campaign_id.set(campaign_id),
    ]
    for stage, change in deltas.items():
        if change:
            actions.append(getattr(CampaignStatsItem, _COUNTERS[stage]).add(change))
    for name, change in (extra or {}).items():
        actions.append(getattr(CampaignStatsItem, name).add(change))
    return actions


class DynamoCampaigns:
    """Implements ``CampaignStore`` over the single table."""

    def __init__(self, binding: TableBinding, cursors: CursorCodec) -> None:
        self._binding = binding
        self._cursors = cursors

    # --- campaigns ------------------------------------------------------------------------------
    def create(self, campaign: Campaign) -> None:
        transactions.save(campaign_item(campaign), CampaignItem.pk.does_not_exist())

    def get(self, campaign_id: str) -> Campaign | None:
        key = keys.campaign(campaign_id)
        try:
            return to_campaign(CampaignItem.get(key.pk, key.sk, consistent_read=True))
        except DoesNotExist:
            return None

    def save(self, campaign: Campaign, previous: Campaign) -> bool:
        try:
            transactions.save(campaign_item(campaign), CampaignItem.version == previous.version)
        except PutError as exc:
            if exc.cause_response_code == _CONDITION_FAILED:
                return False
            raise
        return True

    def campaigns(self, status: CampaignStatus | None, limit: int, next_token: str | None) -> Page[Campaign]:
        scope = f"campaigns|{status.value if status else ''}"
        if status is None:
            index, partition, forward = "gsi3", keys.ALL_CAMPAIGNS, False
        else:
            index, partition = "gsi1", keys.campaigns_by_status_partition(status.value)
            forward = status is CampaignStatus.SCHEDULED
        items, token = self._page(index, partition, limit, next_token, scope, forward=forward)
        return Page([to_campaign(i) for i in items if isinstance(i, CampaignItem)], token)

    def due(self, now: datetime) -> list[Campaign]:
        partition = keys.campaigns_by_status_partition(CampaignStatus.SCHEDULED.value)
        bound = keys.campaigns_by_status(CampaignStatus.SCHEDULED.value, now, "\uffff").sk
        items = TableItem.gsi1.query(partition, TableItem.gsi1sk <= bound)
        return [to_campaign(i) for i in items if isinstance(i, CampaignItem)]

    def stats(self, campaign_id: str) -> Stats:
        totals = dict.fromkeys(Stats.__dataclass_fields__, 0)
        items = TableItem.query(keys.campaign(campaign_id).pk, TableItem.sk.startswith(keys.STATS_PREFIX))
        for item in items:
            if isinstance(item, CampaignStatsItem):
                for name in totals:
                    totals[name] += int(getattr(item, name) or 0)
        return Stats(**totals)

    # --- chunks -----------------------------------------------------------------------------------
    def chunk(self, campaign_id: str, chunk: int) -> ChunkMarker | None:
        key = keys.campaign_chunk(campaign_id, chunk)
        try:
            item = CampaignChunkItem.get(key.pk, key.sk, consistent_read=True)
        except DoesNotExist:
            return None
        return ChunkMarker(int(item.chunk), int(item.recipients), bool(item.enqueued), item.next_token)

    def count_chunk(self, campaign_id: str, marker: ChunkMarker, at: datetime) -> bool:
        try:
            self._count_chunk(campaign_id, marker, at)
        except ConditionsFailed:
            return False
        return True

    @retry_on_transaction_conflict
    def _count_chunk(self, campaign_id: str, marker: ChunkMarker, at: datetime) -> None:
        item = CampaignChunkItem(
            campaign_id=campaign_id,
            chunk=marker.chunk,
            recipients=marker.recipients,
            enqueued=None,
            next_token=marker.next_token,
            at=at,
        )
        item.set_key(keys.campaign_chunk(campaign_id, marker.chunk))
        counters = CampaignStatsItem()
        counters.set_key(keys.campaign_stats(campaign_id, marker.chunk % keys.STATS_SHARDS))
        tx = Transaction(self._binding.connection())
        tx.put("chunk", item, condition=CampaignChunkItem.pk.does_not_exist())
        extra = {"recipients": marker.recipients}
        tx.update("stats", counters, _stats_actions(campaign_id, {Stage.QUEUED: marker.recipients}, extra))
        tx.commit()

    def chunk_enqueued(self, campaign_id: str, chunk: int) -> None:
        item = CampaignChunkItem()
        item.set_key(keys.campaign_chunk(campaign_id, chunk))
        item.update(actions=[CampaignChunkItem.enqueued.set(1)])

    def _page(
        self,
        index: str,
        partition: str,
        limit: int,
        next_token: str | None,
        scope: str,
        *,
        forward: bool = True,
    ) -> tuple[list[TableItem], str | None]:
        return token_page(self._cursors, scope, index, partition, limit, next_token, forward=forward)


class DynamoDeliveries:
    """Implements ``DeliveryLedger`` over the single table."""

    def __init__(self, binding: TableBinding, cursors: CursorCodec) -> None:
        self._binding = binding
        self._cursors = cursors
        self._pool: ThreadPoolExecutor | None = None

    def add(self, deliveries: Sequence[Delivery]) -> int:
        """One conditional PutItem each (BatchWriteItem cannot refuse to overwrite), in threads."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(PUT_THREADS, thread_name_prefix="ledger-put")
        return sum(self._pool.map(self._add_one, deliveries))

    def _add_one(self, delivery: Delivery) -> int:
        try:
            delivery_item(delivery).save(condition=DeliveryItem.pk.does_not_exist())
        except PutError as exc:
            if exc.cause_response_code == _CONDITION_FAILED:
                return 0
            raise
        return 1

    def delivery(self, campaign_id: str, recipient: str) -> Delivery | None:
        key = keys.delivery(campaign_id, recipient)
        try:
            return to_delivery(DeliveryItem.get(key.pk, key.sk, consistent_read=True))
        except DoesNotExist:
            return None

    def get_many(self, campaign_id: str, recipients: Sequence[str]) -> list[Delivery]:
        found: dict[str, Delivery] = {}
        wanted = [keys.delivery(campaign_id, r) for r in recipients]
        for start in range(0, len(wanted), 100):
            batch = [(k.pk, k.sk) for k in wanted[start : start + 100]]
            for item in DeliveryItem.batch_get(batch, consistent_read=True):
                found[item.recipient] = to_delivery(item)
        return [found[r] for r in recipients if r in found]

    def apply(self, change: Change, previous: Delivery) -> bool:
        try:
            self._apply(change, previous)
        except ConditionsFailed:
            return False
        except TransactWriteError as exc:
            if collided(exc):
                return False  # still colliding after the retries: the caller reads again
            raise
        return True

    @retry_on_transaction_conflict
    def _apply(self, change: Change, previous: Delivery) -> None:
        delivery = change.delivery
        if not any(change.deltas.values()):  # a claim or a release: no counter, no transaction
            try:
                delivery_item(delivery).save(condition=DeliveryItem.version == previous.version)
            except PutError as exc:
                if exc.cause_response_code == _CONDITION_FAILED:
                    raise ConditionsFailed({"delivery"}) from None
                raise
            return
        tx = Transaction(self._binding.connection())
        tx.put("delivery", delivery_item(delivery), condition=DeliveryItem.version == previous.version)
        if any(change.deltas.values()):
            counters = CampaignStatsItem()
            counters.set_key(keys.campaign_stats(delivery.campaign_id, keys.stats_shard(delivery.recipient)))
            tx.update("stats", counters, _stats_actions(delivery.campaign_id, change.deltas))
        tx.commit()

    def by_stage(
        self, campaign_id: str, stage: Stage | None, limit: int, next_token: str | None
    ) -> Page[Delivery]:
        scope = f"deliveries|{campaign_id}|{stage.value if stage else ''}"
        if stage is None:
            index, partition = "gsi2", keys.deliveries_of_campaign_partition(campaign_id)
        else:
            index, partition = "gsi1", keys.deliveries_by_stage_partition(campaign_id, stage.value)
        items, token = token_page(self._cursors, scope, index, partition, limit, next_token)
        return Page([to_delivery(i) for i in items if isinstance(i, DeliveryItem)], token)
