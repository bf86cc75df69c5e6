"""The donor registry's use cases: register, read, update, list."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from bloodbank.domain import donors as rules
from bloodbank.domain import text
from bloodbank.domain.donors import Donor
from bloodbank.domain.filters import Expr, check_size
from bloodbank.domain.identity import Identity
from bloodbank.errors import BadUserInput, Conflict, Forbidden, NotFound
from bloodbank.ports import Clock, DonorRepository, IdGenerator, Page

DEFAULT_PAGE = 20
MAX_PAGE = 100
# Fields only blood service staff may set: the lab decides a blood group, nurses weigh and take notes.
STAFF_ONLY_FIELDS = ("blood_group", "weight_kg", "medical_notes")


def page_size(limit: int | None, field: str = "limit") -> int:
    if limit is None:
        return DEFAULT_PAGE
    if not 1 <= limit <= MAX_PAGE:
        raise BadUserInput(f"{field} must be between 1 and {MAX_PAGE}")
    return limit


def _donor_id(value: str) -> str:
    try:
        return text.identifier("id", value)
    except text.Invalid as bad:
        raise BadUserInput.of([bad.problem]) from None


@dataclass
class DonorService:
    repository: DonorRepository
    clock: Clock
    new_id: IdGenerator

    def _forbid_staff_only(self, identity: Identity, values: Mapping[str, object], *, creating: bool) -> None:
        if identity.is_staff:
            return
        for name in STAFF_ONLY_FIELDS:
            if name in values and not (creating and values[name] is None):
                raise Forbidden(f"Only blood service staff can set {rules.client_name(name)}")

    def register(self, identity: Identity, values: Mapping[str, object]) -> Donor:
        """Staff register walk-in donors (new id); a signed-in donor registers themself (id = their sub)."""
        if identity.is_staff:
            donor_id = self.new_id()
        elif identity.is_donor:
            donor_id = identity.sub
            self._forbid_staff_only(identity, values, creating=True)
        else:
            raise Forbidden("Only staff or the donor themself can register a donor")
        details = rules.validate_new(values)
        donor = rules.new_donor(donor_id, details, self.clock())
        self.repository.create(donor)
        return donor

    def get(self, identity: Identity, donor_id: str) -> Donor | None:
        donor_id = _donor_id(donor_id)
        if not identity.may_see_donor(donor_id):
            raise Forbidden("Donors can only see their own record")
        return self.repository.get(donor_id)

    def me(self, identity: Identity) -> Donor | None:
        return self.repository.get(identity.sub) if identity.is_donor else None

    def update(
        self, identity: Identity, donor_id: str, expected_version: int, values: Mapping[str, object]
    ) -> Donor:
        donor_id = _donor_id(donor_id)
        if not identity.may_see_donor(donor_id):
            raise Forbidden("Donors can only change their own record")
        self._forbid_staff_only(identity, values, creating=False)
        if not values:
            raise BadUserInput("Set at least one field to change")
        changes = rules.validate_changes(values)
        current = self.repository.get(donor_id, consistent=True)
        if current is None:
            raise NotFound(f"No donor with id {donor_id}")
        if current.version != expected_version:
            raise Conflict(
                f"The donor was changed by someone else (version {current.version}, you had "
                f"{expected_version}); reload it and apply your change again"
            )
        updated = rules.apply_changes(current, changes, self.clock())
        self.repository.update(updated, current)
        return updated

    def list(
        self, identity: Identity, where: Expr | None, limit: int | None, next_token: str | None
    ) -> Page[Donor]:
        if not identity.is_staff:
            raise Forbidden("Only blood service staff can list donors")
        check_size(where)
        return self.repository.list(where, page_size(limit), next_token)
