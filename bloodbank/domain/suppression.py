"""Which SES events suppress an address, and why. Pure, no I/O.

A permanent bounce (the address does not exist) and a complaint (the person marked us as spam)
suppress at once: mailing either again hurts the account's reputation, and SES reviews accounts
above 5 % bounces or 0.1 % complaints. A transient bounce (mailbox full, server down) may clear up,
so only ``TRANSIENT_BOUNCE_LIMIT`` of them suppress; an undetermined bounce counts as transient
(SES could not tell, and one such bounce is no reason to drop a donor for good).
"""

from __future__ import annotations

from bloodbank.domain.campaigns import (
    TRANSIENT_BOUNCE_LIMIT,
    BounceType,
    DeliveryEvent,
    DeliveryEventKind,
    SuppressionReason,
)


def immediate_reason(event: DeliveryEvent) -> SuppressionReason | None:
    """The reason this event alone suppresses its address, if it does."""
    if event.kind is DeliveryEventKind.COMPLAINT:
        return SuppressionReason.COMPLAINT
    if event.kind is DeliveryEventKind.BOUNCE and event.bounce_type is BounceType.PERMANENT:
        return SuppressionReason.HARD_BOUNCE
    return None


def counts_as_transient(event: DeliveryEvent) -> bool:
    """A bounce that is not permanent: it counts towards ``TRANSIENT_BOUNCE_LIMIT``."""
    return event.kind is DeliveryEventKind.BOUNCE and event.bounce_type is not BounceType.PERMANENT


def reason_after_transient(count: int) -> SuppressionReason | None:
    """TRANSIENT_BOUNCES once the address has bounced transiently ``TRANSIENT_BOUNCE_LIMIT`` times."""
    return SuppressionReason.TRANSIENT_BOUNCES if count >= TRANSIENT_BOUNCE_LIMIT else None
