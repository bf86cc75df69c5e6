"""The send-once ledger: the same promises in memory, on moto and on DynamoDB Local, races on Amazon's."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from bloodbank.domain.notifications import (
    Channel,
    ClaimLost,
    Contact,
    NotificationKind,
    NotificationPreferences,
)
from bloodbank.fakes import FixedClock, InMemoryNotificationLedger, RecordingNotifier
from bloodbank.ports import NotificationLedger
from bloodbank.services.notifications import NotificationService
from bloodbank.storage import keys
from bloodbank.storage.notifications import DynamoNotificationLedger
from tests.integration.conftest import Store

AT = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
KEY = "DONATION_THANKS#G151726000001#SMS"
WRITERS = 8


def ledger_for(store: Store) -> NotificationLedger:
    return InMemoryNotificationLedger() if store.engine == "memory" else DynamoNotificationLedger()


def test_one_claim_per_donor_and_key(store: Store) -> None:
    ledger = ledger_for(store)
    assert ledger.claim("donor-1", KEY, AT)
    assert not ledger.claim("donor-1", KEY, AT)
    assert ledger.claim("donor-1", "DONATION_THANKS#G151726000001#EMAIL", AT)
    assert ledger.claim("donor-2", KEY, AT)


def test_release_lets_a_retry_claim_again(store: Store) -> None:
    ledger = ledger_for(store)
    assert ledger.claim("donor-1", KEY, AT)
    ledger.release("donor-1", KEY)
    assert ledger.claim("donor-1", KEY, AT)


def test_a_completed_message_stays_claimed(store: Store) -> None:
    ledger = ledger_for(store)
    assert ledger.claim("donor-1", KEY, AT)
    ledger.complete("donor-1", KEY, "sns-message-1", AT)
    ledger.release("donor-1", KEY)  # only a CLAIMED record can be released
    assert not ledger.claim("donor-1", KEY, AT)
    with pytest.raises(ClaimLost):
        ledger.complete("donor-1", KEY, "sns-message-2", AT)


def test_complete_needs_a_claim(store: Store) -> None:
    ledger = ledger_for(store)
    with pytest.raises(ClaimLost):
        ledger.complete("donor-1", KEY, "sns-message-1", AT)
    ledger.release("donor-1", KEY)  # nothing to release: no error
    assert ledger.claim("donor-1", KEY, AT)


def test_the_stored_record_holds_no_address_or_text(store: Store) -> None:
    if store.engine == "memory":
        pytest.skip("no stored item in memory")
    ledger = ledger_for(store)
    key = keys.notification("donor-1", KEY)
    assert (key.pk, key.sk) == ("DONOR#donor-1", f"NOTIFY#{KEY}")
    ledger.claim("donor-1", KEY, AT)
    claimed = store.raw(key.pk, key.sk)
    assert claimed is not None
    assert claimed["status"] == {"S": "CLAIMED"}
    assert claimed["entity"] == {"S": "Notification"}
    assert "message_id" not in claimed
    ledger.complete("donor-1", KEY, "sns-message-1", AT)
    sent = store.raw(key.pk, key.sk)
    assert sent is not None
    assert set(sent) == {
        "pk",
        "sk",
        "entity",
        "donor_id",
        "notification_key",
        "status",
        "claimed_at",
        "message_id",
        "sent_at",
    }
    assert sent["status"] == {"S": "SENT"}
    assert sent["message_id"] == {"S": "sns-message-1"}
    assert sent["claimed_at"] == sent["sent_at"]


def _race(work: list[Callable[[], object]]) -> None:
    """Start every caller at the same moment (as tests/integration/test_races.py does)."""
    barrier = threading.Barrier(len(work))

    def run(fn: Callable[[], object]) -> None:
        barrier.wait()
        fn()

    threads = [threading.Thread(target=run, args=(w,)) for w in work]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)


def test_concurrent_claims_of_one_key_let_exactly_one_win(ddb_store: Store) -> None:
    ledger = DynamoNotificationLedger()
    outcomes: Counter[bool] = Counter()
    lock = threading.Lock()

    def claim() -> None:
        won = ledger.claim("donor-race", KEY, AT)
        with lock:
            outcomes[won] += 1

    _race([claim] * WRITERS)
    assert outcomes == Counter({True: 1, False: WRITERS - 1})


def test_concurrent_retries_of_one_notification_send_each_message_once(ddb_store: Store) -> None:
    notifier = RecordingNotifier()
    service = NotificationService(notifier, DynamoNotificationLedger(), FixedClock())
    contact = Contact("donor-race", "Ann", "ann@example.org", "+447700900123")
    preferences = NotificationPreferences(AT, frozenset(Channel))
    results: list[list[str]] = []

    def notify() -> None:
        results.append(
            service.notify(
                NotificationKind.DONATION_THANKS, contact, preferences, "G151726000001", {"site": "Leeds"}
            )
        )

    _race([notify] * WRITERS)
    assert len(results) == WRITERS
    assert sorted(m.channel.value for m in notifier.sent) == ["EMAIL", "SMS"]
    assert sorted(k for r in results for k in r) == sorted(m.key for m in notifier.sent)
