"""The AppSync-like event each resolver receives."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from bloodbank.domain.identity import Identity
from bloodbank.errors import Unauthenticated
from bloodbank.ports import DirectoryRepository
from bloodbank.services.donors import DonorService


class Services(Protocol):
    """What resolvers may call: the composition root's container satisfies it."""

    @property
    def donors(self) -> DonorService: ...

    @property
    def directory(self) -> DirectoryRepository: ...


@dataclass(frozen=True, slots=True)
class ResolverEvent:
    """Like AppSync's ``ctx``: ``identity``, ``arguments`` (only the ones sent), ``source``, ``headers``.

    Arguments are plain values: input objects become dicts holding only the fields the client set
    (an explicit null is kept as None), keyed by their Python names.
    """

    identity: Identity | None
    arguments: Mapping[str, Any]
    source: Any
    headers: Mapping[str, str]
    request_id: str
    services: Services

    @property
    def caller(self) -> Identity:
        """The signed-in caller; fields that use it declare groups, so this only guards mistakes."""
        if self.identity is None:
            raise Unauthenticated("Sign in first: send your Cognito access token in the Authorization header")
        return self.identity
