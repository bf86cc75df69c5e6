"""Donor appeals on DynamoDB Local (Amazon's engine: the claim's condition decides races, and moto's
DynamoDB is not thread-safe): the donor index query, the claim item, two runs racing for donors."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from bloodbank.cursor import CursorCodec
from bloodbank.domain.alerts import NEVER, Announced, ShortageAlert
from bloodbank.domain.appeals import StopReason
from bloodbank.domain.blood import BloodGroup, Component
from bloodbank.domain.donors import Donor, Personal
from bloodbank.domain.eligibility import Sex
from bloodbank.domain.inventory import LevelKey, StockStatus
from bloodbank.domain.lazy import Lazy
from bloodbank.domain.notifications import Channel, NotificationPreferences
from bloodbank.fakes import FixedClock, RecordingNotifier
from bloodbank.services.appeals import AppealReport, AppealService
from bloodbank.services.notifications import NotificationService
from bloodbank.storage import keys
from bloodbank.storage.appeals import DynamoAppeals
from bloodbank.storage.inventory import DynamoInventory
from bloodbank.storage.models import TableBinding, TableItem
from bloodbank.storage.notifications import DynamoNotificationLedger
from tests.conftest import PAGE_SECRET, REGION
from tests.integration.conftest import Store

NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
CONSENTED = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
NORTH = "site-north"
DONORS = 10
PERIOD = timedelta(days=14)


def donor(n: int, group: BloodGroup = BloodGroup.O_NEG, site: str = NORTH) -> Donor:
    donor_id = f"appeal-{group.value.lower()}-{site}-{n:02d}"
    return Donor(
        id=donor_id,
        first_name="Ann",
        last_name=f"Lee{n:02d}",
        email=f"{donor_id}@example.org",
        blood_group=group,
        site_id=site,
        created_at=CONSENTED,
        updated_at=CONSENTED,
        version=1,
        sex=Sex.FEMALE,
        preferences=NotificationPreferences(CONSENTED, frozenset(Channel)),
        private=Lazy(Personal(date_of_birth=date(1985, 3, 2), phone=f"+1312555{n:04d}", weight_kg=68.0)),
    )


def alert(alert_id: str, component: Component, at: datetime = NOW) -> ShortageAlert:
    return ShortageAlert(
        alert_id, NORTH, BloodGroup.O_NEG, component, StockStatus.RED, StockStatus.GREEN, 0, 4, None, at
    )


class Table:
    """The store's table with what appeals need on it: the inventory (to announce), the claims."""

    def __init__(self, store: Store, endpoint: str) -> None:
        self.store = store
        self.binding = TableBinding(TableItem.Meta.table_name, REGION, endpoint)
        self.inventory = DynamoInventory(self.binding, CursorCodec(PAGE_SECRET))
        self.appeals = DynamoAppeals(self.binding)
        self.notifier = RecordingNotifier()
        self.clock = FixedClock(NOW)

    def service(self, page_size: int = 3) -> AppealService:
        return AppealService(
            donors=self.store.donors,
            directory=self.store.directory,
            ledger=self.appeals,
            levels=self.appeals,
            notifications=NotificationService(self.notifier, DynamoNotificationLedger(), self.clock),
            clock=self.clock,
            page_size=page_size,
        )


@pytest.fixture
def table(ddb_store: Store, dynamodb_local: str) -> Table:
    return Table(ddb_store, dynamodb_local)


@pytest.fixture
def requests(table: Table) -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """Every DynamoDB request the table's client makes: (operation, parameters)."""
    seen: list[tuple[str, dict[str, Any]]] = []
    lock = threading.Lock()

    def record(params: dict[str, Any], model: Any, **_: Any) -> None:
        with lock:
            seen.append((model.name, dict(params)))

    client = table.binding.connection().client
    client.meta.events.register("provide-client-params.dynamodb", record)
    try:
        yield seen
    finally:
        client.meta.events.unregister("provide-client-params.dynamodb", record)


def test_the_claim_item_is_one_conditional_write_per_donor(table: Table) -> None:
    appeals = table.appeals
    assert appeals.claim("d1", "alert-1", NOW, PERIOD)
    assert appeals.claim("d1", "alert-1", NOW + timedelta(minutes=1), PERIOD)  # a retry of that alert
    assert not appeals.claim("d1", "alert-2", NOW + timedelta(days=13), PERIOD)  # within the period
    key = keys.appeal("d1")
    assert (key.pk, key.sk) == ("DONOR#d1", "APPEAL")
    stored = table.store.raw(key.pk, key.sk)
    assert stored is not None
    assert set(stored) == {"pk", "sk", "entity", "donor_id", "alert_id", "appealed_at", "expires"}
    assert stored["entity"] == {"S": "Appeal"}
    assert stored["alert_id"] == {"S": "alert-1"}
    expires = int(stored["expires"]["N"])
    assert NOW + PERIOD < datetime.fromtimestamp(expires, UTC) <= NOW + PERIOD + timedelta(days=2)
    # Another alert's release leaves the claim; after the period another alert may claim it.
    appeals.release("d1", "alert-2")
    assert not appeals.claim("d1", "alert-2", NOW + timedelta(days=13), PERIOD)
    assert appeals.claim("d1", "alert-2", NOW + timedelta(days=14, seconds=61), PERIOD)
    stored = table.store.raw(key.pk, key.sk)
    assert stored is not None
    assert stored["alert_id"] == {"S": "alert-2"}
    # This alert's release gives it up.
    appeals.release("d1", "alert-2")
    assert table.store.raw(key.pk, key.sk) is None
    appeals.release("d1", "alert-2")  # nothing left: no error
    assert appeals.claim("d1", "alert-3", NOW, PERIOD)


