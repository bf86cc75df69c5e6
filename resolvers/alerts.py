"""Resolvers of shortage alerts: the list, and the subscription."""

from __future__ import annotations

from collections.abc import AsyncIterator

from bloodbank.domain.alerts import AlertFilter, ShortageAlert
from bloodbank.ports import Page
from resolvers.context import ResolverEvent


def list_shortage_alerts(event: ResolverEvent) -> Page[ShortageAlert]:
    args = event.arguments
    return event.services.alerts.list(
        event.caller, args.get("site_id"), args.get("limit"), args.get("next_token")
    )


def on_shortage_alert(event: ResolverEvent) -> AsyncIterator[ShortageAlert]:
    """Filtered here, on the server, by the arguments and by what the subscriber may see."""
    args = event.arguments
    wanted = AlertFilter(args.get("site_id"), args.get("blood_group"), args.get("component"))
    return event.services.alerts.subscribe(event.caller, wanted)
