"""The audit trail's types: one record per successful mutation."""

from __future__ import annotations

from datetime import datetime

import strawberry

from schema.types import IDFilterInput, StringFilterInput


@strawberry.type(
    description=(
        "One successful mutation: who made it (user id, groups, hospital), which mutation, the record it"
        " changed, when, and the request id that the caller's logs and ours share. Records hold ids"
        " only, never personal data, and are never changed or removed."
    )
)
class AuditEvent:
    id: strawberry.ID
    at: datetime
    actor: strawberry.ID = strawberry.field(description="The caller's user id (Cognito sub).")
    groups: list[str] = strawberry.field(description="The caller's groups at the time.")
    action: str = strawberry.field(description="The mutation, e.g. fulfillBloodRequest.")
    request_id: str
    hospital_id: strawberry.ID | None = strawberry.field(description="The caller's hospital, for a hospital.")

    @strawberry.field(description="The type of the record changed (e.g. BloodRequest); null if none.")
    def target_type(self) -> str | None:
        target = getattr(self, "target", None)
        return target.type if target else None

    @strawberry.field(description="The id of the record changed; null if none.")
    def target_id(self) -> strawberry.ID | None:
        target = getattr(self, "target", None)
        return strawberry.ID(target.id) if target else None


@strawberry.type(description="One page of audit records, newest first.")
class AuditEventConnection:
    items: list[AuditEvent]
    next_token: str | None = strawberry.field(description="Pass it back for the next page; null on the last.")


@strawberry.input(description="An instant range: ge (at or after) and le (at or before).")
class DateTimeRangeInput:
    ge: datetime | None = strawberry.UNSET
    le: datetime | None = strawberry.UNSET


@strawberry.input(
    description=(
        "Filter audit records (eq only): by actor, or by record (targetType and targetId; targetType"
        " alone filters), by action, and by time."
    )
)
class AuditEventFilterInput:
    actor: IDFilterInput | None = strawberry.UNSET
    action: StringFilterInput | None = strawberry.UNSET
    target_type: StringFilterInput | None = strawberry.UNSET
    target_id: IDFilterInput | None = strawberry.UNSET
    at: DateTimeRangeInput | None = strawberry.UNSET
