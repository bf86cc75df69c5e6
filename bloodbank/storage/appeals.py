"""Donor appeals in the single table (ACCESS_PATTERNS.md, "Donor appeals").

``DONOR#<donor>`` / ``APPEAL`` records the last appeal a donor received: when, and for which alert.
Claiming it is one conditional PutItem, so two appeal runs racing for one donor cannot both win;
it expires (TTL) once the appeal period is over. The level's announced status is one consistent
GetItem of its ``StockLevel`` item.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pynamodb.exceptions import DeleteError, DoesNotExist, GetError, PutError

from bloodbank.domain.alerts import NEVER, Announced
from bloodbank.domain.inventory import LevelKey, StockStatus
from bloodbank.errors import DependencyUnavailable
from bloodbank.storage import keys
from bloodbank.storage.models import AppealItem, StockLevelItem, TableBinding

_CONDITION_FAILED = "ConditionalCheckFailedException"
TTL_MARGIN = timedelta(days=1)  # kept a little past the period: the TTL is not what decides


def _unavailable(what: str, exc: PutError | DeleteError | GetError) -> DependencyUnavailable:
    return DependencyUnavailable(f"appeal {what} failed: {exc.cause_response_code or 'no reply'}")


class DynamoAppeals:
    """Implements ``AppealLedger`` and ``AnnouncedLevels`` over the table the models are bound to."""

    def __init__(self, binding: TableBinding | None = None) -> None:
        self._binding = binding

    def claim(self, donor_id: str, alert_id: str, at: datetime, period: timedelta) -> bool:
        """PutItem if there is no record, or its appeal is older than ``period``, or it is this alert's."""
        item = AppealItem(
            donor_id=donor_id,
            alert_id=alert_id,
            appealed_at=at,
            expires=int((at + period + TTL_MARGIN).timestamp()),
        )
        item.set_key(keys.appeal(donor_id))
        condition = (
            AppealItem.pk.does_not_exist()
            | (AppealItem.appealed_at < at - period)
            | (AppealItem.alert_id == alert_id)
        )
        try:
            item.save(condition=condition)
        except PutError as exc:
            if exc.cause_response_code == _CONDITION_FAILED:
                return False
            raise _unavailable("claim", exc) from None
        return True

    def release(self, donor_id: str, alert_id: str) -> None:
        """DeleteItem if the claim is this alert's."""
        item = AppealItem()
        item.set_key(keys.appeal(donor_id))
        try:
            item.delete(condition=AppealItem.alert_id == alert_id)
        except DeleteError as exc:
            if exc.cause_response_code == _CONDITION_FAILED:
                return
            raise _unavailable("release", exc) from None

    def announced(self, key: LevelKey) -> Announced:
        """GetItem (consistent) of the level's ``STOCKLEVEL#<site>`` / ``LEVEL#<group>#<component>``."""
        item_key = keys.stock_level(key.site_id, key.blood_group, key.component.value)
        try:
            item = StockLevelItem.get(item_key.pk, item_key.sk, consistent_read=True)
        except DoesNotExist:
            return NEVER
        except GetError as exc:
            raise _unavailable("level read", exc) from None
        if item.announced_status is None:
            return NEVER
        return Announced(StockStatus(item.announced_status), item.announced_at, int(item.alert_version or 0))
