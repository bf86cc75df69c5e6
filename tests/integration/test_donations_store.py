"""Donations in the table: the repository contract on every engine, races and encryption on real ones."""

from __future__ import annotations

import json
import threading
import uuid
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from bloodbank.adapters.kms import KmsFieldCipher
from bloodbank.adapters.provisioning import client
from bloodbank.cursor import CursorCodec
from bloodbank.domain.blood import BloodGroup, Component
from bloodbank.domain.donations import DonationType, UnitStatus
from bloodbank.domain.eligibility import Sex
from bloodbank.domain.identity import Group, Identity
from bloodbank.domain.isbt import parse_din
from bloodbank.errors import DependencyUnavailable
from bloodbank.fakes import FixedClock, SequentialIds
from bloodbank.local import stack
from bloodbank.services.donations import DonationService
from bloodbank.services.donors import DonorService
from bloodbank.storage.donors import DynamoDonorRepository
from tests.conftest import PAGE_SECRET, REGION
from tests.integration.conftest import Store
from tests.integration.test_races import race
from tests.unit.test_donation_service import RecordingNotifications

STAFF = Identity(sub="staff-1", username="staff-1", groups=frozenset({Group.STAFF}), token_use="access")
START = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)
PERSONAL = {
    "date_of_birth": date(1984, 2, 29),
    "sex": Sex.FEMALE,
    "weight_kg": 61.5,
    "phone": "+41 44 668 18 00",
    "address": {"line1": "12 Rue de l'Église", "city": "Zürich", "postal_code": "8001", "country": "ch"},
    "medical_notes": "Fainted once in 2019",
}


def services(store: Store, clock: FixedClock | None = None) -> tuple[DonorService, DonationService]:
    clock = clock or FixedClock(START)
    donors = DonorService(store.donors, clock, lambda: str(uuid.uuid4()))
    donations = DonationService(
        donors=store.donors,
        donations=store.donations,
        sequences=store.donations,
        units=store.donations,
        reminders=store.donations,
        directory=store.directory,
        notifications=RecordingNotifications(),
        clock=clock,
        new_id=SequentialIds("deferral"),
    )
    return donors, donations


def register(donors: DonorService, site: str = "site-north") -> str:
    fields = {
        "first_name": "Zoë",
        "last_name": "Okafor",
        "email": f"{uuid.uuid4().hex[:10]}@example.org",
        "site_id": site,
        "blood_group": BloodGroup.B_NEG,
        **PERSONAL,
    }
    return donors.register(STAFF, fields).id


def record(donations: DonationService, donor_id: str, kind: DonationType = DonationType.WHOLE_BLOOD) -> Any:
    return donations.record(STAFF, {"donor_id": donor_id, "donation_type": kind, "haemoglobin_g_dl": 13.1})


def test_donor_personal_fields_round_trip(store: Store) -> None:
    donors, _ = services(store)
    donor_id = register(donors)
    read = store.donors.get(donor_id)
    assert read is not None
    assert read.date_of_birth == date(1984, 2, 29)
    assert read.phone == "+41446681800"
    assert read.weight_kg == 61.5
    assert read.address is not None
    assert (read.address.city, read.address.country) == ("Zürich", "CH")
    assert read.medical_notes == "Fainted once in 2019"
    assert read.sex is Sex.FEMALE


def test_recorded_donation_units_and_history(store: Store) -> None:
    clock = FixedClock(START)
    donors, donations = services(store, clock)
    donor_id = register(donors)
    first = record(donations, donor_id, DonationType.PLATELETS)
    clock.advance(days=7)
    second = record(donations, donor_id, DonationType.PLATELETS)
    assert parse_din(first.donation.din) == first.donation.din
    assert first.donation.din != second.donation.din

    donor = store.donors.get(donor_id)
    assert donor is not None
    assert (donor.donation_count, donor.last_donation_at, donor.version) == (2, START + timedelta(days=7), 3)

    units = store.donations.get_many([*second.donation.unit_ids, "missing", *first.donation.unit_ids])
    assert [u.id for u in units] == [*second.donation.unit_ids, *first.donation.unit_ids]
    assert {(u.component, u.status, u.blood_group) for u in units} == {
        (Component.PLATELETS, UnitStatus.QUARANTINED, BloodGroup.B_NEG)
    }
    assert units[0].expires_at == START + timedelta(days=7 + 5)

    page1 = store.donations.page(donor_id, 1, None)
    page2 = store.donations.page(donor_id, 1, page1.next_token)
    assert [d.din for d in [*page1.items, *page2.items]] == [second.donation.din, first.donation.din]
    assert page2.next_token is None
    assert page1.items[0].haemoglobin_g_dl == 13.1

    assert [(d.donation_type, d.collected_at) for d in donor.recent_donations] == [
        (DonationType.PLATELETS, START),
        (DonationType.PLATELETS, START + timedelta(days=7)),
    ]


