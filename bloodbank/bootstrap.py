"""The composition root: the one place that chooses real adapters or fakes and wires services."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from bloodbank.cursor import CursorCodec
from bloodbank.ports import (
    Clock,
    DirectoryRepository,
    DonorRepository,
    HealthProbe,
    IdGenerator,
    KeySetSource,
)
from bloodbank.services.authn import Authenticator, KeySet, TokenVerifier
from bloodbank.services.donors import DonorService
from bloodbank.settings import Settings


def utc_now() -> datetime:
    return datetime.now(UTC)


def new_uuid() -> str:
    return str(uuid.uuid4())


@dataclass
class Container:
    settings: Settings
    donors: DonorService
    directory: DirectoryRepository
    authenticator: Authenticator
    probes: list[HealthProbe] = field(default_factory=list)


@dataclass
class _KeySetProbe:
    """The identity provider's key set is reachable."""

    source: KeySetSource
    name: str = "cognito"

    def check(self) -> None:
        self.source.fetch()


@dataclass
class CachedProbe:
    """Remembers a success for a while, so a public /health cannot hammer a dependency."""

    probe: HealthProbe
    ttl_seconds: float = 10.0
    _ok_until: float = 0.0

    @property
    def name(self) -> str:
        return self.probe.name

    def check(self) -> None:
        if time.monotonic() < self._ok_until:
            return
        self.probe.check()
        self._ok_until = time.monotonic() + self.ttl_seconds


def build_container(
    settings: Settings,
    *,
    donors: DonorRepository | None = None,
    directory: DirectoryRepository | None = None,
    key_source: KeySetSource | None = None,
    clock: Clock = utc_now,
    new_id: IdGenerator = new_uuid,
    probes: list[HealthProbe] | None = None,
) -> Container:
    """Real adapters for whatever is not passed in; tests pass fakes or moto-backed adapters."""
    cursors = CursorCodec(settings.page_token_secret)
    real_probes: list[HealthProbe] = []
    if donors is None or directory is None:
        from bloodbank.storage.directory import DynamoDirectory
        from bloodbank.storage.donors import DynamoDonorRepository
        from bloodbank.storage.health import TableProbe
        from bloodbank.storage.models import TableBinding, bind

        binding = TableBinding(settings.table_name, settings.region, settings.dynamodb_endpoint)
        bind(binding)
        donors = donors or DynamoDonorRepository(binding, cursors)
        directory = directory or DynamoDirectory()
        real_probes.append(CachedProbe(TableProbe(binding)))
    if key_source is None:
        from bloodbank.adapters.jwks import HttpKeySetSource

        key_source = HttpKeySetSource(settings.jwks_url)
    real_probes.append(CachedProbe(_KeySetProbe(key_source), ttl_seconds=30))
    verifier = TokenVerifier(KeySet(key_source), settings.token_issuer, settings.client_ids)
    return Container(
        settings=settings,
        donors=DonorService(donors, clock, new_id),
        directory=directory,
        authenticator=Authenticator(verifier, directory),
        probes=real_probes if probes is None else probes,
    )
