"""Shortage alerts: when a stock level's status is announced, once per crossing, without flapping.

A level's *announced* status is what subscribers last heard (GREEN until the first alert). Getting
worse (GREEN -> AMBER -> RED) is announced at once: a shortage must be seen the moment it happens.
Getting better is announced only once the quiet period since the last alert has passed, so a level
that goes back and forth across a threshold within the quiet period raises one alert, not a storm;
a recovery held back is announced by the next evaluation after the quiet period (the expiry sweep
re-evaluates every level every 15 minutes).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bloodbank.domain.blood import BloodGroup, Component
from bloodbank.domain.inventory import StockLevel, StockStatus

DEFAULT_QUIET_PERIOD = timedelta(minutes=30)
SEVERITY = {StockStatus.GREEN: 0, StockStatus.AMBER: 1, StockStatus.RED: 2}


@dataclass(frozen=True, slots=True)
class Announced:
    """What was last announced for a level, and when (None: never: GREEN is assumed)."""

    status: StockStatus
    at: datetime | None
    version: int  # of the announcement state: an alert is recorded only if nobody recorded one since


NEVER = Announced(StockStatus.GREEN, None, 0)


@dataclass(frozen=True, slots=True)
class ShortageAlert:
    id: str
    site_id: str
    blood_group: BloodGroup
    component: Component
    status: StockStatus
    previous_status: StockStatus
    available: int
    threshold: int  # the par level
    days_of_supply: float | None
    raised_at: datetime

    @property
    def is_shortage(self) -> bool:
        return self.status is not StockStatus.GREEN


def crossing(
    level: StockLevel, announced: Announced, now: datetime, quiet: timedelta = DEFAULT_QUIET_PERIOD
) -> StockStatus | None:
    """The status to announce now, or None when nothing is to be said."""
    if level.status is announced.status:
        return None
    worse = SEVERITY[level.status] > SEVERITY[announced.status]
    if worse or announced.at is None or now - announced.at >= quiet:
        return level.status
    return None  # better again within the quiet period: held back, announced later if it lasts


def alert_for(level: StockLevel, announced: Announced, alert_id: str, now: datetime) -> ShortageAlert:
    return ShortageAlert(
        id=alert_id,
        site_id=level.site_id,
        blood_group=level.blood_group,
        component=level.component,
        status=level.status,
        previous_status=announced.status,
        available=level.available,
        threshold=level.par_level,
        days_of_supply=level.days_of_supply,
        raised_at=now,
    )


@dataclass(frozen=True, slots=True)
class AlertFilter:
    """What a subscriber asked for: None matches every value."""

    site_id: str | None = None
    blood_group: BloodGroup | None = None
    component: Component | None = None

    def matches(self, alert: ShortageAlert) -> bool:
        return (
            (self.site_id is None or alert.site_id == self.site_id)
            and (self.blood_group is None or alert.blood_group is self.blood_group)
            and (self.component is None or alert.component is self.component)
        )


def _integer(document: Mapping[str, object], name: str) -> int:
    value = document[name]
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{name} must be an integer")
    return value


def _text(document: Mapping[str, object], name: str) -> str:
    value = document[name]
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string")
    return value


def alert_from_document(document: Mapping[str, object]) -> ShortageAlert:
    """The alert back from its published document (``adapters.sns.alert_document``, the alerts
    topic's message). Raises ValueError when a field is missing or not what the document holds."""
    try:
        supply = document.get("daysOfSupply")
        if supply is not None and (not isinstance(supply, int | float) or isinstance(supply, bool)):
            raise ValueError("daysOfSupply must be a number or null")
        raised_at = datetime.fromisoformat(_text(document, "raisedAt"))
        return ShortageAlert(
            id=_text(document, "id"),
            site_id=_text(document, "siteId"),
            blood_group=BloodGroup(document["bloodGroup"]),
            component=Component(document["component"]),
            status=StockStatus(document["status"]),
            previous_status=StockStatus(document["previousStatus"]),
            available=_integer(document, "available"),
            threshold=_integer(document, "threshold"),
            days_of_supply=float(supply) if supply is not None else None,
            raised_at=raised_at if raised_at.tzinfo else raised_at.replace(tzinfo=UTC),
        )
    except KeyError as missing:
        raise ValueError(f"the alert document has no {missing.args[0]}") from None
