"""Suppressed addresses in the single table (ACCESS_PATTERNS.md, "Campaigns: suppressions").

An address is known only by its ``campaigns.address_key`` (a SHA-256): ``SUPPRESS#<key>`` /
``SUPPRESSION`` says it is suppressed and why; ``SUPPRESS#<key>`` / ``TRANSIENT`` counts its transient
bounces apart, so counting never suppresses by itself (the rules in ``domain.suppression`` decide).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pynamodb.exceptions import PutError, UpdateError

from bloodbank.domain.campaigns import SuppressionReason
from bloodbank.errors import DependencyUnavailable
from bloodbank.storage import keys
from bloodbank.storage.models import SuppressionItem, TableBinding, TableItem, TransientBouncesItem

_CONDITION_FAILED = "ConditionalCheckFailedException"
BATCH_GET_LIMIT = 100  # keys per BatchGetItem request (DynamoDB's limit)
MAX_ROUNDS = 8  # BatchGetItem calls for one batch before giving up on its unprocessed keys
TRANSIENT_MEMORY = timedelta(days=180)  # a transient bounce count is forgotten this long after the last


class DynamoSuppressions:
    """Implements ``Suppressions`` over the table the models are bound to. ``sleep`` waits between
    rounds of unprocessed keys; ``client`` replaces the models' botocore client for BatchGetItem
    (tests stub it)."""

    def __init__(
        self,
        binding: TableBinding | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        client: Any = None,
    ) -> None:
        self._binding = binding
        self._sleep = sleep
        self._batch_client = client

    def _client(self) -> Any:
        return self._batch_client or TableItem._get_connection().connection.client

    def _table(self) -> str:
        return self._binding.name if self._binding else str(TableItem.Meta.table_name)

    def suppressed(self, keys_: Sequence[str]) -> set[str]:
        """BatchGetItem of each key's ``SUPPRESSION`` item (keys only), 100 keys a request."""
        wanted = list(dict.fromkeys(keys_))  # BatchGetItem refuses a request with duplicate keys
        found: set[str] = set()
        for start in range(0, len(wanted), BATCH_GET_LIMIT):
            found |= self._batch(wanted[start : start + BATCH_GET_LIMIT])
        return found

    def _batch(self, batch: Sequence[str]) -> set[str]:
        """One batch, retrying what DynamoDB left unprocessed (throttled) with backoff and jitter."""
        table = self._table()
        pending: list[dict[str, Any]] = [_key(keys.suppression(k)) for k in batch]
        found: set[str] = set()
        for round_ in range(MAX_ROUNDS):
            if round_:
                self._sleep(random.uniform(0, min(1.0, 0.05 * 2**round_)))  # noqa: S311 (jitter)
            request = {table: {"Keys": pending, "ProjectionExpression": "pk", "ConsistentRead": True}}
            try:
                reply = self._client().batch_get_item(RequestItems=request)
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "Unknown")
                raise DependencyUnavailable(f"suppression read failed: {code}") from None
            except (BotoCoreError, OSError) as exc:
                raise DependencyUnavailable(f"suppression read failed: {type(exc).__name__}") from None
            for item in reply.get("Responses", {}).get(table, []):
                found.add(item["pk"]["S"].removeprefix(keys.suppression_partition("")))
            pending = reply.get("UnprocessedKeys", {}).get(table, {}).get("Keys", [])
            if not pending:
                return found
        raise DependencyUnavailable(f"suppression read failed: {len(pending)} keys left unprocessed")

    def suppress(self, key: str, reason: SuppressionReason, at: datetime) -> bool:
        """PutItem if the address is not suppressed yet (its first reason stays)."""
        item = SuppressionItem(reason=reason.value, suppressed_at=at)
        item.set_key(keys.suppression(key))
        try:
            item.save(condition=SuppressionItem.pk.does_not_exist())
        except PutError as exc:
            if exc.cause_response_code == _CONDITION_FAILED:
                return False
            raise DependencyUnavailable(
                f"suppression write failed: {exc.cause_response_code or 'no reply'}"
            ) from None
        return True

    def count_transient(self, key: str, at: datetime) -> int:
        """UpdateItem ``ADD bounces 1`` of the ``TRANSIENT`` item (made by the first), the new count."""
        item = TransientBouncesItem()
        item.set_key(keys.transient_bounces(key))
        actions: list[Any] = [
            TableItem.entity.set(TransientBouncesItem),
            TransientBouncesItem.bounces.add(1),
            TransientBouncesItem.last_bounce_at.set(at),
            TransientBouncesItem.expires.set(int((at + TRANSIENT_MEMORY).timestamp())),
        ]
        try:
            item.update(actions=actions)
        except UpdateError as exc:
            raise DependencyUnavailable(
                f"transient bounce count failed: {exc.cause_response_code or 'no reply'}"
            ) from None
        return int(item.bounces)


def _key(key: keys.Key) -> dict[str, Any]:
    return {"pk": {"S": key.pk}, "sk": {"S": key.sk}}
