"""AppSync's scalar names, so Amplify code generation maps them without configuration."""

from __future__ import annotations

from datetime import UTC, datetime

import strawberry


def _serialize(value: datetime) -> str:
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.isoformat(timespec="milliseconds")[:-6] + "Z"  # drop "+00:00"


def _parse(value: object) -> datetime:
    if not isinstance(value, str):
        raise ValueError("AWSDateTime must be an ISO 8601 string, e.g. 2026-11-22T09:00:00Z")
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError("AWSDateTime needs a time zone offset or Z")
    return parsed


AWSDateTime = strawberry.scalar(
    name="AWSDateTime",
    description="An ISO 8601 date and time with offset, e.g. 2026-11-22T09:00:00.000Z.",
    serialize=_serialize,
    parse_value=_parse,
)
