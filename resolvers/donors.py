"""Resolvers of the donor registry's fields."""

from __future__ import annotations

from bloodbank.domain.donors import Donor
from bloodbank.ports import Page
from resolvers.context import ResolverEvent
from resolvers.filters import to_expr


def me(event: ResolverEvent) -> Donor | None:
    return event.services.donors.me(event.caller)


def get_donor(event: ResolverEvent) -> Donor | None:
    return event.services.donors.get(event.caller, event.arguments["id"])


def list_donors(event: ResolverEvent) -> Page[Donor]:
    args = event.arguments
    return event.services.donors.list(
        event.caller, to_expr(args.get("filter")), args.get("limit"), args.get("next_token")
    )


def register_donor(event: ResolverEvent) -> Donor:
    return event.services.donors.register(event.caller, dict(event.arguments["input"]))


def update_donor(event: ResolverEvent) -> Donor:
    values = dict(event.arguments["input"])
    donor_id = values.pop("id")
    expected_version = values.pop("expected_version")
    return event.services.donors.update(event.caller, donor_id, expected_version, values)
