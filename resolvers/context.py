"""The AppSync-like event each resolver receives."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

from strawberry.dataloader import DataLoader

from bloodbank.domain.identity import Identity
from bloodbank.errors import Unauthenticated
from bloodbank.ports import DirectoryRepository
from bloodbank.services.alerts import AlertService
from bloodbank.services.audit import AuditService
from bloodbank.services.campaigns import CampaignService
from bloodbank.services.documents import DocumentService
from bloodbank.services.donations import DonationService
from bloodbank.services.donors import DonorService
from bloodbank.services.email import EmailTemplateService
from bloodbank.services.employees import EmployeeService
from bloodbank.services.inventory import InventoryService
from bloodbank.services.recipients import RecipientListService


class Services(Protocol):
    """What resolvers may call: the composition root's container satisfies it."""

    @property
    def donors(self) -> DonorService: ...

    @property
    def directory(self) -> DirectoryRepository: ...

    @property
    def documents(self) -> DocumentService: ...

    @property
    def donations(self) -> DonationService: ...

    @property
    def inventory(self) -> InventoryService: ...

    @property
    def alerts(self) -> AlertService: ...

    @property
    def email_templates(self) -> EmailTemplateService: ...

    @property
    def recipient_lists(self) -> RecipientListService: ...

    @property
    def campaigns(self) -> CampaignService: ...

    @property
    def employees(self) -> EmployeeService: ...

    @property
    def audit(self) -> AuditService: ...


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
    loaders: dict[str, Any] = field(default_factory=dict)

    def loader(self, name: str, batch: Callable[[list[Any]], Sequence[Any]]) -> DataLoader[Any, Any]:
        """This request's DataLoader called ``name`` (made on first use): one batched read per level."""
        found = self.loaders.get(name)
        if found is None:

            async def load(keys: list[Any]) -> Sequence[Any]:
                return batch(keys)

            found = self.loaders[name] = DataLoader(load_fn=load)
        return cast("DataLoader[Any, Any]", found)

    @property
    def caller(self) -> Identity:
        """The signed-in caller; fields that use it declare groups, so this only guards mistakes."""
        if self.identity is None:
            raise Unauthenticated("Sign in first: send your Cognito access token in the Authorization header")
        return self.identity
