"""Direct paths for the two things a page of results does most: read plain fields, name enum values.

- A field with no resolver and no extensions only returns ``getattr(source, name)``; strawberry
  gets there through two wrappers per field. A page of 100 donors has a thousand such fields.
- Strawberry serializes an enum member by scanning the enum's values; a dict lookup does the same.

Both keep strawberry's results exactly (``tests/unit/test_fast_paths.py`` compares them).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import strawberry
from graphql import GraphQLObjectType
from strawberry.schema.schema_converter import CustomGraphQLEnumType, GraphQLCoreConverter
from strawberry.types.field import StrawberryField


def _getter(name: str) -> Callable[..., Any]:
    def resolve(source: Any, _info: Any) -> Any:
        return getattr(source, name)

    resolve._is_default = True  # type: ignore[attr-defined]  # what strawberry marks default resolvers with
    return resolve


def _enum_namer(gql_enum: CustomGraphQLEnumType) -> Callable[[Any], str]:
    members: dict[Any, str] = {gql_enum.wrapped_cls(v.value): name for name, v in gql_enum.values.items()}
    slow = gql_enum.coerce_output_value

    def coerce_output_value(value: Any) -> str:
        name = members.get(value) if isinstance(value, gql_enum.wrapped_cls) else None
        return name if name is not None else slow(value)

    return coerce_output_value


def name_enum_values_directly(schema: strawberry.Schema) -> int:
    """Serialize the schema's enums by lookup; returns how many enums were rebound."""
    rebound = 0
    for gql_type in schema._schema.type_map.values():
        if isinstance(gql_type, CustomGraphQLEnumType):
            namer = _enum_namer(gql_type)
            gql_type.coerce_output_value = namer  # type: ignore[method-assign, assignment]
            gql_type.serialize = namer  # type: ignore[method-assign, assignment]
            rebound += 1
    return rebound


def read_plain_fields_directly(schema: strawberry.Schema) -> int:
    """Rebind every basic field of the schema's object types; returns how many were rebound."""
    rebound = 0
    for gql_type in schema._schema.type_map.values():
        if not isinstance(gql_type, GraphQLObjectType):
            continue
        for gql_field in gql_type.fields.values():
            field = (gql_field.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
            basic = isinstance(field, StrawberryField) and field.is_basic_field
            if basic and getattr(gql_field.resolve, "_is_default", False):
                gql_field.resolve = _getter(field.python_name)  # type: ignore[union-attr]
                rebound += 1
    return rebound
