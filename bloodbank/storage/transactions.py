"""Transactions whose failed conditions come back by name, and retries for ones that only collided."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from pynamodb.connection import Connection
from pynamodb.exceptions import TransactWriteError
from pynamodb.expressions.condition import Condition
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from bloodbank.storage import keys

P = ParamSpec("P")
R = TypeVar("R")
MAX_ITEMS = 100  # DynamoDB's limit per TransactWriteItems


class ConditionsFailed(Exception):
    """The transaction was cancelled because these named conditions did not hold; nothing was written."""

    def __init__(self, failed: set[str]) -> None:
        super().__init__(", ".join(sorted(failed)))
        self.failed = failed


class Transaction:
    """A TransactWrite with a name for each item.

    PynamoDB sends condition checks, then deletes, then puts, then updates, whatever order they were
    added in; DynamoDB reports cancellation reasons in the order sent. Names keep that straight.
    """

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._tx = TransactWrite(connection=connection)
        self._names: dict[str, list[str]] = {"check": [], "delete": [], "put": [], "update": []}

    def check(self, name: str, model: type[Model], key: keys.Key, condition: Condition) -> None:
        self._tx.condition_check(model, key.pk, key.sk, condition=condition)
        self._names["check"].append(name)

    def delete(self, name: str, item: Model, condition: Condition | None = None) -> None:
        self._tx.delete(item, condition=condition)
        self._names["delete"].append(name)

    def put(self, name: str, item: Model, condition: Condition | None = None) -> None:
        self._tx.save(item, condition=condition)
        self._names["put"].append(name)

    def update(self, name: str, item: Model, actions: list[Any], condition: Condition | None = None) -> None:
        self._tx.update(item, actions, condition=condition)
        self._names["update"].append(name)

    def commit(self) -> None:
        order = [n for kind in ("check", "delete", "put", "update") for n in self._names[kind]]
        if len(order) > MAX_ITEMS:
            raise ValueError(f"a transaction holds at most {MAX_ITEMS} items, not {len(order)}")
        try:
            self._tx._commit()
        except TransactWriteError as exc:
            raise ConditionsFailed(_failed_names(exc, order)) from exc


def _failed_names(exc: TransactWriteError, order: list[str]) -> set[str]:
    """Which named items failed their condition; any other cause is re-raised as is."""
    if exc.cause_response_code != "TransactionCanceledException":
        raise exc
    reasons = list(exc.cancellation_reasons or [])
    codes = [r.code if r is not None else None for r in reasons]
    if any(c not in (None, "None", "ConditionalCheckFailed") for c in codes):
        raise exc
    return {name for name, code in zip(order, codes, strict=False) if code == "ConditionalCheckFailed"}


def collided(exc: BaseException) -> bool:
    """The transaction lost a race with another one on the same items (not a failed condition)."""
    if not isinstance(exc, TransactWriteError):
        return False
    if exc.cause_response_code == "TransactionConflictException":
        return True
    if exc.cause_response_code != "TransactionCanceledException":
        return False
    return any(r is not None and r.code == "TransactionConflict" for r in exc.cancellation_reasons or [])


def retry_on_transaction_conflict(fn: Callable[P, R]) -> Callable[P, R]:
    """Run a transaction again when it only lost a race with another one on the same items.

    The retry re-evaluates every condition, so a real conflict then shows as a failed condition.
    The tenacity policy is built on first use, keeping its import out of cold starts.
    """
    retrying: Callable[P, R] | None = None

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        nonlocal retrying
        if retrying is None:
            from tenacity import retry, retry_if_exception, stop_after_attempt, wait_random_exponential

            retrying = retry(
                retry=retry_if_exception(collided),
                stop=stop_after_attempt(4),
                wait=wait_random_exponential(multiplier=0.02, max=0.25),
                reraise=True,
            )(fn)
        return retrying(*args, **kwargs)

    return wrapper
