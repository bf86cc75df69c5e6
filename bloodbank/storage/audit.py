"""The audit trail in the single table (ACCESS_PATTERNS.md, "Audit trail"): ``AUDIT#<id>`` / ``AUDIT``,
listed newest first on gsi1 (``AUDIT``), by actor on gsi2 and by target on gsi3.

Records are added to a mutation's own transaction by ``storage.transactions`` (see
``bloodbank.domain.audit``); ``record`` writes one on its own for a mutation that wrote nothing else.
"""

from __future__ import annotations

from pynamodb.exceptions import PutError, QueryError

from bloodbank.cursor import CursorCodec
from bloodbank.domain.audit import AuditEvent, AuditFilter, Target
from bloodbank.errors import DependencyUnavailable
from bloodbank.ports import Page
from bloodbank.storage import keys
from bloodbank.storage.models import AuditEventItem, TableBinding
from bloodbank.storage.paging import token_page


def audit_item(event: AuditEvent) -> AuditEventItem:
    item = AuditEventItem(
        event_id=event.id,
        at=event.at,
        actor=event.actor,
        groups=list(event.groups),
        action=event.action,
        target_type=event.target.type if event.target else None,
        target_id=event.target.id if event.target else None,
        request_id=event.request_id,
        hospital_id=event.hospital_id,
    )
    item.set_key(keys.audit_event(event.id))
    item.set_index(keys.all_audit_events(event.at, event.id))
    item.set_index(keys.audit_events_of_actor(event.actor, event.at, event.id))
    if event.target is not None:
        item.set_index(keys.audit_events_of_target(event.target.type, event.target.id, event.at, event.id))
    return item


def to_event(item: AuditEventItem) -> AuditEvent:
    target = Target(item.target_type, item.target_id) if item.target_type and item.target_id else None
    return AuditEvent(
        id=item.event_id,
        at=item.at,
        actor=item.actor,
        groups=tuple(str(g) for g in item.groups or ()),
        action=item.action,
        target=target,
        request_id=item.request_id,
        hospital_id=item.hospital_id,
    )


class DynamoAuditLog:
    """Implements ``AuditLog`` over the table the models are bound to (``models.bind``)."""

    def __init__(self, binding: TableBinding | None, cursors: CursorCodec) -> None:
        self._binding = binding
        self._cursors = cursors

    def record(self, event: AuditEvent) -> None:
        """PutItem if ``pk`` is absent (ids are random: a retry of the same record is the only repeat)."""
        try:
            audit_item(event).save(condition=AuditEventItem.pk.does_not_exist())
        except PutError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                return  # this very record was written by an earlier attempt
            raise DependencyUnavailable(f"audit write failed: {exc.cause_response_code}") from None

    def list(self, f: AuditFilter, limit: int, next_token: str | None) -> Page[AuditEvent]:
        """One index Query, newest first: by target (gsi3), by actor (gsi2), or every record (gsi1);
        the time range is a condition on the sort key, the action a filter."""
        if f.target_type is not None and f.target_id is not None:
            index, partition = "gsi3", keys.audit_events_of_target_partition(f.target_type, f.target_id)
        elif f.actor is not None:
            index, partition = "gsi2", keys.audit_events_of_actor_partition(f.actor)
        else:
            index, partition = "gsi1", keys.ALL_AUDIT_EVENTS
        sort_key = getattr(AuditEventItem, f"{index}sk")
        low = keys.audit_instant(f.since) if f.since else None
        high = keys.audit_instant(f.until) + "~" if f.until else None  # "~" sorts after "#<id>"
        if low and high:
            condition = sort_key.between(low, high)
        elif low:
            condition = sort_key >= low
        elif high:
            condition = sort_key <= high
        else:
            condition = None
        residual = None
        if f.action is not None:
            residual = AuditEventItem.action == f.action
        if f.target_type is not None and f.target_id is None:
            target_type = AuditEventItem.target_type == f.target_type
            residual = target_type if residual is None else residual & target_type
        scope = f"audit|{index}|{partition}|{low}|{high}|{f.action}|{f.target_type}"
        try:
            found, token = token_page(
                self._cursors,
                scope,
                index,
                partition,
                limit,
                next_token,
                range_condition=condition,
                filter_condition=residual,
                forward=False,
            )
        except QueryError as exc:
            raise DependencyUnavailable(f"audit read failed: {exc.cause_response_code}") from None
        return Page([to_event(i) for i in found if isinstance(i, AuditEventItem)], token)
