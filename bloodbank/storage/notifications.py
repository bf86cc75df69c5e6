"""Which donor notifications went out, in the single table (see ACCESS_PATTERNS.md, "Notifications").

One item per message key, in the donor's partition: ``DONOR#<donor>`` / ``NOTIFY#<key>``. Each method
is one conditional write, so two handlers racing on one message cannot both claim it.
"""

from __future__ import annotations

from datetime import datetime

from pynamodb.exceptions import DeleteError, PutError, UpdateError

from bloodbank.domain.notifications import ClaimLost
from bloodbank.errors import DependencyUnavailable
from bloodbank.storage import keys
from bloodbank.storage.models import NotificationItem, TableBinding

CLAIMED = "CLAIMED"
SENT = "SENT"
_CONDITION_FAILED = "ConditionalCheckFailedException"


def _unavailable(what: str, exc: PutError | UpdateError | DeleteError) -> DependencyUnavailable:
    return DependencyUnavailable(
        f"notification ledger {what} failed: {exc.cause_response_code or 'no reply'}"
    )


def _item(donor_id: str, key: str) -> NotificationItem:
    item = NotificationItem()
    item.set_key(keys.notification(donor_id, key))
    return item


class DynamoNotificationLedger:
    """Implements ``NotificationLedger`` over the table the models are bound to (``models.bind``).

    ``binding`` is that table, as the other repositories take it; the models already point at it.
    """

    def __init__(self, binding: TableBinding | None = None) -> None:
        self._binding = binding

    def claim(self, donor_id: str, key: str, at: datetime) -> bool:
        """PutItem if ``pk`` is absent: True for exactly one caller per (donor, key)."""
        item = NotificationItem(donor_id=donor_id, notification_key=key, status=CLAIMED, claimed_at=at)
        item.set_key(keys.notification(donor_id, key))
        try:
            item.save(condition=NotificationItem.pk.does_not_exist())
        except PutError as exc:
            if exc.cause_response_code == _CONDITION_FAILED:
                return False
            raise _unavailable("claim", exc) from None
        return True

    def complete(self, donor_id: str, key: str, message_id: str, at: datetime) -> None:
        """UpdateItem to SENT if the claim is still there (ClaimLost otherwise)."""
        try:
            _item(donor_id, key).update(
                actions=[
                    NotificationItem.status.set(SENT),
                    NotificationItem.message_id.set(message_id),
                    NotificationItem.sent_at.set(at),
                ],
                condition=NotificationItem.status == CLAIMED,
            )
        except UpdateError as exc:
            if exc.cause_response_code == _CONDITION_FAILED:
                raise ClaimLost(f"no claim to complete for {key}") from None
            raise _unavailable("complete", exc) from None

    def release(self, donor_id: str, key: str) -> None:
        """DeleteItem while CLAIMED; a SENT record (or none) stays as it is."""
        try:
            _item(donor_id, key).delete(condition=NotificationItem.status == CLAIMED)
        except DeleteError as exc:
            if exc.cause_response_code == _CONDITION_FAILED:
                return
            raise _unavailable("release", exc) from None
