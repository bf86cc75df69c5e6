"""Transactions whose failed conditions come back by name, retries for ones that only collided, and the
mutation's audit record added to its first write (``bloodbank.domain.audit``)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from botocore.exceptions import ClientError
from pynamodb.connection import Connection
from pynamodb.exceptions import PutError, TransactWriteError, UpdateError
from pynamodb.expressions.condition import Condition
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from bloodbank.domain import audit
from bloodbank.storage import keys
from bloodbank.storage.audit import audit_item
from bloodbank.storage.models import AuditEventItem

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

    While a mutation runs, its audit record joins the first transaction it commits (as the item
    named ``audit``), naming the first item put, updated or deleted as the record's target unless the
    mutation's arguments named one.
    """

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._tx = TransactWrite(connection=connection)
        self._names: dict[str, list[str]] = {"check": [], "delete": [], "put": [], "update": []}
        self._first: keys.Key | None = None

    def _wrote(self, item: Model) -> None:
        if self._first is None:
            self._first = keys.Key(str(getattr(item, "pk", "")), str(getattr(item, "sk", "")))

    def check(self, name: str, model: type[Model], key: keys.Key, condition: Condition) -> None:
        self._tx.condition_check(model, key.pk, key.sk, condition=condition)
        self._names["check"].append(name)

    def delete(self, name: str, item: Model, condition: Condition | None = None) -> None:
        self._tx.delete(item, condition=condition)
        self._names["delete"].append(name)
        self._wrote(item)

    def put(self, name: str, item: Model, condition: Condition | None = None) -> None:
        self._tx.save(item, condition=condition)
        self._names["put"].append(name)
        self._wrote(item)

    def update(self, name: str, item: Model, actions: list[Any], condition: Condition | None = None) -> None:
        self._tx.update(item, actions, condition=condition)
        self._names["update"].append(name)
        self._wrote(item)

    def commit(self) -> None:
        scope = audit.pending.get()
        event = None
        if scope is not None and not scope.written and self._first is not None and self._size() < MAX_ITEMS:
            target = keys.audit_target(self._first)
            event = scope.with_target(audit.Target(*target) if target else None)
            self._tx.save(audit_item(event), condition=AuditEventItem.pk.does_not_exist())
            self._names["put"].append("audit")
        order = [n for kind in ("check", "delete", "put", "update") for n in self._names[kind]]
        if len(order) > MAX_ITEMS:
            raise ValueError(f"a transaction holds at most {MAX_ITEMS} items, not {len(order)}")
        try:
            self._tx._commit()
        except TransactWriteError as exc:
            failed = _failed_names(exc, order)
            if "audit" in failed:  # a record with this id exists: never the caller's fault, never a conflict
                raise RuntimeError("the audit record's id is taken; nothing was written") from exc
            raise ConditionsFailed(failed) from exc
        if scope is not None and event is not None:
            scope.event, scope.written = event, True

    def _size(self) -> int:
        return sum(len(names) for names in self._names.values())


def save(item: Model, condition: Condition | None = None) -> None:
    """``item.save(condition=...)``; during a mutation, in one transaction with its audit record.

    Fails as ``item.save`` does (``PutError``, ``ConditionalCheckFailedException`` for a failed
    condition), so callers handle one kind of error either way.
    """
    if not _audit_due():
        item.save(condition=condition)
        return
    tx = Transaction(item._get_connection().connection)
    tx.put("item", item, condition)
    _commit_single(tx, PutError)


def update(item: Model, actions: list[Any], condition: Condition | None = None) -> None:
    """``item.update(actions=..., condition=...)``; during a mutation, in one transaction with its audit
    record. Fails as ``item.update`` does (``UpdateError``)."""
    if not _audit_due():
        item.update(actions=actions, condition=condition)
        return
    tx = Transaction(item._get_connection().connection)
    tx.update("item", item, actions, condition)
    _commit_single(tx, UpdateError)


def _audit_due() -> bool:
    scope = audit.pending.get()
    return scope is not None and not scope.written


def _commit_single(tx: Transaction, error: type[PutError] | type[UpdateError]) -> None:
    try:
        tx.commit()
    except ConditionsFailed as exc:
        reply = {
            "Error": {"Code": "ConditionalCheckFailedException", "Message": "The conditional request failed"}
        }
        raise error("the condition did not hold", ClientError(reply, "TransactWriteItems")) from exc
    except TransactWriteError as exc:
        if collided(exc):
            raise  # retry_on_transaction_conflict runs it again
        raise error("the write failed", exc.cause) from exc


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
