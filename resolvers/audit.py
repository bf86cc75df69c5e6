"""``listAuditEvents`` (admins)."""

from __future__ import annotations

from bloodbank.domain.audit import AuditEvent, AuditFilter
from bloodbank.ports import Page
from resolvers.context import ResolverEvent
from resolvers.filters import operand


def list_audit_events(event: ResolverEvent) -> Page[AuditEvent]:
    args = event.arguments
    f = args.get("filter") or {}
    at = f.get("at") or {}
    audit_filter = AuditFilter(
        actor=operand(f, "actor", "filter"),
        action=operand(f, "action", "filter"),
        target_type=operand(f, "target_type", "filter"),
        target_id=operand(f, "target_id", "filter"),
        since=at.get("ge"),
        until=at.get("le"),
    )
    return event.services.audit.list(event.caller, audit_filter, args.get("limit"), args.get("next_token"))
