"""Running AppSync-style resolvers from strawberry fields (root fields and nested ones alike)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import strawberry
from graphql import get_named_type
from strawberry.types import Info
from strawberry.types.base import has_object_definition

from resolvers.context import ResolverEvent
from schema.context import RequestContext

Ctx = Info[RequestContext, None]


def plain(value: Any) -> Any:
    """Input objects to dicts of the fields the client set (AppSync's ``ctx.arguments``)."""
    if isinstance(value, list):
        return [plain(v) for v in value]
    if has_object_definition(value):
        return {
            f.python_name: plain(getattr(value, f.python_name))
            for f in value.__strawberry_definition__.fields
            if getattr(value, f.python_name) is not strawberry.UNSET
        }
    return value


def call(
    resolver: Callable[[ResolverEvent], Any], info: Info[RequestContext, Any], source: Any = None, **args: Any
) -> Any:
    """Run an AppSync-style resolver with the event built from this field's context and arguments.

    A root mutation runs with its audit record pending (``bloodbank.services.audit``)."""
    context = info.context
    event = ResolverEvent(
        identity=context.identity,
        arguments={k: plain(v) for k, v in args.items() if v is not strawberry.UNSET},
        source=source,
        headers=context.headers,
        request_id=context.request_id,
        services=context.services,
        loaders=context.loaders,
    )
    raw = info._raw_info
    if raw.parent_type.name != "Mutation":
        return resolver(event)
    with context.services.audit.mutation(
        context.identity,
        raw.field_name,
        event.arguments,
        get_named_type(raw.return_type).name,
        context.request_id,
    ):
        return resolver(event)
