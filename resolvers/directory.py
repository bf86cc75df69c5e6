"""Resolvers of reference data: sites and hospitals."""

from __future__ import annotations

from bloodbank.domain.organisations import Hospital, Site
from resolvers.context import ResolverEvent


def list_sites(event: ResolverEvent) -> list[Site]:
    return list(event.services.directory.sites())


def list_hospitals(event: ResolverEvent) -> list[Hospital]:
    return list(event.services.directory.hospitals())
