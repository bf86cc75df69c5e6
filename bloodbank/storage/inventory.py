"""Units, their ledger, stock levels, hospital requests, test results and idempotency records in the
single table (ACCESS_PATTERNS.md, "Inventory").

Every status change is one TransactWriteItems: the unit (on the condition that its version, status
and site are as read and, where it matters, its expiry), its ledger entry (put once), the stock
counters it moves (ADD), and whatever else the use case writes with it.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

from pynamodb.exceptions import DoesNotExist, TransactWriteError
from pynamodb.expressions.condition import Condition

from bloodbank.cursor import CursorCodec
from bloodbank.domain.alerts import NEVER, Announced, ShortageAlert
from bloodbank.domain.blood import BloodGroup, Component
from bloodbank.domain.donations import BloodUnit, UnitStatus
from bloodbank.domain.inventory import (
    IN_STOCK,
    BloodRequest,
    LedgerEntry,
    LevelKey,
    RequestStatus,
    StockStatus,
    TestMarker,
    TestOutcome,
    Threshold,
    Urgency,
    WastageReason,
    counter_deltas,
)
from bloodbank.errors import StaleWrite
from bloodbank.ports import IdempotencyRecord, InventoryWrite, Page, StockCounts, TestRecord
from bloodbank.storage import keys, transactions
from bloodbank.storage.models import (
    AlertItem,
    BloodRequestItem,
    IdempotencyItem,
    IssuedDayItem,
    LedgerItem,
    StockLevelItem,
    TableBinding,
    TableItem,
    TestResultsItem,
    UnitItem,
)
from bloodbank.storage.paging import token_page
from bloodbank.storage.transactions import (
    ConditionsFailed,
    Transaction,
    collided,
    retry_on_transaction_conflict,
)

ISSUED_DAYS_KEPT = 60  # the TTL removes daily issue counters after this many days
IDEMPOTENCY_DAYS = 7  # a client request token is remembered this long


def unit_item(unit: BloodUnit) -> UnitItem:
    """A new unit item with the indexes its status puts it in."""
    item = UnitItem(
        unit_id=unit.id,
        din=unit.din,
        component=unit.component.value,
        blood_group=unit.blood_group.value if unit.blood_group else None,
        status=unit.status.value,
        site_id=unit.site_id,
        donor_id=unit.donor_id,
        collected_at=unit.collected_at,
        expires_at=unit.expires_at,
        version=unit.version,
        request_id=unit.request_id,
    )
    item.set_key(keys.unit(unit.id))
    item.set_index(keys.units_of_din(unit.din, unit.id))
    for index in _status_indexes(unit):
        if index is not None:
            item.set_index(index)
    return item


def _status_indexes(unit: BloodUnit) -> tuple[keys.IndexKey | None, keys.IndexKey | None]:
    """The sparse indexes the unit's status puts it in: in stock (gsi1), available (gsi2)."""
    stock = (
        keys.units_in_stock_by_expiry(unit.site_id, unit.expires_at, unit.id)
        if unit.status in IN_STOCK
        else None
    )
    available = (
        keys.units_available(unit.site_id, unit.component.value, unit.blood_group, unit.expires_at, unit.id)
        if unit.status is UnitStatus.AVAILABLE and unit.blood_group is not None
        else None
    )
    return stock, available


def to_unit(item: UnitItem) -> BloodUnit:
    return BloodUnit(
        id=item.unit_id,
        din=item.din,
        component=Component(item.component),
        blood_group=BloodGroup(item.blood_group) if item.blood_group else None,
        status=UnitStatus(item.status),
        site_id=item.site_id,
        donor_id=item.donor_id,
        collected_at=item.collected_at,
        expires_at=item.expires_at,
        version=int(item.version),
        request_id=item.request_id,
    )


