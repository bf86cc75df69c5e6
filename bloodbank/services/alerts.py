"""Shortage alerts: recorded once per crossing, published to the alerts topic and to subscribers."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import timedelta

from bloodbank.domain.alerts import (
    DEFAULT_QUIET_PERIOD,
    AlertFilter,
    Announced,
    ShortageAlert,
    alert_for,
    crossing,
)
from bloodbank.domain.identity import Identity
from bloodbank.domain.inventory import StockLevel, StockStatus
from bloodbank.errors import Forbidden, Unauthenticated
from bloodbank.observability import DISCARDED
from bloodbank.ports import AlertFeed, AlertPublisher, AlertStore, Clock, IdGenerator, Metrics, Page
from bloodbank.services.donors import page_size

log = logging.getLogger("bloodbank.alerts")


def may_watch_stock(identity: Identity) -> bool:
    """Staff and hospitals see stock levels, so they may hear of shortages."""
    return identity.is_staff or identity.is_hospital


@dataclass
class AlertService:
    store: AlertStore
    publisher: AlertPublisher
    feed: AlertFeed
    clock: Clock
    new_id: IdGenerator
    quiet: timedelta = DEFAULT_QUIET_PERIOD
    metrics: Metrics = DISCARDED

    def consider(self, levels: Iterable[tuple[StockLevel, Announced]]) -> tuple[list[ShortageAlert], bool]:
        """Announce every level whose status crossed; returns the alerts raised and whether any
        announcement lost a race with another one (then the caller reads again and retries)."""
        now = self.clock()
        raised: list[ShortageAlert] = []
        lost = False
        for level, announced in levels:
            if crossing(level, announced, now, self.quiet) is None:
                continue
            alert = alert_for(level, announced, self.new_id(), now)
            if not self.store.announce(alert, announced):
                lost = True
                continue
            raised.append(alert)
            if alert.is_shortage:  # recorded just now, by this call alone (the announcement's condition)
                self.metrics.count("ShortagesRaised")
                if alert.status is StockStatus.RED:
                    self.metrics.count("StockRedAlerts")
            try:
                self.publisher.publish(alert)
            except Exception as exc:  # recorded and listed all the same; subscribers may miss it
                log.warning("alert not published", extra={"alert": alert.id, "exception": type(exc).__name__})
        return raised, lost

    def list(
        self, identity: Identity, site_id: str | None, limit: int | None, next_token: str | None
    ) -> Page[ShortageAlert]:
        if not may_watch_stock(identity):
            raise Forbidden("Only blood service staff and hospitals see shortage alerts")
        return self.store.alerts(site_id, page_size(limit), next_token)

    def subscribe(self, identity: Identity, wanted: AlertFilter) -> AsyncIterator[ShortageAlert]:
        """Matching alerts until the subscriber's token expires (then an UNAUTHENTICATED error)."""
        if not may_watch_stock(identity):
            raise Forbidden("Only blood service staff and hospitals hear of shortages")
        expires = identity.claims.get("exp")
        return _until(
            self.feed.subscribe(wanted), float(expires) if isinstance(expires, int | float) else None
        )


async def _until(
    alerts: AsyncIterator[ShortageAlert], expires_at: float | None
) -> AsyncIterator[ShortageAlert]:
    """``alerts`` until the epoch second ``expires_at``; then the subscription ends as unauthorised."""
    try:
        while True:
            left = None if expires_at is None else expires_at - time.time()
            if left is not None and left <= 0:
                raise Unauthenticated("Your sign-in expired: subscribe again with a fresh token")
            try:
                alert = await asyncio.wait_for(anext(alerts), left)
            except TimeoutError:
                raise Unauthenticated("Your sign-in expired: subscribe again with a fresh token") from None
            yield alert
    finally:
        closing = getattr(alerts, "aclose", None)
        if closing is not None:
            await closing()