def test_the_announced_status_is_read_from_the_level(table: Table) -> None:
    key = LevelKey(NORTH, BloodGroup.O_NEG, Component.RED_CELLS)
    assert table.appeals.announced(key) == NEVER
    red = alert("alert-red", Component.RED_CELLS)
    assert table.inventory.announce(red, NEVER)
    assert table.appeals.announced(key) == Announced(StockStatus.RED, NOW, 1)


def test_an_appeal_reads_the_donor_index_and_claims_each_donor(
    table: Table, requests: list[tuple[str, dict[str, Any]]]
) -> None:
    for n in range(4):
        table.store.donors.create(donor(n))
    table.store.donors.create(donor(0, BloodGroup.O_POS))
    table.store.donors.create(donor(0, site="site-south"))
    red = alert("alert-red", Component.RED_CELLS)
    assert table.inventory.announce(red, NEVER)
    requests.clear()
    report = table.service(page_size=3).appeal(red)
    assert (report.sent, report.considered, report.pages) == (4, 4, 2)
    assert report.stopped_because is StopReason.COMPLETED
    assert sorted({m.donor_id for m in table.notifier.sent}) == [donor(n).id for n in range(4)]
    operations = Counter(name for name, _ in requests)
    assert "Scan" not in operations
    queries = [params for name, params in requests if name == "Query"]
    sites = [q for q in queries if q["IndexName"] == "gsi3"]
    assert len(sites) == 1  # the directory's sites (pattern 9), once a run
    donor_pages = [q for q in queries if q not in sites]
    assert len(donor_pages) == 2  # two pages of one key condition (pattern 7)
    for params in donor_pages:
        assert params["IndexName"] == "gsi1"
        assert "begins_with" in params["KeyConditionExpression"]
        # Nothing filtered but pynamodb's discriminator (``entity IN (...)``): no residual condition.
        assert set(params["ExpressionAttributeNames"].values()) == {"gsi1pk", "gsi1sk", "entity"}
        values = [v.get("S") for v in params["ExpressionAttributeValues"].values()]
        assert values[:2] == ["DONORS#SITE#site-north", "O_NEG#"]
    gets = [params for name, params in requests if name == "GetItem"]
    assert len(gets) == 2  # the level, before each page
    assert all(g["ConsistentRead"] for g in gets)
    claims = [p for name, p in requests if name == "PutItem" and p["Item"]["sk"] == {"S": "APPEAL"}]
    assert len(claims) == 4
    assert all("attribute_not_exists" in c["ConditionExpression"] for c in claims)
    for n in range(4):
        stored = table.store.raw(f"DONOR#{donor(n).id}", "APPEAL")
        assert stored is not None
        assert stored["alert_id"] == {"S": "alert-red"}


def _race(work: list[Callable[[], AppealReport]]) -> list[AppealReport]:
    barrier = threading.Barrier(len(work))
    reports: list[AppealReport] = []
    lock = threading.Lock()

    def run(fn: Callable[[], AppealReport]) -> None:
        barrier.wait()
        report = fn()
        with lock:
            reports.append(report)

    threads = [threading.Thread(target=run, args=(w,)) for w in work]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return reports


def test_two_concurrent_appeals_for_two_alerts_reach_each_donor_once(table: Table) -> None:
    wanted = [donor(n) for n in range(DONORS)]
    for d in wanted:
        table.store.donors.create(d)
    red_cells = alert("alert-red-cells", Component.RED_CELLS)
    whole_blood = alert("alert-whole-blood", Component.WHOLE_BLOOD)
    assert table.inventory.announce(red_cells, NEVER)
    assert table.inventory.announce(whole_blood, NEVER)
    first, second = table.service(page_size=3), table.service(page_size=4)

    reports = _race([lambda: first.appeal(red_cells), lambda: second.appeal(whole_blood)])

    assert len(reports) == 2
    assert all(r.stopped_because is StopReason.COMPLETED for r in reports)
    assert sum(r.sent for r in reports) == DONORS
    assert sum(r.skipped_recently_appealed for r in reports) == DONORS
    assert sum(r.failed for r in reports) == 0
    # Each donor heard once: one SMS and one e-mail, both of the same alert.
    per_donor = Counter(m.donor_id for m in table.notifier.sent)
    assert per_donor == Counter({d.id: 2 for d in wanted})
    for d in wanted:
        alerts = {m.key.split("#")[1] for m in table.notifier.sent if m.donor_id == d.id}
        assert len(alerts) == 1
        stored = table.store.raw(f"DONOR#{d.id}", "APPEAL")
        assert stored is not None
        assert stored["alert_id"] == {"S": alerts.pop()}
    # A later run of either alert within the period sends nothing more.
    table.clock.advance(hours=1)
    again = table.service().appeal(red_cells)
    assert again.sent == 0
    assert len(table.notifier.sent) == 2 * DONORS