def get_units(unit_ids: Sequence[str]) -> list[BloodUnit]:
    """The units that exist among ``unit_ids``, in the order asked: BatchGetItem, 100 keys a call."""
    wanted = list(dict.fromkeys(unit_ids))
    found: dict[str, BloodUnit] = {}
    for start in range(0, len(wanted), 100):
        batch = [(keys.unit(u).pk, keys.unit(u).sk) for u in wanted[start : start + 100]]
        for item in UnitItem.batch_get(batch):
            found[item.unit_id] = to_unit(item)
    return [found[u] for u in unit_ids if u in found]


def _index_actions(index: str, key: keys.IndexKey | None) -> list[Any]:
    pk, sk = getattr(TableItem, f"{index}pk"), getattr(TableItem, f"{index}sk")
    if key is None:
        return [pk.remove(), sk.remove()]
    return [pk.set(key.pk), sk.set(key.sk)]


def _unit_update(before: BloodUnit, after: BloodUnit, at: datetime) -> list[Any]:
    stock, available = _status_indexes(after)
    actions: list[Any] = [
        UnitItem.status.set(after.status.value),
        UnitItem.version.set(after.version),
        UnitItem.site_id.set(after.site_id),
        UnitItem.updated_at.set(at),
        UnitItem.request_id.set(after.request_id) if after.request_id else UnitItem.request_id.remove(),
        *_index_actions("gsi1", stock),
        *_index_actions("gsi2", available),
    ]
    if after.blood_group != before.blood_group and after.blood_group is not None:
        actions.append(UnitItem.blood_group.set(after.blood_group.value))
    return actions


def _ledger_item(entry: LedgerEntry) -> LedgerItem:
    item = LedgerItem(
        unit_id=entry.unit_id,
        version=entry.version,
        at=entry.at,
        by=entry.by,
        from_status=entry.from_status.value,
        to_status=entry.to_status.value,
        why=entry.why,
        site_id=entry.site_id,
        to_site_id=entry.to_site_id,
        request_id=entry.request_id,
        wastage=entry.wastage.value if entry.wastage else None,
    )
    item.set_key(keys.unit_ledger(entry.unit_id, entry.version))
    return item


def _to_entry(item: LedgerItem) -> LedgerEntry:
    return LedgerEntry(
        unit_id=item.unit_id,
        version=int(item.version),
        at=item.at,
        by=item.by,
        from_status=UnitStatus(item.from_status),
        to_status=UnitStatus(item.to_status),
        why=item.why,
        site_id=item.site_id,
        to_site_id=item.to_site_id,
        request_id=item.request_id,
        wastage=WastageReason(item.wastage) if item.wastage else None,
    )


def _level_identity(model: type[TableItem], key: LevelKey) -> list[Any]:
    """SETs that make an upserted counter item whole (the first ADD creates it)."""
    return [
        TableItem.entity.set(model),
        model.site_id.set(key.site_id),  # type: ignore[attr-defined]
        model.blood_group.set(key.blood_group.value),  # type: ignore[attr-defined]
        model.component.set(key.component.value),  # type: ignore[attr-defined]
    ]


def request_item(request: BloodRequest) -> BloodRequestItem:
    item = BloodRequestItem(
        request_id=request.id,
        hospital_id=request.hospital_id,
        site_id=request.site_id,
        blood_group=request.blood_group.value,
        component=request.component.value,
        quantity=request.quantity,
        urgency=request.urgency.value,
        needed_by=request.needed_by,
        status=request.status.value,
        unit_ids=list(request.unit_ids) or None,
        issued_unit_ids=list(request.issued_unit_ids) or None,
        created_by=request.created_by,
        created_at=request.created_at,
        updated_at=request.updated_at,
        version=request.version,
        cancel_reason=request.cancel_reason,
    )
    item.set_key(keys.blood_request(request.id))
    item.set_index(keys.requests_of_hospital(request.hospital_id, request.created_at, request.id))
    item.set_index(keys.requests_by_status(request.status.value, request.needed_by, request.id))
    item.set_index(keys.all_requests(request.created_at, request.id))
    return item


