"""The WebSocket connection store: the in-memory fake and DynamoDB Local keep the same promises.

Also: the management API adapter tells a gone connection from a failure (botocore's Stubber).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import boto3
import pytest
from botocore.stub import Stubber

from bloodbank.adapters.apigateway import ApiGatewayConnections
from bloodbank.domain.alerts import AlertFilter
from bloodbank.domain.blood import BloodGroup, Component
from bloodbank.domain.identity import Group
from bloodbank.domain.subscriptions import KEEP_ITEMS, Connection, StoredSubscription, Subscriber
from bloodbank.errors import DependencyUnavailable
from bloodbank.fakes import InMemoryConnections
from bloodbank.local import stack
from bloodbank.ports import ConnectionStore
from bloodbank.storage.connections import DynamoConnections
from tests.conftest import REGION

NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
ENDPOINT = "https://abc123.execute-api.eu-west-2.amazonaws.com/prod"
STAFF = Subscriber("staff-1", frozenset({Group.STAFF}), None, 1_900_000_000)
HOSPITAL = Subscriber("hospital-user", frozenset({Group.HOSPITALS}), "hosp-st-mary", None)


@pytest.fixture(params=["memory", "dynamodb-local"])
def store(request: pytest.FixtureRequest) -> Iterator[ConnectionStore]:
    if request.param == "memory":
        yield InMemoryConnections()
        return
    endpoint = request.getfixturevalue("dynamodb_local")
    binding = stack.open_table(endpoint, REGION, f"bloodbank-{uuid.uuid4().hex[:12]}")
    yield DynamoConnections(binding)


def subscription(
    connection: str, sub_id: str, wanted: AlertFilter, subscriber: Subscriber = STAFF
) -> StoredSubscription:
    return StoredSubscription(
        connection_id=connection,
        id=sub_id,
        endpoint=ENDPOINT,
        query="subscription($s: ID) { onShortageAlert(siteId: $s) { id } }",
        variables={"s": wanted.site_id} if wanted.site_id else None,
        operation_name=None,
        wanted=wanted,
        subscriber=subscriber,
        created_at=NOW,
        keep_until=NOW + KEEP_ITEMS,
    )


def test_connections_round_trip_and_are_listed(store: ConnectionStore) -> None:
    store.save_connection(Connection("Zx1=", ENDPOINT, NOW, HOSPITAL))
    store.save_connection(Connection("Ab2=", ENDPOINT, NOW, None))
    assert store.connection("Zx1=") == Connection("Zx1=", ENDPOINT, NOW, HOSPITAL)
    assert store.connection("Ab2=") == Connection("Ab2=", ENDPOINT, NOW, None)
    assert store.connection("nope") is None
    assert sorted(c.id for c in store.connections()) == ["Ab2=", "Zx1="]


def test_subscriptions_are_found_by_the_site_they_want_or_for_every_site(store: ConnectionStore) -> None:
    store.save_connection(Connection("c1", ENDPOINT, NOW, None))
    north = subscription("c1", "1", AlertFilter("site-north", BloodGroup.O_NEG, Component.RED_CELLS))
    every = subscription("c1", "2", AlertFilter(), HOSPITAL)
    south = subscription("c1", "3", AlertFilter("site-south"))
    for s in (north, every, south):
        assert store.save_subscription(s)
    assert not store.save_subscription(north)  # an id a connection already runs
    assert sorted(s.id for s in store.subscriptions_for("site-north")) == ["1", "2"]
    found = {s.id: s for s in store.subscriptions_for("site-north")}
    assert found["1"] == north
    assert found["2"] == every
    assert store.subscription_count("c1") == 3
    store.drop_subscription("c1", "1")
    store.drop_subscription("c1", "1")  # gone already: no error
    assert [s.id for s in store.subscriptions_for("site-north")] == ["2"]
    assert store.subscription_count("c1") == 2


def test_dropping_a_connection_drops_all_it_held_and_nothing_else(store: ConnectionStore) -> None:
    for connection in ("c1", "c2"):
        store.save_connection(Connection(connection, ENDPOINT, NOW, STAFF))
    for n in range(30):  # more than one batch of deletes
        store.save_subscription(subscription("c1", f"s{n}", AlertFilter("site-north")))
    store.save_subscription(subscription("c2", "s0", AlertFilter("site-north")))
    store.drop_connection("c1")
    store.drop_connection("c1")
    assert store.connection("c1") is None
    assert [(s.connection_id, s.id) for s in store.subscriptions_for("site-north")] == [("c2", "s0")]
    assert [c.id for c in store.connections()] == ["c2"]


def test_concurrent_starts_of_one_id_store_it_once(store: ConnectionStore) -> None:
    store.save_connection(Connection("c1", ENDPOINT, NOW, STAFF))
    same = subscription("c1", "dup", AlertFilter())
    with ThreadPoolExecutor(8) as pool:
        won = list(pool.map(lambda _: store.save_subscription(same), range(8)))
    assert won.count(True) == 1
    assert store.subscription_count("c1") == 1


def test_the_management_api_adapter_tells_gone_from_failed() -> None:
    client = boto3.client(
        "apigatewaymanagementapi",
        endpoint_url=ENDPOINT,
        region_name="eu-west-2",
        aws_access_key_id="x",
        aws_secret_access_key="x",
    )
    poster = ApiGatewayConnections(lambda endpoint: client)
    with Stubber(client) as stub:
        stub.add_response("post_to_connection", {}, {"ConnectionId": "c1", "Data": b'{"type":"ka"}'})
        stub.add_client_error("post_to_connection", "GoneException", http_status_code=410)
        stub.add_client_error("post_to_connection", "LimitExceededException", http_status_code=429)
        stub.add_client_error("delete_connection", "GoneException", http_status_code=410)
        assert poster.post(ENDPOINT, "c1", {"type": "ka"}) is True
        assert poster.post(ENDPOINT, "c1", {"type": "ka"}) is False
        with pytest.raises(DependencyUnavailable, match="LimitExceededException"):
            poster.post(ENDPOINT, "c1", {"type": "ka"})
        poster.close(ENDPOINT, "c1")  # gone already: no error
