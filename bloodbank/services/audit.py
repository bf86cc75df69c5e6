"""The audit trail: a record for every successful mutation (``bloodbank.domain.audit``), and
``listAuditEvents`` for admins."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from bloodbank.domain import audit as rules
from bloodbank.domain.audit import AuditEvent, AuditFilter
from bloodbank.domain.identity import Group, Identity
from bloodbank.errors import BadUserInput, Forbidden
from bloodbank.ports import AuditLog, Clock, IdGenerator, Page
from bloodbank.services.donors import page_size

log = logging.getLogger("bloodbank.audit")


class AuditService:
    def __init__(self, events: AuditLog, clock: Clock, new_id: IdGenerator) -> None:
        self.events = events
        self.clock = clock
        self.new_id = new_id

    @contextmanager
    def mutation(
        self,
        identity: Identity | None,
        action: str,
        arguments: Mapping[str, Any],
        returns: str | None,
        request_id: str,
    ) -> Iterator[None]:
        """Run a mutation with its audit record pending: the first write it makes carries the record;
        if it wrote none and succeeds, the record is written on its own. A failed mutation leaves none.

        Every mutation requires sign-in, so a caller with no identity has been refused already."""
        if identity is None:
            yield
            return
        event = AuditEvent(
            id=self.new_id(),
            at=self.clock(),
            actor=identity.sub,
            groups=tuple(sorted(g.value for g in identity.groups)),
            action=action,
            target=rules.target_of(arguments, returns),
            request_id=request_id,
            hospital_id=identity.hospital_id,
        )
        with rules.recording(event) as scope:
            yield
        if not scope.written:
            self.events.record(scope.event)
        log.info(
            "audited",
            extra={
                "request_id": request_id,
                "action": action,
                "audit_id": scope.event.id,
                "in_transaction": scope.written,
            },
        )

    def list(
        self, identity: Identity, f: AuditFilter, limit: int | None, next_token: str | None
    ) -> Page[AuditEvent]:
        if Group.ADMINS not in identity.groups:
            raise Forbidden("Only admins may read the audit trail")
        problems = rules.check_filter(f)
        if problems:
            raise BadUserInput.of(problems)
        return self.events.list(rules.inclusive(f), page_size(limit), next_token)
