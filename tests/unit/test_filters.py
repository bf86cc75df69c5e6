"""The filter language: what a filter means, which parts an index can serve, and its size limits."""

from __future__ import annotations

import pytest

from bloodbank.domain.blood import BloodGroup
from bloodbank.domain.filters import AllOf, AnyOf, Cond, Not, canonical, check_size, equalities, evaluate
from bloodbank.errors import BadUserInput
from bloodbank.storage.planning import plan
from resolvers.filters import to_expr

ROW = {
    "first_name": "Ann",
    "last_name": "Lee",
    "blood_group": BloodGroup.O_NEG,
    "site_id": "site-north",
    "phone": None,
}


def matches(expr: object) -> bool:
    return evaluate(expr, ROW.get)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        (Cond("last_name", "eq", "Lee"), True),
        (Cond("last_name", "ne", "Lee"), False),
        (Cond("last_name", "beginsWith", "Le"), True),
        (Cond("last_name", "contains", "e"), True),
        (Cond("last_name", "lt", "M"), True),
        (Cond("last_name", "ge", "M"), False),
        (Cond("last_name", "between", ("K", "M")), True),
        (Cond("blood_group", "eq", BloodGroup.O_NEG), True),
        (Cond("blood_group", "ne", BloodGroup.O_POS), True),
        (Cond("phone", "beginsWith", "+1"), False),
        (Cond("phone", "gt", "a"), False),
        (AllOf((Cond("site_id", "eq", "site-north"), Cond("first_name", "eq", "Ann"))), True),
        (AnyOf((Cond("site_id", "eq", "site-south"), Cond("first_name", "eq", "Bob"))), False),
        (Not(Cond("site_id", "eq", "site-south")), True),
    ],
)
def test_evaluate(expr: object, expected: bool) -> None:
    assert matches(expr) is expected


def test_top_level_equalities_can_be_served_by_keys() -> None:
    expr = AllOf(
        (Cond("site_id", "eq", "s1"), Cond("blood_group", "eq", BloodGroup.A_POS), Cond("x", "ne", 1))
    )
    assert equalities(expr) == {"site_id": "s1", "blood_group": BloodGroup.A_POS}
    assert equalities(AnyOf((Cond("site_id", "eq", "s1"),))) == {}  # an "or" pins nothing
    assert equalities(Not(Cond("site_id", "eq", "s1"))) == {}


@pytest.mark.parametrize(
    ("arguments", "index", "residual"),
    [
        (None, "gsi3", None),
        ({"site_id": {"eq": "s1"}}, "gsi1", None),
        ({"blood_group": {"eq": BloodGroup.O_NEG}}, "gsi2", None),
        ({"site_id": {"eq": "s1"}, "blood_group": {"eq": BloodGroup.O_NEG}}, "gsi1", None),
        (
            {"site_id": {"eq": "s1"}, "last_name": {"begins_with": "L"}},
            "gsi1",
            Cond("last_name", "beginsWith", "L"),
        ),
        ({"blood_group": {"ne": BloodGroup.O_NEG}}, "gsi3", Cond("blood_group", "ne", BloodGroup.O_NEG)),
        (
            {"or_": [{"site_id": {"eq": "s1"}}, {"site_id": {"eq": "s2"}}]},
            "gsi3",
            AnyOf((Cond("site_id", "eq", "s1"), Cond("site_id", "eq", "s2"))),
        ),
    ],
    ids=["none", "site", "group", "site+group", "site+name", "group-ne", "or"],
)
def test_plan_picks_an_index_and_leaves_the_rest_to_filter(arguments, index, residual) -> None:  # type: ignore[no-untyped-def]
    chosen = plan(to_expr(arguments))
    assert chosen.index == index
    assert chosen.residual == residual


@pytest.mark.parametrize(
    ("arguments", "index", "prefix"),
    [
        ({"last_name": {"begins_with": "O'Ne"}}, "gsi3", "one"),
        ({"last_name": {"eq": "García"}}, "gsi3", "garcia "),
        ({"blood_group": {"eq": BloodGroup.O_NEG}, "last_name": {"begins_with": "Le"}}, "gsi2", "le"),
        (
            {
                "site_id": {"eq": "s1"},
                "blood_group": {"eq": BloodGroup.O_NEG},
                "last_name": {"begins_with": "Le"},
            },
            "gsi1",
            "O_NEG#le",
        ),
        (
            {"site_id": {"eq": "s1"}, "last_name": {"begins_with": "Le"}},
            "gsi1",
            None,
        ),  # group comes first there
        ({"last_name": {"begins_with": "?"}}, "gsi3", None),  # nothing left to narrow by
        ({"or_": [{"last_name": {"eq": "Lee"}}, {"last_name": {"eq": "Kim"}}]}, "gsi3", None),
    ],
)
def test_a_family_name_condition_narrows_the_key_range(arguments, index, prefix) -> None:  # type: ignore[no-untyped-def]
    chosen = plan(to_expr(arguments))
    assert (chosen.index, chosen.sort_prefix) == (index, prefix)
    assert chosen.residual is not None  # the exact condition is still checked


def test_amplify_arguments_become_expressions() -> None:
    expr = to_expr(
        {
            "blood_group": {"eq": BloodGroup.O_NEG},
            "and_": [{"last_name": {"between": ["A", "M"]}}],
            "not_": {"site_id": {"eq": "site-south"}},
            "email": {"eq": None},  # an explicit null sets no condition
        }
    )
    assert expr == AllOf(
        (
            Cond("blood_group", "eq", BloodGroup.O_NEG),
            AllOf((Cond("last_name", "between", ("A", "M")),)),
            Not(Cond("site_id", "eq", "site-south")),
        )
    )
    assert to_expr({}) is None
    assert to_expr({"email": {"eq": None}}) is None


@pytest.mark.parametrize(
    "arguments",
    [
        {"last_name": {"between": ["A"]}},
        {"last_name": {"eq": "x" * 257}},
    ],
)
def test_malformed_filter_values_are_bad_input(arguments: dict[str, object]) -> None:
    with pytest.raises(BadUserInput):
        to_expr(arguments)


def test_filter_size_limits() -> None:
    deep = Cond("a", "eq", 1)
    for _ in range(6):
        deep = Not(deep)  # type: ignore[assignment]
    with pytest.raises(BadUserInput, match="levels deep"):
        check_size(deep)
    with pytest.raises(BadUserInput, match="at most 20 conditions"):
        check_size(AllOf(tuple(Cond("a", "eq", i) for i in range(21))))
    with pytest.raises(BadUserInput, match="at least one"):
        check_size(AnyOf(()))
    check_size(AllOf(tuple(Cond("a", "eq", i) for i in range(20))))


def test_canonical_text_is_stable_and_distinguishes_filters() -> None:
    a = AllOf((Cond("site_id", "eq", "s1"), Cond("blood_group", "eq", BloodGroup.O_NEG)))
    assert canonical(a) == canonical(
        AllOf((Cond("site_id", "eq", "s1"), Cond("blood_group", "eq", BloodGroup.O_NEG)))
    )
    assert canonical(a) != canonical(Cond("site_id", "eq", "s1"))
    assert canonical(None) == ""
