"""Concurrent writers on DynamoDB Local (Amazon's engine; moto's DynamoDB is not thread-safe)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

from bloodbank.domain.identity import Group, Identity
from bloodbank.errors import AppError
from bloodbank.fakes import SequentialIds
from bloodbank.services.donors import DonorService
from tests.integration.conftest import Store

STAFF = Identity(sub="staff", username="staff", groups=frozenset({Group.STAFF}), token_use="access")
WRITERS = 8


def race(writers: list[Callable[[], object]]) -> Counter[str]:
    """Start every writer at the same moment; count outcomes by result or error code."""
    barrier = threading.Barrier(len(writers))
    outcomes: Counter[str] = Counter()
    lock = threading.Lock()

    def run(write: Callable[[], object]) -> None:
        barrier.wait()
        try:
            write()
            outcome = "ok"
        except AppError as error:
            outcome = error.code
        with lock:
            outcomes[outcome] += 1

    threads = [threading.Thread(target=run, args=(w,)) for w in writers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return outcomes


def service(store: Store) -> DonorService:
    return DonorService(store.donors, lambda: datetime.now(UTC), SequentialIds("race"))


def test_concurrent_updates_of_one_version_let_exactly_one_win(ddb_store: Store) -> None:
    donors = service(ddb_store)
    donor = donors.register(
        STAFF, {"first_name": "Ann", "last_name": "Lee", "email": "a@example.org", "site_id": "site-north"}
    )
    writers = [
        (lambda n=n: donors.update(STAFF, donor.id, 1, {"first_name": f"Writer{chr(65 + n)}"}))
        for n in range(WRITERS)
    ]
    assert race(writers) == Counter({"ok": 1, "CONFLICT": WRITERS - 1})
    final = ddb_store.donors.get(donor.id)
    assert final is not None
    assert final.version == 2
    assert final.first_name.startswith("Writer")


def test_concurrent_email_changes_to_one_address_let_exactly_one_win(ddb_store: Store) -> None:
    donors = service(ddb_store)
    ids = [
        donors.register(
            STAFF,
            {"first_name": "Ann", "last_name": "Lee", "email": f"d{n}@example.org", "site_id": "site-north"},
        ).id
        for n in range(WRITERS)
    ]
    writers = [(lambda i=i: donors.update(STAFF, i, 1, {"email": "wanted@example.org"})) for i in ids]
    assert race(writers) == Counter({"ok": 1, "CONFLICT": WRITERS - 1})
    owners = [d for d in (ddb_store.donors.get(i) for i in ids) if d and d.email == "wanted@example.org"]
    assert len(owners) == 1
    # The losers kept their own address, still claimed by them.
    assert {d.email for d in (ddb_store.donors.get(i) for i in ids) if d} - {"wanted@example.org"} == {
        f"d{n}@example.org" for n in range(WRITERS) if ids[n] != owners[0].id
    }


def test_concurrent_registrations_with_one_email_create_one_donor(ddb_store: Store) -> None:
    donors = service(ddb_store)
    fields = {"first_name": "Ann", "last_name": "Lee", "email": "same@example.org", "site_id": "site-north"}
    assert race([lambda: donors.register(STAFF, fields) for _ in range(WRITERS)]) == Counter(
        {"ok": 1, "CONFLICT": WRITERS - 1}
    )
    page = ddb_store.donors.list(None, 100, None)
    assert [d.email for d in page.items] == ["same@example.org"]
