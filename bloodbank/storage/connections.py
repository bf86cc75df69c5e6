"""API Gateway WebSocket connections and their GraphQL subscriptions, in the single table.

``WSCONN#<connection>`` holds ``CONNECTION`` and one ``SUB#<id>`` per subscription, so a disconnect
drops them all with one Query and one batch of deletes. Subscriptions are indexed on gsi1 by the
site whose alerts they want (``WSSUBS#SITE#<site>``, or ``WSSUBS#SITE#*`` for every site): a fan-out
reads two index partitions, never the table. Connections are listed on gsi3 (``WSCONNS``) for the
keep-alive. Every item carries ``expires``, so the table's TTL removes what a lost $disconnect left.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime

from pynamodb.exceptions import DoesNotExist, PutError

from bloodbank.domain.alerts import AlertFilter
from bloodbank.domain.blood import BloodGroup, Component
from bloodbank.domain.subscriptions import Connection, StoredSubscription, Subscriber
from bloodbank.storage import keys
from bloodbank.storage.models import TableBinding, TableItem, WsConnectionItem, WsSubscriptionItem

_CONDITION_FAILED = "ConditionalCheckFailedException"


def _epoch(at: datetime) -> int:
    return int(at.timestamp())


def _subscriber_json(subscriber: Subscriber | None) -> str | None:
    return None if subscriber is None else json.dumps(subscriber.as_item(), separators=(",", ":"))


def to_connection(item: WsConnectionItem) -> Connection:
    subscriber = Subscriber.from_item(json.loads(item.subscriber)) if item.subscriber else None
    return Connection(item.connection_id, item.endpoint, item.connected_at, subscriber)


def to_subscription(item: WsSubscriptionItem) -> StoredSubscription:
    wanted = AlertFilter(
        item.site_id,
        BloodGroup(item.blood_group) if item.blood_group else None,
        Component(item.component) if item.component else None,
    )
    return StoredSubscription(
        connection_id=item.connection_id,
        id=item.subscription_id,
        endpoint=item.endpoint,
        query=item.document,
        variables=json.loads(item.variables) if item.variables else None,
        operation_name=item.operation_name,
        wanted=wanted,
        subscriber=Subscriber.from_item(json.loads(item.subscriber)),
        created_at=item.created_at,
        keep_until=datetime.fromtimestamp(int(item.expires), item.created_at.tzinfo),
    )


class DynamoConnections:
    """Implements ``ConnectionStore`` over the table the models are bound to (``models.bind``)."""

    def __init__(self, binding: TableBinding | None = None) -> None:
        self._binding = binding

    def save_connection(self, connection: Connection) -> None:
        item = WsConnectionItem(
            connection_id=connection.id,
            endpoint=connection.endpoint,
            connected_at=connection.connected_at,
            subscriber=_subscriber_json(connection.subscriber),
            expires=_epoch(connection.keep_until),
        )
        item.set_key(keys.ws_connection(connection.id))
        item.set_index(keys.ws_connection_index(connection.id))
        item.save()

    def connection(self, connection_id: str) -> Connection | None:
        key = keys.ws_connection(connection_id)
        try:
            item = WsConnectionItem.get(key.pk, key.sk, consistent_read=True)
        except DoesNotExist:
            return None
        return to_connection(item)

    def drop_connection(self, connection_id: str) -> None:
        partition = keys.ws_connection_partition(connection_id)
        with TableItem.batch_write() as batch:
            for item in TableItem.query(partition, attributes_to_get=["pk", "sk"]):
                batch.delete(item)

    def subscription_count(self, connection_id: str) -> int:
        return int(
            TableItem.count(
                keys.ws_connection_partition(connection_id),
                TableItem.sk.startswith(keys.WS_SUBSCRIPTION_PREFIX),
            )
        )

    def save_subscription(self, subscription: StoredSubscription) -> bool:
        wanted = subscription.wanted
        item = WsSubscriptionItem(
            connection_id=subscription.connection_id,
            subscription_id=subscription.id,
            endpoint=subscription.endpoint,
            document=subscription.query,
            variables=None
            if subscription.variables is None
            else json.dumps(subscription.variables, separators=(",", ":")),
            operation_name=subscription.operation_name,
            site_id=wanted.site_id,
            blood_group=wanted.blood_group.value if wanted.blood_group else None,
            component=wanted.component.value if wanted.component else None,
            subscriber=_subscriber_json(subscription.subscriber),
            created_at=subscription.created_at,
            expires=_epoch(subscription.keep_until),
        )
        item.set_key(keys.ws_subscription(subscription.connection_id, subscription.id))
        item.set_index(
            keys.ws_subscription_index(wanted.site_id, subscription.connection_id, subscription.id)
        )
        try:
            item.save(condition=WsSubscriptionItem.pk.does_not_exist())
        except PutError as exc:
            if exc.cause_response_code == _CONDITION_FAILED:
                return False
            raise
        return True

    def drop_subscription(self, connection_id: str, subscription_id: str) -> None:
        item = WsSubscriptionItem()
        item.set_key(keys.ws_subscription(connection_id, subscription_id))
        item.delete()

    def subscriptions_for(self, site_id: str) -> Iterator[StoredSubscription]:
        for partition in (
            keys.ws_subscriptions_of_site_partition(site_id),
            keys.ws_subscriptions_of_site_partition(None),
        ):
            for item in TableItem.gsi1.query(partition):
                if isinstance(item, WsSubscriptionItem):
                    yield to_subscription(item)

    def connections(self) -> Iterator[Connection]:
        for item in TableItem.gsi3.query(keys.ALL_CONNECTIONS):
            if isinstance(item, WsConnectionItem):
                yield to_connection(item)
