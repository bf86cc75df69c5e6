"""The schema's direct field and enum paths give exactly what strawberry's own paths give."""

from __future__ import annotations

import strawberry
from graphql import GraphQLObjectType

from bloodbank.domain.blood import BloodGroup
from schema.fast_paths import name_enum_values_directly, read_plain_fields_directly
from schema.root import Mutation, Query, schema
from schema.scalars import AWSDateTime


def plain_schema() -> strawberry.Schema:
    from datetime import datetime

    return strawberry.Schema(query=Query, mutation=Mutation, scalar_overrides={datetime: AWSDateTime})


def test_only_basic_fields_are_rebound() -> None:
    fresh = plain_schema()
    assert read_plain_fields_directly(fresh) > 10
    query_type = fresh._schema.type_map["Query"]
    assert isinstance(query_type, GraphQLObjectType)
    # Root fields keep strawberry's resolver, with its permission check.
    assert "_getter" not in query_type.fields["listDonors"].resolve.__qualname__  # type: ignore[union-attr]
    donor = fresh._schema.type_map["Donor"]
    assert isinstance(donor, GraphQLObjectType)
    assert "_getter" in donor.fields["firstName"].resolve.__qualname__  # type: ignore[union-attr]


def test_enum_values_are_named_the_same_way() -> None:
    fresh = plain_schema()
    original = fresh._schema.type_map["BloodGroup"]
    expected = {g: original.coerce_output_value(g) for g in BloodGroup}  # type: ignore[attr-defined]
    assert name_enum_values_directly(fresh) >= 2
    rebound = fresh._schema.type_map["BloodGroup"]
    assert {g: rebound.coerce_output_value(g) for g in BloodGroup} == expected  # type: ignore[attr-defined]
    assert rebound.coerce_output_value("O_NEG") == "O_NEG"  # type: ignore[attr-defined]  # names pass as before


def test_a_page_reads_the_same_through_both_paths(world, tokens) -> None:  # type: ignore[no-untyped-def]
    import asyncio

    from bloodbank.domain.identity import Group, Identity
    from schema.context import RequestContext

    staff = Identity(sub="s", username="s", groups=frozenset({Group.STAFF}), token_use="access")
    for n, group in enumerate(BloodGroup):
        world.container.donors.register(
            staff,
            {
                "first_name": "Ann",
                "last_name": f"Lee{n}",
                "email": f"a{n}@example.org",
                "site_id": "site-north",
                "blood_group": group,
                "phone": "+14155550123" if n % 2 else None,
            },
        )
    fields = "id firstName lastName email phone bloodGroup siteId createdAt updatedAt version"
    query = f"{{ listDonors(limit: 100) {{ items {{ {fields} }} nextToken }} }}"

    def run(s: strawberry.Schema) -> object:
        context = RequestContext(services=world.container, request_id="r", identity=staff)
        result = asyncio.run(s.execute(query, context_value=context))
        assert result.errors is None
        return result.data

    assert run(schema) == run(plain_schema())
