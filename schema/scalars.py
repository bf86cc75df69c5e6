"""AppSync's scalar names, so Amplify code generation maps them without configuration."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import strawberry


def _serialize(value: datetime) -> str:
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.isoformat(timespec="milliseconds")[:-6] + "Z"  # drop "+00:00"


def _parse(value: object) -> datetime:
    if not isinstance(value, str):
        raise ValueError("AWSDateTime must be an ISO 8601 string, e.g. 2026-11-22T09:00:00Z")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError("AWSDateTime must be an ISO 8601 date and time, e.g. 2026-11-22T09:00:00Z") from None
    if parsed.tzinfo is None:
        raise ValueError("AWSDateTime needs a time zone offset or Z")
    return parsed


AWSDateTime = strawberry.scalar(
    name="AWSDateTime",
    description="An ISO 8601 date and time with offset, e.g. 2026-11-22T09:00:00.000Z.",
    serialize=_serialize,
    parse_value=_parse,
)


def _parse_date(value: object) -> date:
    if not isinstance(value, str):
        raise ValueError("AWSDate must be an ISO 8601 date string, e.g. 2026-11-22")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError("AWSDate must be an ISO 8601 date, YYYY-MM-DD") from None


AWSDate = strawberry.scalar(
    name="AWSDate",
    description="An ISO 8601 calendar date, e.g. 2026-11-22.",
    serialize=lambda value: value.isoformat(),
    parse_value=_parse_date,
)


def _json_text(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _parse_json(value: object) -> object:
    if not isinstance(value, str):
        raise ValueError('AWSJSON must be a string holding JSON, e.g. "{\\"a\\":1}"')
    try:
        return json.loads(value)
    except ValueError:
        raise ValueError("AWSJSON must hold valid JSON text") from None


# Fields are annotated with strawberry's JSON; the schema maps it to this scalar (scalar_overrides).
AWSJSON = strawberry.scalar(
    name="AWSJSON",
    description='A JSON value sent and received as a string holding its JSON text, e.g. "{\\"a\\":1}".',
    serialize=_json_text,
    parse_value=_parse_json,
)