def test_reminders_fall_due_on_their_day(store: Store) -> None:
    donors, donations = services(store)
    donor_id = register(donors)
    din = record(donations, donor_id).donation.din
    due = (START + timedelta(days=56)).date()
    [reminder] = store.donations.due(due)
    assert (reminder.donor_id, reminder.din, reminder.donation_type) == (
        donor_id,
        din,
        DonationType.WHOLE_BLOOD,
    )
    store.donations.done(reminder)
    assert store.donations.due(due) == []


# --- DynamoDB Local only: races, atomicity, encryption -------------------------------------------
def test_din_sequence_numbers_never_repeat_under_concurrency(ddb_store: Store) -> None:
    taken: list[int] = []
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def take() -> None:
        barrier.wait()
        for _ in range(25):
            number = ddb_store.donations.next("W9999", 2026)
            with lock:
                taken.append(number)

    threads = [threading.Thread(target=take) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(taken) == list(range(1, 201))  # 200 numbers, no repeats, no gaps
    assert ddb_store.donations.next("W9999", 2027) == 1  # a new year starts again


def test_concurrent_donations_of_one_donor_record_exactly_one(ddb_store: Store) -> None:
    donors, donations = services(ddb_store)
    donor_id = register(donors)
    writers = [lambda: record(donations, donor_id) for _ in range(6)]
    outcomes = race(writers)  # type: ignore[arg-type]
    assert outcomes == Counter({"ok": 1, "BAD_USER_INPUT": 5}), outcomes  # the others: not eligible
    history = ddb_store.donations.page(donor_id, 10, None).items
    assert len(history) == 1
    assert len(ddb_store.donations.get_many(history[0].unit_ids)) == 2
    donor = ddb_store.donors.get(donor_id)
    assert donor is not None
    assert donor.donation_count == 1


def test_concurrent_donations_of_many_donors_get_distinct_dins(ddb_store: Store) -> None:
    donors, donations = services(ddb_store)
    ids = [register(donors) for _ in range(8)]
    results: list[str] = []
    lock = threading.Lock()

    def one(donor_id: str) -> None:
        din = record(donations, donor_id).donation.din
        with lock:
            results.append(din)

    outcomes = race([lambda d=d: one(d) for d in ids])  # type: ignore[misc]
    assert outcomes == Counter({"ok": 8})
    assert len(set(results)) == 8


def test_kms_unavailable_writes_nothing(ddb_store: Store) -> None:
    donors, _ = services(ddb_store)
    assert ddb_store.cipher is not None
    ddb_store.cipher.unavailable = True
    email = "closed@example.org"
    with pytest.raises(DependencyUnavailable):
        donors.register(
            STAFF,
            {"first_name": "Ann", "last_name": "Lee", "email": email, "site_id": "site-north", **PERSONAL},
        )
    page = ddb_store.donors.list(None, 100, None)
    assert all(d.email != email for d in page.items)


def test_raw_items_hold_ciphertext_with_moto_kms(dynamodb_local: str, moto_server: str) -> None:
    """The item as DynamoDB stores it: names and search fields in clear, personal fields as ciphertext."""
    kms = client("kms", moto_server, REGION)
    key_id = kms.create_key(Description="pii")["KeyMetadata"]["KeyId"]
    name = f"bloodbank-{uuid.uuid4().hex[:12]}"
    binding = stack.open_table(dynamodb_local, REGION, name)
    stack.load_reference_data()
    cipher = KmsFieldCipher(kms, key_id)
    repository = DynamoDonorRepository(binding, CursorCodec(PAGE_SECRET), cipher)
    donors = DonorService(repository, FixedClock(START), lambda: "donor-raw-1")
    donors.register(
        STAFF,
        {
            "first_name": "Zoë",
            "last_name": "Okafor",
            "email": "zoe@example.org",
            "site_id": "site-north",
            **PERSONAL,
        },
    )
    raw = client("dynamodb", dynamodb_local, REGION).get_item(
        TableName=name, Key={"pk": {"S": "DONOR#donor-raw-1"}, "sk": {"S": "DONOR"}}
    )["Item"]
    shown = {k: (v["B"][:12].hex() + "..." if "B" in v else v) for k, v in sorted(raw.items())}
    print("\nraw donor item:\n" + json.dumps(shown, indent=1, ensure_ascii=False))  # noqa: T201 - shown with -s

    for attribute in ("date_of_birth", "phone", "address", "weight_kg", "medical_notes"):
        assert set(raw[attribute]) == {"B"}, attribute  # binary ciphertext, no string
    assert set(raw["pii_key"]) == {"B"}
    blob = b"".join(v["B"] for v in raw.values() if "B" in v)
    for secret in (b"1984-02-29", b"+41446681800", "Zürich".encode(), b"Fainted", b"61.5"):
        assert secret not in blob
    assert raw["site_id"] == {"S": "site-north"}
    assert raw["gsi1pk"] == {"S": "DONORS#SITE#site-north"}
    # The data key is bound to this item: copy the ciphertext to another donor and it will not open.
    read = repository.get("donor-raw-1")
    assert read is not None
    assert read.phone == "+41446681800"
    assert read.date_of_birth == date(1984, 2, 29)
