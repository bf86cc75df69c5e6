"""The registry's use cases with in-memory fakes: who may do what, validation, versions."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bloodbank.cursor import CursorCodec
from bloodbank.domain.blood import BloodGroup
from bloodbank.domain.filters import Cond
from bloodbank.domain.identity import Group, Identity
from bloodbank.errors import BadUserInput, Conflict, Forbidden, NotFound
from bloodbank.fakes import FixedClock, InMemoryDirectory, InMemoryDonorRepository, SequentialIds
from bloodbank.local import seed
from bloodbank.services.donors import DonorService


def who(*groups: Group, sub: str = "user-1") -> Identity:
    return Identity(sub=sub, username=sub, groups=frozenset(groups), token_use="access")


STAFF = who(Group.STAFF, sub="staff-1")
ADMIN = who(Group.ADMINS, sub="admin-1")
DONOR = who(Group.DONORS, sub="donor-sub-1")
HOSPITAL = who(Group.HOSPITALS, sub="hospital-user")
FIELDS = {"first_name": "Ann", "last_name": "Lee", "email": "ann@example.org", "site_id": "site-north"}


@pytest.fixture
def repo() -> InMemoryDonorRepository:
    directory = InMemoryDirectory(site_list=list(seed.SITES))
    return InMemoryDonorRepository(directory, CursorCodec("x" * 40))


@pytest.fixture
def service(repo: InMemoryDonorRepository) -> DonorService:
    return DonorService(repo, FixedClock(datetime(2026, 11, 22, 9, 0, tzinfo=UTC)), SequentialIds("donor"))


def test_staff_register_walk_in_donors_with_new_ids(service: DonorService) -> None:
    donor = service.register(STAFF, {**FIELDS, "blood_group": BloodGroup.A_POS, "phone": "+1 415 555 0123"})
    assert donor.id == "donor-000001"
    assert (donor.blood_group, donor.phone, donor.version) == (BloodGroup.A_POS, "+14155550123", 1)
    assert donor.created_at == donor.updated_at == datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


def test_a_donor_registers_themself_under_their_sub(service: DonorService) -> None:
    donor = service.register(DONOR, FIELDS)
    assert donor.id == DONOR.sub
    assert donor.blood_group is None
    with pytest.raises(Conflict, match="already registered"):
        service.register(DONOR, {**FIELDS, "email": "other@example.org"})


def test_a_donor_cannot_declare_their_own_blood_group(
    service: DonorService, repo: InMemoryDonorRepository
) -> None:
    with pytest.raises(Forbidden, match="bloodGroup"):
        service.register(DONOR, {**FIELDS, "blood_group": BloodGroup.O_NEG})
    assert repo.donors == {}


def test_hospitals_cannot_register_donors(service: DonorService, repo: InMemoryDonorRepository) -> None:
    with pytest.raises(Forbidden):
        service.register(HOSPITAL, FIELDS)
    assert repo.calls == []


def test_every_problem_is_reported_at_once_and_nothing_is_written(
    service: DonorService, repo: InMemoryDonorRepository
) -> None:
    with pytest.raises(BadUserInput) as caught:
        service.register(
            STAFF, {"first_name": "", "last_name": "L\x00", "email": "nope", "site_id": "bad id"}
        )
    fields = {p.field for p in caught.value.problems}
    assert fields == {"input.firstName", "input.lastName", "input.email", "input.siteId"}
    assert repo.calls == []


def test_missing_required_fields(service: DonorService) -> None:
    with pytest.raises(BadUserInput) as caught:
        service.register(STAFF, {"first_name": "Ann"})
    assert {p.field for p in caught.value.problems} == {"input.lastName", "input.email", "input.siteId"}


def test_unknown_site_and_duplicate_email(service: DonorService) -> None:
    with pytest.raises(BadUserInput, match="not a known site"):
        service.register(STAFF, {**FIELDS, "site_id": "site-atlantis"})
    service.register(STAFF, FIELDS)
    with pytest.raises(Conflict, match="e-mail"):
        service.register(STAFF, {**FIELDS, "email": "ANN@example.org", "first_name": "Anne"})


def test_donors_see_only_themselves(service: DonorService) -> None:
    mine = service.register(DONOR, FIELDS)
    other = service.register(STAFF, {**FIELDS, "email": "bob@example.org", "first_name": "Bob"})
    assert service.get(DONOR, mine.id) == mine
    assert service.me(DONOR) == mine
    with pytest.raises(Forbidden):
        service.get(DONOR, other.id)
    assert service.get(STAFF, other.id) == other
    assert service.get(ADMIN, mine.id) == mine
    with pytest.raises(Forbidden):
        service.get(HOSPITAL, mine.id)
    assert service.me(STAFF) is None


def test_malformed_id_is_bad_input(service: DonorService) -> None:
    with pytest.raises(BadUserInput):
        service.get(STAFF, "DONOR#x")


def test_update_with_optimistic_locking(service: DonorService) -> None:
    donor = service.register(STAFF, FIELDS)
    updated = service.update(STAFF, donor.id, 1, {"last_name": "Lee-Smith", "phone": "+14155550123"})
    assert (updated.last_name, updated.phone, updated.version) == ("Lee-Smith", "+14155550123", 2)
    with pytest.raises(Conflict, match="changed by someone else"):
        service.update(STAFF, donor.id, 1, {"first_name": "Annie"})
    cleared = service.update(STAFF, donor.id, 2, {"phone": None})
    assert cleared.phone is None


def test_update_rules(service: DonorService) -> None:
    mine = service.register(DONOR, FIELDS)
    other = service.register(STAFF, {**FIELDS, "email": "bob@example.org"})
    with pytest.raises(Forbidden):
        service.update(DONOR, other.id, 1, {"first_name": "X"})
    with pytest.raises(Forbidden, match="bloodGroup"):
        service.update(DONOR, mine.id, 1, {"blood_group": BloodGroup.AB_POS})
    with pytest.raises(BadUserInput, match="at least one"):
        service.update(DONOR, mine.id, 1, {})
    with pytest.raises(BadUserInput, match="must not be null"):
        service.update(DONOR, mine.id, 1, {"first_name": None})
    with pytest.raises(NotFound):
        service.update(STAFF, "nobody", 1, {"first_name": "X"})
    assert service.update(DONOR, mine.id, 1, {"site_id": "site-south"}).site_id == "site-south"


def test_list_is_staff_only_and_checks_limits(service: DonorService) -> None:
    service.register(STAFF, FIELDS)
    assert [d.first_name for d in service.list(STAFF, None, None, None).items] == ["Ann"]
    with pytest.raises(Forbidden):
        service.list(DONOR, None, 10, None)
    for bad in (0, -1, 101):
        with pytest.raises(BadUserInput, match="between 1 and 100"):
            service.list(STAFF, Cond("site_id", "eq", "x"), bad, None)
