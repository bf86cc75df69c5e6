"""Alerts to the GraphQL subscriptions of this process (the local server's WebSockets).

``publish`` may be called from any thread (services run in Starlette's thread pool); each
subscriber gets the alert on its own event loop's queue. A subscriber that falls behind by more
than ``MAX_QUEUED`` alerts loses the oldest ones rather than holding memory without bound.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from bloodbank.domain.alerts import AlertFilter, ShortageAlert
from bloodbank.ports import AlertPublisher

MAX_QUEUED = 100


@dataclass(eq=False)
class _Subscriber:
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[ShortageAlert]
    wanted: AlertFilter


class LocalAlertBroker:
    """Implements ``AlertPublisher`` and ``AlertFeed`` in memory."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: set[_Subscriber] = set()

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def publish(self, alert: ShortageAlert) -> None:
        with self._lock:
            targets = [s for s in self._subscribers if s.wanted.matches(alert)]
        for s in targets:
            try:
                s.loop.call_soon_threadsafe(_offer, s.queue, alert)
            except RuntimeError:  # its loop has closed: the subscription is going away
                continue

    async def subscribe(self, wanted: AlertFilter) -> AsyncIterator[ShortageAlert]:
        subscriber = _Subscriber(asyncio.get_running_loop(), asyncio.Queue(MAX_QUEUED), wanted)
        with self._lock:
            self._subscribers.add(subscriber)
        try:
            while True:
                yield await subscriber.queue.get()
        finally:
            with self._lock:
                self._subscribers.discard(subscriber)


def _offer(queue: asyncio.Queue[ShortageAlert], alert: ShortageAlert) -> None:
    if queue.full():
        queue.get_nowait()
    queue.put_nowait(alert)


class FanOut:
    """Publishes to each publisher in turn; one that fails does not stop the others."""

    def __init__(self, publishers: Sequence[AlertPublisher]) -> None:
        self._publishers = list(publishers)

    def publish(self, alert: ShortageAlert) -> None:
        failure: Exception | None = None
        for publisher in self._publishers:
            try:
                publisher.publish(alert)
            except Exception as exc:
                failure = exc
        if failure is not None:
            raise failure