def to_request(item: BloodRequestItem) -> BloodRequest:
    return BloodRequest(
        id=item.request_id,
        hospital_id=item.hospital_id,
        site_id=item.site_id,
        blood_group=BloodGroup(item.blood_group),
        component=Component(item.component),
        quantity=int(item.quantity),
        urgency=Urgency(item.urgency),
        needed_by=item.needed_by,
        status=RequestStatus(item.status),
        unit_ids=tuple(str(u) for u in item.unit_ids or ()),
        issued_unit_ids=tuple(str(u) for u in item.issued_unit_ids or ()),
        created_by=item.created_by,
        created_at=item.created_at,
        updated_at=item.updated_at,
        version=int(item.version),
        cancel_reason=item.cancel_reason,
    )


def _epoch(at: datetime) -> int:
    return int(at.timestamp())


class DynamoInventory:
    """Implements InventoryStore over the single table."""

    def __init__(self, binding: TableBinding, cursors: CursorCodec) -> None:
        self._binding = binding
        self._cursors = cursors

    # --- units ------------------------------------------------------------------------------------
    def units(self, unit_ids: Sequence[str]) -> list[BloodUnit]:
        return get_units(unit_ids)

    def units_of_donation(self, din: str) -> list[BloodUnit]:
        items = TableItem.gsi3.query(keys.units_of_din_partition(din))
        return sorted((to_unit(i) for i in items if isinstance(i, UnitItem)), key=lambda u: u.id)

    def available_units(
        self, site_id: str, component: Component, group: BloodGroup, after: datetime, limit: int
    ) -> list[BloodUnit]:
        items = TableItem.gsi2.query(
            keys.units_available_partition(site_id, component.value, group),
            _sort_key("gsi2") > keys.expiry_bound(after),
            limit=limit,
            page_size=limit,
        )
        return [to_unit(i) for i in items if isinstance(i, UnitItem)]

    def in_stock(
        self, site_id: str, expiring_before: datetime | None, limit: int, next_token: str | None
    ) -> Page[BloodUnit]:
        scope = f"stock|{site_id}|{expiring_before.isoformat() if expiring_before else ''}"
        condition = _sort_key("gsi1") < keys.expiry_bound(expiring_before) if expiring_before else None
        items, token = self._page(
            "gsi1", keys.units_in_stock_partition(site_id), condition, None, limit, next_token, scope
        )
        return Page([to_unit(i) for i in items if isinstance(i, UnitItem)], token)

    def ledger(self, unit_id: str) -> list[LedgerEntry]:
        items = LedgerItem.query(keys.unit(unit_id).pk, LedgerItem.sk.startswith(keys.LEDGER_PREFIX))
        return [_to_entry(i) for i in items]

    # --- the one write --------------------------------------------------------------------------
    def commit(self, write: InventoryWrite) -> None:
        try:
            self._commit(write)
        except TransactWriteError as exc:
            if not collided(exc):
                raise
            raise StaleWrite({"collision"}) from None  # still colliding after the retries

    @retry_on_transaction_conflict
    def _commit(self, write: InventoryWrite) -> None:
        at = write.at
        tx = Transaction(self._binding.connection())
        for c in write.units:
            before, after = c.before, c.after
            condition: Condition = (
                (UnitItem.version == before.version)
                & (UnitItem.status == before.status.value)
                & (UnitItem.site_id == before.site_id)
            )
            if c.needs_in_date:
                condition &= UnitItem.expires_at > at
            if c.needs_expired:
                condition &= UnitItem.expires_at <= at
            item = UnitItem()
            item.set_key(keys.unit(before.id))
            tx.update(f"unit {before.id}", item, _unit_update(before, after, at), condition)
            tx.put(f"ledger {before.id}", _ledger_item(c.entry), LedgerItem.pk.does_not_exist())
        deltas = counter_deltas(write.units)
        for key, moves in deltas.levels.items():
            counter = StockLevelItem()
            counter.set_key(keys.stock_level(key.site_id, key.blood_group, key.component.value))
            index = keys.stock_level_index(key.site_id, key.blood_group, key.component.value)
            actions = [
                *_level_identity(StockLevelItem, key),
                *_index_actions("gsi3", index),
                *(
                    (
                        StockLevelItem.available
                        if status is UnitStatus.AVAILABLE
                        else StockLevelItem.reserved
                    ).add(d)
                    for status, d in moves.items()
                ),
            ]
            tx.update(f"level {index.sk}", counter, actions)
        day = at.astimezone(UTC).date()
        for key in sorted(deltas.issued.keys() | deltas.wasted.keys(), key=_level_order):
            counts: list[Any] = []
            if deltas.issued.get(key):
                counts.append(IssuedDayItem.issued.add(deltas.issued[key]))
            if deltas.wasted.get(key):
                counts.append(IssuedDayItem.wasted.add(deltas.wasted[key]))
            bucket = IssuedDayItem()
            bucket.set_key(keys.issued_on(key.site_id, key.blood_group, key.component.value, day))
            index = keys.issued_on_index(key.site_id, key.blood_group, key.component.value, day)
            tx.update(
                f"issued {index.sk}",
                bucket,
                [
                    *_level_identity(IssuedDayItem, key),
                    *_index_actions("gsi3", index),
                    IssuedDayItem.day.set(day.isoformat()),
                    IssuedDayItem.expires.set(_epoch(at + timedelta(days=ISSUED_DAYS_KEPT))),
                    *counts,
                ],
            )
        if write.request is not None:
            previous = write.request_version
            tx.put(
                "request",
                request_item(write.request),
                BloodRequestItem.pk.does_not_exist()
                if previous is None
                else BloodRequestItem.version == previous,
            )
        for released, version in write.released:
            tx.put(f"request {released.id}", request_item(released), BloodRequestItem.version == version)
        if write.tests is not None:
            tests = write.tests
            tests_item = TestResultsItem(
                din=tests.din,
                results=json.dumps({m.value: o.value for m, o in tests.results.items()}, sort_keys=True),
                blood_group=tests.blood_group.value if tests.blood_group else None,
                recorded_by=tests.recorded_by,
                recorded_at=tests.recorded_at,
                version=tests.version,
            )
            tests_item.set_key(keys.test_results(tests.din))
            tx.put(
                "tests",
                tests_item,
                TestResultsItem.pk.does_not_exist()
                if write.tests_version is None
                else TestResultsItem.version == write.tests_version,
            )
        if write.idempotency is not None:
            record = write.idempotency
            token_item = IdempotencyItem(
                scope=record.scope,
                fingerprint=record.fingerprint,
                result=record.result,
                created_at=record.created_at,
                expires=_epoch(record.created_at + timedelta(days=IDEMPOTENCY_DAYS)),
            )
            token_item.set_key(keys.idempotency(record.scope, record.token))
            tx.put("idempotency", token_item, IdempotencyItem.pk.does_not_exist())
        try:
            tx.commit()
        except ConditionsFailed as failed:
            raise StaleWrite(failed.failed) from None

    # --- stock levels -----------------------------------------------------------------------------
    def stock(self, site_id: str | None, since: date) -> list[StockCounts]:
        if site_id is not None:
            items = TableItem.query(keys.stock_partition(site_id), TableItem.sk >= keys.stock_from(since))
        else:
            items = TableItem.gsi3.query(
                keys.STOCK_LEVELS,
                _sort_key("gsi3") >= keys.stock_from(since),
            )
        levels: dict[LevelKey, StockLevelItem] = {}
        days: dict[LevelKey, dict[date, int]] = defaultdict(dict)
        wasted: dict[LevelKey, dict[date, int]] = defaultdict(dict)
        for item in items:
            if isinstance(item, StockLevelItem | IssuedDayItem):
                key = LevelKey(item.site_id, BloodGroup(item.blood_group), Component(item.component))
                if isinstance(item, StockLevelItem):
                    levels[key] = item
                else:
                    day = date.fromisoformat(item.day)
                    if item.issued:
                        days[key][day] = int(item.issued)
                    if item.wasted:
                        wasted[key][day] = int(item.wasted)
        result = []
        for key in sorted(levels.keys() | days.keys() | wasted.keys(), key=_level_order):
            counter = levels.get(key)
            threshold = None
            if counter is not None and counter.par_level is not None:
                threshold = Threshold(
                    par_level=int(counter.par_level),
                    amber_days=float(counter.amber_days),
                    red_days=float(counter.red_days),
                    window_days=int(counter.window_days),
                )
            result.append(
                StockCounts(
                    key=key,
                    announced=_announced(counter),
                    available=int(counter.available or 0) if counter else 0,
                    reserved=int(counter.reserved or 0) if counter else 0,
                    threshold=threshold,
                    issued_by_day=days.get(key, {}),
                    wasted_by_day=wasted.get(key, {}),
                )
            )
        return result

    # --- shortage alerts (AlertStore) ----------------------------------------------------------
    @retry_on_transaction_conflict
    def announce(self, alert: ShortageAlert, previous: Announced) -> bool:
        key = LevelKey(alert.site_id, alert.blood_group, alert.component)
        counter = StockLevelItem()
        counter.set_key(keys.stock_level(key.site_id, key.blood_group, key.component.value))
        index = keys.stock_level_index(key.site_id, key.blood_group, key.component.value)
        unchanged = (
            StockLevelItem.alert_version.does_not_exist()
            if previous.version == 0
            else StockLevelItem.alert_version == previous.version
        )
        item = AlertItem(
            alert_id=alert.id,
            site_id=alert.site_id,
            blood_group=alert.blood_group.value,
            component=alert.component.value,
            status=alert.status.value,
            previous_status=alert.previous_status.value,
            available=alert.available,
            threshold=alert.threshold,
            days_of_supply=alert.days_of_supply,
            raised_at=alert.raised_at,
        )
        item.set_key(keys.shortage_alert(alert.id))
        item.set_index(keys.alerts_of_site(alert.site_id, alert.raised_at, alert.id))
        item.set_index(keys.all_alerts(alert.raised_at, alert.id))
        tx = Transaction(self._binding.connection())
        tx.update(
            "level",
            counter,
            [
                *_level_identity(StockLevelItem, key),
                *_index_actions("gsi3", index),
                StockLevelItem.announced_status.set(alert.status.value),
                StockLevelItem.announced_at.set(alert.raised_at),
                StockLevelItem.alert_version.set(previous.version + 1),
            ],
            unchanged,
        )
        tx.put("alert", item, AlertItem.pk.does_not_exist())
        try:
            tx.commit()
        except ConditionsFailed:
            return False
        return True

    def alerts(self, site_id: str | None, limit: int, next_token: str | None) -> Page[ShortageAlert]:
        scope = f"alerts|{site_id or ''}"
        if site_id is not None:
            index, partition = "gsi1", keys.alerts_of_site_partition(site_id)
        else:
            index, partition = "gsi3", keys.ALL_ALERTS
        items, token = self._page(index, partition, None, None, limit, next_token, scope, forward=False)
        return Page([to_alert(i) for i in items if isinstance(i, AlertItem)], token)

    def set_threshold(self, key: LevelKey, threshold: Threshold) -> None:
        counter = StockLevelItem()
        counter.set_key(keys.stock_level(key.site_id, key.blood_group, key.component.value))
        transactions.update(
            counter,
            [
                *_level_identity(StockLevelItem, key),
                *_index_actions(
                    "gsi3", keys.stock_level_index(key.site_id, key.blood_group, key.component.value)
                ),
                StockLevelItem.par_level.set(threshold.par_level),
                StockLevelItem.amber_days.set(threshold.amber_days),
                StockLevelItem.red_days.set(threshold.red_days),
                StockLevelItem.window_days.set(threshold.window_days),
            ],
        )

    # --- requests ---------------------------------------------------------------------------------
    def request(self, request_id: str) -> BloodRequest | None:
        item = _get(BloodRequestItem, keys.blood_request(request_id))
        return to_request(item) if item else None

    def requests(
        self, hospital_id: str | None, status: RequestStatus | None, limit: int, next_token: str | None
    ) -> Page[BloodRequest]:
        scope = f"requests|{hospital_id or ''}|{status.value if status else ''}"
        if hospital_id is not None:
            index, partition, forward = "gsi1", keys.requests_of_hospital_partition(hospital_id), False
            residual = BloodRequestItem.status == status.value if status else None
        elif status is not None:
            index, partition, forward = "gsi2", keys.requests_by_status_partition(status.value), True
            residual = None
        else:
            index, partition, forward = "gsi3", keys.ALL_REQUESTS, False
            residual = None
        items, token = self._page(index, partition, None, residual, limit, next_token, scope, forward=forward)
        return Page([to_request(i) for i in items if isinstance(i, BloodRequestItem)], token)

    # --- tests and idempotency ------------------------------------------------------------------
    def tests(self, din: str) -> TestRecord | None:
        item = _get(TestResultsItem, keys.test_results(din))
        if item is None:
            return None
        return TestRecord(
            din=item.din,
            results={TestMarker(m): TestOutcome(o) for m, o in json.loads(item.results).items()},
            blood_group=BloodGroup(item.blood_group) if item.blood_group else None,
            recorded_by=item.recorded_by,
            recorded_at=item.recorded_at,
            version=int(item.version),
        )

    def idempotency(self, scope: str, token: str) -> IdempotencyRecord | None:
        item = _get(IdempotencyItem, keys.idempotency(scope, token))
        if item is None:
            return None
        return IdempotencyRecord(item.scope, token, item.fingerprint, item.result, item.created_at)

    # --- paging -----------------------------------------------------------------------------------
    def _page(
        self,
        index: str,
        partition: str,
        condition: Condition | None,
        residual: Condition | None,
        limit: int,
        next_token: str | None,
        scope: str,
        *,
        forward: bool = True,
    ) -> tuple[list[TableItem], str | None]:
        """Up to ``limit`` items of an index partition and a token for the rest (None on the last page)."""
        return token_page(
            self._cursors,
            scope,
            index,
            partition,
            limit,
            next_token,
            range_condition=condition,
            filter_condition=residual,
            forward=forward,
        )


