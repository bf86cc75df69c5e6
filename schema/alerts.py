"""GraphQL types of shortage alerts."""

from __future__ import annotations

from datetime import datetime

import strawberry

from schema.enums import BloodGroup, Component
from schema.inventory import StockStatus


@strawberry.type(
    description=(
        "A stock level crossed into AMBER or RED, or recovered to GREEN: raised once per crossing"
        " (a level going back and forth within the quiet period raises one alert)."
    )
)
class ShortageAlert:
    id: strawberry.ID
    site_id: strawberry.ID
    blood_group: BloodGroup  # type: ignore[valid-type]
    component: Component  # type: ignore[valid-type]
    status: StockStatus  # type: ignore[valid-type]
    previous_status: StockStatus  # type: ignore[valid-type]
    available: int
    threshold: int = strawberry.field(description="The level's par level.")
    days_of_supply: float | None
    raised_at: datetime


@strawberry.type(description="One page of shortage alerts, newest first.")
class ShortageAlertConnection:
    items: list[ShortageAlert]
    next_token: str | None
