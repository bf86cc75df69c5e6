"""Sending at the account's rate: a pacer that spaces sends, and a backoff for when SES throttles anyway.

SES enforces a maximum send rate per account (``GetSendQuota``'s ``MaxSendRate``: read it, never
hard-code it). ``Pacer`` spaces calls evenly at that rate. If SES still throttles (another sender
shares the account, or the rate was lowered), ``send_with_backoff`` waits exponentially longer with
jitter, a bounded number of times, and halves the pacer's rate; each success creeps the rate back
up towards the account's, additive increase and multiplicative decrease as TCP does. Clock and sleep
are injected: tests run with a fake clock and never sleep.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from bloodbank.domain.mail import SendThrottled

T = TypeVar("T")

Seconds = Callable[[], float]
Sleep = Callable[[float], None]


class Pacer:
    """A token bucket of one token refilled at ``rate_per_second``: each ``wait`` takes the next
    free slot, so calls are spaced ``1 / rate`` apart. Thread-safe: a slot is reserved under the
    lock, the wait for it happens outside."""

    def __init__(
        self,
        rate_per_second: float,
        clock: Seconds = time.monotonic,
        sleep: Sleep = time.sleep,
        *,
        min_rate: float = 0.1,
        recovery: float = 0.02,  # each success adds this share of the ceiling back
    ) -> None:
        if rate_per_second <= 0:
            raise ValueError("rate_per_second must be positive")
        self.ceiling = rate_per_second
        self.rate = rate_per_second
        self.min_rate = min(min_rate, rate_per_second)
        self.recovery = recovery
        self._clock = clock
        self.sleep = sleep  # also what the backoff waits with
        self._lock = threading.Lock()
        self._next_slot: float | None = None

    def wait(self) -> float:
        """Blocks until the next send may go; the seconds waited."""
        with self._lock:
            now = self._clock()
            slot = now if self._next_slot is None else max(now, self._next_slot)
            self._next_slot = slot + 1.0 / self.rate
        delay = slot - now
        if delay > 0:
            self.sleep(delay)
        return delay

    def slow_down(self) -> None:
        """SES throttled us: halve the rate (not below ``min_rate``)."""
        with self._lock:
            self.rate = max(self.min_rate, self.rate / 2)

    def succeeded(self) -> None:
        """A send went through: creep back up towards the ceiling."""
        with self._lock:
            self.rate = min(self.ceiling, self.rate + self.ceiling * self.recovery)

    def set_ceiling(self, rate_per_second: float) -> None:
        """The account's rate changed (a fresh ``GetSendQuota``): never go above it."""
        if rate_per_second <= 0:
            raise ValueError("rate_per_second must be positive")
        with self._lock:
            self.ceiling = rate_per_second
            self.rate = min(self.rate, rate_per_second)


@dataclass(frozen=True, slots=True)
class Backoff:
    """How long to keep trying a throttled send: ``attempts`` calls in all, waiting ``initial``
    seconds after the first throttle, doubling up to ``maximum``, plus up to ``jitter`` at random
    (so that many senders throttled together do not come back together)."""

    attempts: int = 6
    initial: float = 0.25
    maximum: float = 8.0
    jitter: float = 0.25


def send_with_backoff(send: Callable[[], T], pacer: Pacer, policy: Backoff = Backoff()) -> T:
    """``send()`` in its paced slot; on ``SendThrottled`` slow the pacer, back off and try again.
    After ``policy.attempts`` throttled calls the last ``SendThrottled`` is raised: the caller keeps
    the recipient unsent (its message goes back to the queue), so throttling never loses mail.
    Anything else ``send`` raises is raised at once."""
    from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

    retrying = Retrying(
        retry=retry_if_exception_type(SendThrottled),
        stop=stop_after_attempt(policy.attempts),
        wait=wait_exponential_jitter(multiplier=policy.initial, max=policy.maximum, jitter=policy.jitter),
        sleep=pacer.sleep,
        before_sleep=lambda _state: pacer.slow_down(),
        reraise=True,
    )

    def paced() -> T:
        pacer.wait()
        result = send()
        pacer.succeeded()
        return result

    return retrying(paced)
