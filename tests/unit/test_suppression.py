"""Which SES events suppress an address, applied through the Suppressions port (the in-memory fake)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bloodbank.domain import suppression
from bloodbank.domain.campaigns import (
    TRANSIENT_BOUNCE_LIMIT,
    BounceType,
    DeliveryEvent,
    DeliveryEventKind,
    SuppressionReason,
    address_key,
)
from bloodbank.fakes import InMemorySuppressions
from bloodbank.services.suppression import record

AT = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
EMAIL = "ann.lee@example.org"
KEY = address_key(EMAIL)


def event(kind: DeliveryEventKind, bounce_type: BounceType | None = None, at: datetime = AT) -> DeliveryEvent:
    return DeliveryEvent(kind, "campaign-1", KEY, EMAIL, "msg-1", at, bounce_type)


@pytest.mark.parametrize(
    ("kind", "bounce_type", "reason", "transient"),
    [
        (DeliveryEventKind.BOUNCE, BounceType.PERMANENT, SuppressionReason.HARD_BOUNCE, False),
        (DeliveryEventKind.BOUNCE, BounceType.TRANSIENT, None, True),
        (DeliveryEventKind.BOUNCE, BounceType.UNDETERMINED, None, True),
        (DeliveryEventKind.COMPLAINT, None, SuppressionReason.COMPLAINT, False),
        (DeliveryEventKind.SEND, None, None, False),
        (DeliveryEventKind.DELIVERY, None, None, False),
        (DeliveryEventKind.REJECT, None, None, False),
        (DeliveryEventKind.OPEN, None, None, False),
        (DeliveryEventKind.CLICK, None, None, False),
        (DeliveryEventKind.DELIVERY_DELAY, None, None, False),
        (DeliveryEventKind.RENDERING_FAILURE, None, None, False),
        (DeliveryEventKind.SUBSCRIPTION, None, None, False),
    ],
)
def test_rules(
    kind: DeliveryEventKind, bounce_type: BounceType | None, reason: SuppressionReason | None, transient: bool
) -> None:
    assert suppression.immediate_reason(event(kind, bounce_type)) is reason
    assert suppression.counts_as_transient(event(kind, bounce_type)) is transient


@pytest.mark.parametrize(
    ("count", "reason"),
    [
        (1, None),
        (TRANSIENT_BOUNCE_LIMIT - 1, None),
        (TRANSIENT_BOUNCE_LIMIT, SuppressionReason.TRANSIENT_BOUNCES),
        (TRANSIENT_BOUNCE_LIMIT + 5, SuppressionReason.TRANSIENT_BOUNCES),
    ],
)
def test_transient_bounces_suppress_at_the_limit(count: int, reason: SuppressionReason | None) -> None:
    assert suppression.reason_after_transient(count) is reason


def test_a_hard_bounce_suppresses_at_once_and_the_first_reason_stays() -> None:
    store = InMemorySuppressions()
    assert (
        record(event(DeliveryEventKind.BOUNCE, BounceType.PERMANENT), store) is SuppressionReason.HARD_BOUNCE
    )
    assert record(event(DeliveryEventKind.COMPLAINT), store) is None  # already suppressed
    assert store.entries[KEY] == (SuppressionReason.HARD_BOUNCE, AT)
    assert store.transient == {}


def test_a_complaint_suppresses_at_once() -> None:
    store = InMemorySuppressions()
    assert record(event(DeliveryEventKind.COMPLAINT), store) is SuppressionReason.COMPLAINT
    assert store.suppressed([KEY, address_key("other@example.org")]) == {KEY}


def test_transient_and_undetermined_bounces_count_and_suppress_at_the_limit() -> None:
    store = InMemorySuppressions()
    kinds = [BounceType.TRANSIENT, BounceType.UNDETERMINED, BounceType.TRANSIENT][:TRANSIENT_BOUNCE_LIMIT]
    results = [
        record(event(DeliveryEventKind.BOUNCE, b, AT + timedelta(days=i)), store) for i, b in enumerate(kinds)
    ]
    assert results == [None] * (TRANSIENT_BOUNCE_LIMIT - 1) + [SuppressionReason.TRANSIENT_BOUNCES]
    assert store.entries[KEY][0] is SuppressionReason.TRANSIENT_BOUNCES
    assert store.transient[KEY] == TRANSIENT_BOUNCE_LIMIT


def test_deliveries_opens_and_clicks_suppress_nothing() -> None:
    store = InMemorySuppressions()
    for kind in (DeliveryEventKind.DELIVERY, DeliveryEventKind.OPEN, DeliveryEventKind.CLICK):
        assert record(event(kind), store) is None
    assert store.entries == {}
    assert store.transient == {}
