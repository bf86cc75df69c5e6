"""The suppression store: the in-memory fake and DynamoDB Local keep the same promises.

Also: unprocessed BatchGetItem keys are asked again, then given up on as unavailable (Stubber).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from bloodbank.adapters.provisioning import client
from bloodbank.domain.campaigns import SuppressionReason, address_key
from bloodbank.errors import DependencyUnavailable
from bloodbank.fakes import InMemorySuppressions
from bloodbank.local import stack
from bloodbank.ports import Suppressions
from bloodbank.storage import keys
from bloodbank.storage.suppressions import DynamoSuppressions
from tests.conftest import REGION

NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


def key(n: int) -> str:
    return address_key(f"donor{n}@example.org")


@pytest.fixture(params=["memory", "dynamodb-local"])
def store(request: pytest.FixtureRequest) -> Iterator[Suppressions]:
    if request.param == "memory":
        yield InMemorySuppressions()
        return
    endpoint = request.getfixturevalue("dynamodb_local")
    binding = stack.open_table(endpoint, REGION, f"bloodbank-{uuid.uuid4().hex[:12]}")
    yield DynamoSuppressions(binding, sleep=lambda _: None)


def test_suppress_once_and_the_first_reason_stays(store: Suppressions) -> None:
    assert store.suppress(key(1), SuppressionReason.HARD_BOUNCE, NOW)
    assert not store.suppress(key(1), SuppressionReason.UNSUBSCRIBED, NOW + timedelta(days=1))
    assert store.suppressed([key(1), key(2)]) == {key(1)}


def test_suppressed_reads_any_number_of_keys_with_duplicates(store: Suppressions) -> None:
    wanted = [key(n) for n in range(250)]
    for n in range(0, 250, 7):
        assert store.suppress(key(n), SuppressionReason.COMPLAINT, NOW)
    asked = [*wanted, *wanted[:30]]  # duplicates: BatchGetItem would refuse them in one request
    assert store.suppressed(asked) == {key(n) for n in range(0, 250, 7)}
    assert store.suppressed([]) == set()


def test_transient_bounces_count_apart_and_do_not_suppress(store: Suppressions) -> None:
    assert [store.count_transient(key(1), NOW + timedelta(hours=h)) for h in range(3)] == [1, 2, 3]
    assert store.count_transient(key(2), NOW) == 1
    assert store.suppressed([key(1), key(2)]) == set()
    assert store.suppress(key(1), SuppressionReason.TRANSIENT_BOUNCES, NOW)
    assert store.count_transient(key(1), NOW) == 4  # counting goes on beside the suppression
    assert store.suppressed([key(1)]) == {key(1)}


def test_racing_suppressions_have_one_winner(store: Suppressions) -> None:
    reasons = [SuppressionReason.HARD_BOUNCE, SuppressionReason.COMPLAINT] * 8
    with ThreadPoolExecutor(8) as pool:
        won = list(pool.map(lambda r: store.suppress(key(9), r, NOW), reasons))
    assert won.count(True) == 1


def test_racing_counts_lose_no_bounce(store: Suppressions) -> None:
    with ThreadPoolExecutor(8) as pool:
        counts = list(pool.map(lambda _: store.count_transient(key(5), NOW), range(20)))
    assert sorted(counts) == list(range(1, 21))


def test_items_hold_no_address(dynamodb_local: str) -> None:
    name = f"bloodbank-{uuid.uuid4().hex[:12]}"
    store = DynamoSuppressions(stack.open_table(dynamodb_local, REGION, name))
    store.suppress(address_key("ann.lee@example.org"), SuppressionReason.UNSUBSCRIBED, NOW)
    store.count_transient(address_key("ann.lee@example.org"), NOW)
    items = client("dynamodb", dynamodb_local, REGION).scan(TableName=name)["Items"]
    assert sorted(i["entity"]["S"] for i in items) == ["Suppression", "TransientBounces"]
    assert "ann.lee" not in str(items)
    suppression = next(i for i in items if i["entity"]["S"] == "Suppression")
    assert suppression["pk"]["S"] == keys.suppression(address_key("ann.lee@example.org")).pk
    assert suppression["reason"]["S"] == "UNSUBSCRIBED"


def _stubbed(table: str) -> tuple[Any, Stubber]:
    ddb = boto3.client("dynamodb", region_name=REGION)
    return ddb, Stubber(ddb)


def _keys(*ks: str) -> list[dict[str, Any]]:
    return [{"pk": {"S": keys.suppression(k).pk}, "sk": {"S": "SUPPRESSION"}} for k in ks]


def test_unprocessed_keys_are_asked_again() -> None:
    ddb, stubber = _stubbed("t")
    request = {"RequestItems": ANY}
    stubber.add_response(
        "batch_get_item",
        {
            "Responses": {"t": [{"pk": {"S": keys.suppression(key(1)).pk}}]},
            "UnprocessedKeys": {"t": {"Keys": _keys(key(2))}},
        },
        request,
    )
    stubber.add_response(
        "batch_get_item", {"Responses": {"t": [{"pk": {"S": keys.suppression(key(2)).pk}}]}}, request
    )
    slept: list[float] = []
    with stubber:
        store = DynamoSuppressions(stack_binding("t"), sleep=slept.append, client=ddb)
        assert store.suppressed([key(1), key(2), key(3)]) == {key(1), key(2)}
    assert len(slept) == 1


def test_keys_left_unprocessed_for_good_are_unavailable() -> None:
    ddb, stubber = _stubbed("t")
    for _ in range(8):
        stubber.add_response(
            "batch_get_item",
            {"Responses": {"t": []}, "UnprocessedKeys": {"t": {"Keys": _keys(key(1))}}},
            {"RequestItems": ANY},
        )
    with stubber:
        store = DynamoSuppressions(stack_binding("t"), sleep=lambda _: None, client=ddb)
        with pytest.raises(DependencyUnavailable, match="unprocessed"):
            store.suppressed([key(1)])


def test_read_errors_are_unavailable() -> None:
    ddb, stubber = _stubbed("t")
    stubber.add_client_error("batch_get_item", service_error_code="ProvisionedThroughputExceededException")
    with stubber:
        store = DynamoSuppressions(stack_binding("t"), client=ddb)
        with pytest.raises(DependencyUnavailable, match="ProvisionedThroughputExceededException"):
            store.suppressed([key(1)])


def stack_binding(name: str) -> Any:
    from bloodbank.storage.models import TableBinding

    return TableBinding(name, REGION)
