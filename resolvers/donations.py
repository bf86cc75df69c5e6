"""Resolvers of donations, eligibility, deferrals and the units a donation made."""

from __future__ import annotations

from strawberry.dataloader import DataLoader

from bloodbank.domain.donations import BloodUnit, Donation
from bloodbank.domain.donors import Donor
from bloodbank.domain.eligibility import Eligibility
from bloodbank.ports import Page
from resolvers.context import ResolverEvent


def eligibility(event: ResolverEvent) -> list[Eligibility]:
    return event.services.donations.eligibility(event.caller, event.source)


def donor_donations(event: ResolverEvent) -> Page[Donation]:
    args = event.arguments
    return event.services.donations.history(
        event.caller, event.source, args.get("limit"), args.get("next_token")
    )


async def donation_units(event: ResolverEvent) -> list[BloodUnit]:
    """Batched: the units of every donation on a page come from one BatchGetItem."""
    donation: Donation = event.source
    service = event.services.donations
    service.check_may_see(event.caller, donation.donor_id)
    found = await _units_loader(event).load_many(list(donation.unit_ids))
    return [u for u in found if u is not None]


def _units_loader(event: ResolverEvent) -> DataLoader[str, BloodUnit | None]:
    service = event.services.donations
    return event.loader("units", lambda ids: service.units_by_id(ids))


def record_donation(event: ResolverEvent) -> Donation:
    recorded = event.services.donations.record(event.caller, dict(event.arguments["input"]))
    _units_loader(event).prime_many({u.id: u for u in recorded.units})  # just written: no read back
    return recorded.donation


def defer_donor(event: ResolverEvent) -> Donor:
    return event.services.donations.defer(event.caller, dict(event.arguments["input"]))
