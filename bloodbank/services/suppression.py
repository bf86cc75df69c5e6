"""Applying the suppression rules of ``domain.suppression`` to one SES event, through the port.

For the SES events handler: call it once per event whose recipient's status the event moved (a
repeated SNS delivery of the same bounce must not count twice: the recipient's ledger tells).
"""

from __future__ import annotations

from bloodbank.domain import suppression
from bloodbank.domain.campaigns import DeliveryEvent, SuppressionReason, address_key
from bloodbank.ports import Suppressions


def record(event: DeliveryEvent, suppressions: Suppressions) -> SuppressionReason | None:
    """Suppress the event's address if the rules say so; the reason if this event suppressed it
    (None if it did not, or the address already was suppressed)."""
    key = address_key(event.email)
    reason = suppression.immediate_reason(event)
    if reason is None and suppression.counts_as_transient(event):
        reason = suppression.reason_after_transient(suppressions.count_transient(key, event.at))
    if reason is None:
        return None
    return reason if suppressions.suppress(key, reason, event.at) else None