M = TypeVar("M", bound=TableItem)


def _get(model: type[M], key: keys.Key) -> M | None:
    """One item by key, read consistently (what was just committed)."""
    try:
        return model.get(key.pk, key.sk, consistent_read=True)
    except DoesNotExist:
        return None


def _announced(counter: StockLevelItem | None) -> Announced:
    if counter is None or counter.announced_status is None:
        return NEVER
    return Announced(
        StockStatus(counter.announced_status), counter.announced_at, int(counter.alert_version or 0)
    )


def to_alert(item: AlertItem) -> ShortageAlert:
    return ShortageAlert(
        id=item.alert_id,
        site_id=item.site_id,
        blood_group=BloodGroup(item.blood_group),
        component=Component(item.component),
        status=StockStatus(item.status),
        previous_status=StockStatus(item.previous_status),
        available=int(item.available),
        threshold=int(item.threshold),
        days_of_supply=float(item.days_of_supply) if item.days_of_supply is not None else None,
        raised_at=item.raised_at,
    )


def _level_order(key: LevelKey) -> tuple[str, str, str]:
    return key.site_id, key.blood_group.value, key.component.value


def _sort_key(index: str) -> Any:
    """The sort key attribute of one of the table's indexes, for key conditions."""
    return getattr(type(getattr(TableItem, index)), f"{index}sk")
