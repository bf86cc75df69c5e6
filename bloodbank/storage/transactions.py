"""Reading why DynamoDB cancelled a transaction, and retrying the ones that only collided."""

from __future__ import annotations

from collections.abc import Callable
from typing import ParamSpec, TypeVar

from pynamodb.exceptions import TransactWriteError
from tenacity import retry, retry_if_exception, stop_after_attempt, wait_random_exponential

P = ParamSpec("P")
R = TypeVar("R")


def cancellation_codes(exc: TransactWriteError, count: int) -> list[bool]:
    """For each of the transaction's ``count`` items, whether its condition failed.

    Anything other than a failed condition (a collision with another transaction, throttling,
    validation) is re-raised so callers only map real condition failures to client errors.
    """
    if exc.cause_response_code != "TransactionCanceledException":
        raise exc
    reasons = list(exc.cancellation_reasons or [])
    reasons += [None] * (count - len(reasons))
    codes = [r.code if r is not None else None for r in reasons[:count]]
    if any(c not in (None, "None", "ConditionalCheckFailed") for c in codes):
        raise exc
    return [c == "ConditionalCheckFailed" for c in codes]


def _collided(exc: BaseException) -> bool:
    if not isinstance(exc, TransactWriteError):
        return False
    if exc.cause_response_code == "TransactionConflictException":
        return True
    reasons = (
        exc.cancellation_reasons or [] if exc.cause_response_code == "TransactionCanceledException" else []
    )
    return any(r is not None and r.code == "TransactionConflict" for r in reasons)


def retry_on_transaction_conflict(fn: Callable[P, R]) -> Callable[P, R]:
    """Run a transaction again when it only lost a race with another one on the same items.

    The retry re-evaluates every condition, so a real conflict then shows as a failed condition.
    """
    return retry(
        retry=retry_if_exception(_collided),
        stop=stop_after_attempt(4),
        wait=wait_random_exponential(multiplier=0.02, max=0.25),
        reraise=True,
    )(fn)
