"""One contract, three stores: the fake, moto and DynamoDB Local must keep the same promises."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from bloodbank.domain import donors as rules
from bloodbank.domain.blood import BloodGroup
from bloodbank.domain.donors import Donor
from bloodbank.domain.filters import Expr
from bloodbank.errors import BadUserInput, Conflict
from bloodbank.storage import keys
from resolvers.filters import to_expr
from tests.integration.conftest import Store

NOW = datetime(2026, 11, 22, 9, 30, 15, 123000, tzinfo=UTC)


def make(
    n: int,
    last: str,
    first: str = "Ann",
    group: BloodGroup | None = BloodGroup.O_NEG,
    site: str = "site-north",
    phone: str | None = "+14155550123",
) -> Donor:
    fields = {"first_name": first, "last_name": last, "email": f"donor{n}@example.org", "site_id": site}
    details = rules.validate_new({**fields, "phone": phone, "blood_group": group})
    return rules.new_donor(f"donor-{n:03d}", details, NOW + timedelta(seconds=n))


def all_pages(store: Store, where: Expr | None, limit: int) -> list[list[str]]:
    pages, token = [], None
    while True:
        page = store.donors.list(where, limit, token)
        pages.append([d.id for d in page.items])
        token = page.next_token
        if token is None:
            return pages
        assert len(pages) < 50, "pagination does not end"


def test_create_and_get_round_trip(store: Store) -> None:
    donor = make(1, "Lee")
    untyped = make(2, "Moreau", group=None, phone=None)
    store.donors.create(donor)
    store.donors.create(untyped)
    assert store.donors.get(donor.id) == donor
    assert store.donors.get(untyped.id) == untyped
    assert store.donors.get("nobody") is None


def test_identity_email_and_site_are_enforced_and_nothing_is_half_written(store: Store) -> None:
    store.donors.create(make(1, "Lee"))
    with pytest.raises(Conflict, match="already registered"):
        store.donors.create(replace(make(1, "Lee"), email="fresh@example.org"))
    with pytest.raises(Conflict, match="e-mail"):
        store.donors.create(replace(make(2, "Other"), email="DONOR1@example.org"))
    with pytest.raises(BadUserInput, match="not a known site"):
        store.donors.create(replace(make(3, "Nowhere"), site_id="site-atlantis"))
    assert store.donors.get("donor-002") is None
    assert store.donors.get("donor-003") is None
    # The refused registrations claimed nothing: their e-mail addresses are still free.
    store.donors.create(make(2, "Other"))
    store.donors.create(make(3, "Nowhere"))


def test_update_checks_the_version_and_moves_the_email_claim(store: Store) -> None:
    first, second = make(1, "Lee"), make(2, "Patel")
    store.donors.create(first)
    store.donors.create(second)
    renamed = rules.apply_changes(first, {"last_name": "Lee-Smith"}, NOW)
    store.donors.update(renamed, first)
    assert store.donors.get(first.id) == renamed
    with pytest.raises(Conflict, match="changed by someone else"):
        store.donors.update(rules.apply_changes(first, {"first_name": "X"}, NOW), first)  # stale
    with pytest.raises(Conflict, match="e-mail"):
        store.donors.update(rules.apply_changes(renamed, {"email": second.email}, NOW), renamed)
    with pytest.raises(BadUserInput, match="site"):
        store.donors.update(rules.apply_changes(renamed, {"site_id": "site-atlantis"}, NOW), renamed)
    assert store.donors.get(first.id) == renamed  # refused updates changed nothing
    moved = rules.apply_changes(renamed, {"email": "new@example.org", "site_id": "site-south"}, NOW)
    store.donors.update(moved, renamed)
    assert store.donors.get(first.id) == moved
    store.donors.create(replace(make(9, "Third"), email=first.email))  # the old address was released
    with pytest.raises(Conflict, match="e-mail"):
        store.donors.create(replace(make(10, "Fourth"), email="NEW@example.org"))


def test_pages_are_ordered_by_family_name_and_chain_without_gaps(store: Store) -> None:
    names = ["Weber", "adeyemi", "García", "Okafor", "Lindqvist", "Garcia", "Zhou"]
    for n, name in enumerate(names):
        store.donors.create(make(n, name))
    pages = all_pages(store, None, 3)
    assert [len(p) for p in pages] == [3, 3, 1]
    ordered = [store.donors.get(i).last_name for p in pages for i in p]  # type: ignore[union-attr]
    assert ordered == ["adeyemi", "García", "Garcia", "Lindqvist", "Okafor", "Weber", "Zhou"]
    # A last page that is exactly full says so: no token that leads to an empty page.
    assert [len(p) for p in all_pages(store, None, 7)] == [7]
    assert [len(p) for p in all_pages(store, None, 100)] == [7]


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({"site_id": {"eq": "site-south"}}, {5, 6, 7}),
        ({"blood_group": {"eq": BloodGroup.A_POS}}, {2, 6}),
        ({"site_id": {"eq": "site-south"}, "blood_group": {"eq": BloodGroup.A_POS}}, {6}),
        ({"last_name": {"begins_with": "L"}}, {1, 3, 7}),
        ({"site_id": {"eq": "site-north"}, "last_name": {"begins_with": "L"}}, {1, 3}),
        ({"blood_group": {"ne": BloodGroup.O_NEG}}, {2, 4, 6}),
        ({"or_": [{"site_id": {"eq": "site-south"}}, {"first_name": {"eq": "Zed"}}]}, {5, 6, 7, 8}),
        ({"not_": {"site_id": {"eq": "site-north"}}}, {5, 6, 7}),
        ({"last_name": {"between": ["L", "Lz"]}, "email": {"contains": "donor1"}}, {1}),
        ({"id": {"eq": "donor-004"}}, {4}),
        ({"and_": [{"site_id": {"eq": "site-north"}}, {"site_id": {"eq": "site-south"}}]}, set()),
        ({"last_name": {"eq": "Lee"}}, {1}),
        ({"last_name": {"eq": "lee"}}, set()),
        ({"last_name": {"begins_with": "Lo"}}, {7}),
        ({"blood_group": {"eq": BloodGroup.O_NEG}, "last_name": {"begins_with": "L"}}, {1, 3, 7}),
        (
            {
                "site_id": {"eq": "site-south"},
                "blood_group": {"eq": BloodGroup.A_POS},
                "last_name": {"eq": "Patel"},
            },
            {6},
        ),
    ],
    ids=[
        "site",
        "group",
        "site+group",
        "name-prefix",
        "site+name",
        "group-ne",
        "or",
        "not",
        "between+contains",
        "id",
        "contradiction",
        "name-eq",
        "name-eq-case-sensitive",
        "name-prefix-narrow",
        "group+name-prefix",
        "site+group+name",
    ],
)
def test_filters_agree_across_stores_and_fill_pages(
    store: Store, arguments: dict, expected: set[int]
) -> None:  # type: ignore[type-arg]
    rows = [
        make(1, "Lee"),
        make(2, "Okafor", group=BloodGroup.A_POS),
        make(3, "Lindqvist"),
        make(4, "Moreau", group=None),
        make(5, "Adeyemi", site="site-south"),
        make(6, "Patel", group=BloodGroup.A_POS, site="site-south"),
        make(7, "Lopez", site="site-south"),
        make(8, "Weber", first="Zed"),
    ]
    for row in rows:
        store.donors.create(row)
    pages = all_pages(store, to_expr(arguments), 2)
    assert {int(i.split("-")[1]) for p in pages for i in p} == expected
    assert all(len(p) == 2 for p in pages[:-1]), f"pages not filled: {pages}"
    assert sum(len(p) for p in pages) == len(expected)


def test_a_token_only_works_for_its_own_query(store: Store) -> None:
    for n, name in enumerate(["Lee", "Lindqvist", "Lopez"]):
        store.donors.create(make(n, name))
    token = store.donors.list(to_expr({"site_id": {"eq": "site-north"}}), 1, None).next_token
    assert token
    with pytest.raises(BadUserInput, match="different query"):
        store.donors.list(to_expr({"site_id": {"eq": "site-south"}}), 1, token)
    with pytest.raises(BadUserInput):
        store.donors.list(None, 1, token[:-4] + "AAAA")


def test_reference_data(store: Store) -> None:
    assert [s.id for s in store.directory.sites()] == ["site-london", "site-north", "site-south"]
    assert {h.id for h in store.directory.hospitals()} == {"hosp-st-mary", "hosp-riverside", "hosp-kings"}


@pytest.mark.parametrize("store", ["moto", "dynamodb-local"], indirect=True)
def test_raw_items_use_the_key_scheme_and_hide_the_email_in_keys(store: Store) -> None:
    donor = make(1, "Lee")
    store.donors.create(donor)
    key = keys.donor(donor.id)
    item = store.raw(key.pk, key.sk)
    assert item is not None
    assert item["entity"] == {"S": "Donor"}
    assert item["gsi1pk"] == {"S": "DONORS#SITE#site-north"}
    assert item["gsi1sk"]["S"].startswith("O_NEG#lee ann#")
    claim = keys.donor_email(donor.email)
    assert "example.org" not in claim.pk
    assert store.raw(claim.pk, claim.sk)["donor_id"] == {"S": donor.id}  # type: ignore[index]
