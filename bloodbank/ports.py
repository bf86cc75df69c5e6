"""The small interfaces services depend on. Storage and adapters implement them; fakes record calls."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, Protocol, TypeVar

from bloodbank.domain.donors import Donor
from bloodbank.domain.filters import Expr
from bloodbank.domain.notifications import OutgoingMessage
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


# --- personal data at rest ----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SealedFields:
    """Attributes of one item encrypted under one data key.

    ``wrapped_key`` is the data key encrypted by the KMS key (with the item's encryption context);
    ``fields`` maps each attribute name to its nonce + ciphertext + tag (AES-256-GCM, the
    attribute's name and the context bound as associated data).
    """

    wrapped_key: bytes
    fields: Mapping[str, bytes]


class FieldCipher(Protocol):
    """Envelope encryption of an item's personal fields. Fails closed: no key, no plaintext."""

    def seal(self, context: Mapping[str, str], fields: Mapping[str, str]) -> SealedFields:
        """Encrypt each value under a new data key bound to ``context`` (table and item key).

        Raises DependencyUnavailable when KMS cannot be used, so nothing is written in clear.
        """

    def unseal(self, context: Mapping[str, str], sealed: SealedFields) -> dict[str, str]:
        """Decrypt every field; raises DependencyUnavailable if KMS cannot be used, and
        SealBroken (bloodbank.sealing) if a value or the context was tampered with."""


# --- donor notifications ------------------------------------------------------------------------
class Notifier(Protocol):
    """Sends one message to one donor through SNS (SMS to a phone number, e-mail through a topic)."""

    def send(self, message: OutgoingMessage) -> str:
        """The provider's message id. Raises DependencyUnavailable if it could not be handed over."""


class NotificationLedger(Protocol):
    """Remembers which notifications went out, so a retried handler never sends one twice."""

    def claim(self, donor_id: str, key: str, at: datetime) -> bool:
        """True if this caller may send ``key`` now (nobody claimed it before); False if it was claimed."""

    def complete(self, donor_id: str, key: str, message_id: str, at: datetime) -> None:
        """Record that the claimed notification was handed to the provider."""

    def release(self, donor_id: str, key: str) -> None:
        """Give up a claim whose send failed, so a retry sends it."""
