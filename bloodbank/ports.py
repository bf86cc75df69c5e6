"""The small interfaces services depend on. Storage and adapters implement them; fakes record calls."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, Protocol, TypeVar

from bloodbank.domain.donors import Donor
from bloodbank.domain.filters import Expr
from bloodbank.domain.organisations import Hospital, Site

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: Sequence[T]
    next_token: str | None


class DonorRepository(Protocol):
    def get(self, donor_id: str, *, consistent: bool = False) -> Donor | None:
        """The donor, or None. ``consistent`` reads the latest write (for read-modify-write)."""

    def create(self, donor: Donor) -> None:
        """Store a new donor. Conflict if the id or e-mail is taken; BadUserInput if the site is unknown."""

    def update(self, donor: Donor, previous: Donor) -> None:
        """Replace ``previous`` by ``donor`` if nobody changed it since (Conflict otherwise)."""

    def list(self, where: Expr | None, limit: int, next_token: str | None) -> Page[Donor]: ...


class DirectoryRepository(Protocol):
    """Reference data: sites, hospitals, and which hospital a user acts for."""

    def sites(self) -> Sequence[Site]: ...

    def hospitals(self) -> Sequence[Hospital]: ...

    def hospital_of(self, user_sub: str) -> str | None: ...


class Clock(Protocol):
    def __call__(self) -> datetime: ...


class IdGenerator(Protocol):
    def __call__(self) -> str: ...


class HealthProbe(Protocol):
    @property
    def name(self) -> str: ...

    def check(self) -> None:
        """Return if the dependency answers; raise with a short reason otherwise."""


class KeySetSource(Protocol):
    """Where the identity provider publishes its signing keys (a JWKS document)."""

    def fetch(self) -> dict[str, object]: ...
