"""Amplify-style list filters as a small expression tree, evaluated in memory or compiled by storage.

A filter is ``Cond`` (field, operator, value) combined with ``AllOf``, ``AnyOf`` and ``Not``,
mirroring Amplify's ``and``/``or``/``not``. Storage compiles the same tree into a DynamoDB
filter expression; ``evaluate`` is the reference meaning both must agree with.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from bloodbank.errors import BadUserInput, FieldProblem

OPERATORS = ("eq", "ne", "lt", "le", "gt", "ge", "between", "beginsWith", "contains")
MAX_CONDITIONS = 20
MAX_DEPTH = 5


@dataclass(frozen=True, slots=True)
class Cond:
    field: str
    op: str
    value: object  # a (low, high) tuple for "between"


@dataclass(frozen=True, slots=True)
class AllOf:
    parts: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    parts: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Not:
    part: Expr


Expr = Cond | AllOf | AnyOf | Not


def plain(value: object) -> object:
    """A value as stored and compared: an enum member becomes its value."""
    return value.value if isinstance(value, Enum) else value


def _compare(op: str, actual: object, expected: object) -> bool:
    actual, expected = plain(actual), plain(expected)
    if op == "eq":
        return actual == expected
    if op == "ne":
        return actual != expected
    if actual is None:
        return False
    if op == "beginsWith":
        return isinstance(actual, str) and isinstance(expected, str) and actual.startswith(expected)
    if op == "contains":
        return isinstance(actual, str) and isinstance(expected, str) and expected in actual
    if op == "between":
        assert isinstance(expected, tuple)
        low, high = (plain(v) for v in expected)
        return bool(low <= actual <= high)  # type: ignore[operator]
    comparisons: dict[str, Callable[[object, object], bool]] = {
        "lt": lambda a, b: a < b,  # type: ignore[operator]
        "le": lambda a, b: a <= b,  # type: ignore[operator]
        "gt": lambda a, b: a > b,  # type: ignore[operator]
        "ge": lambda a, b: a >= b,  # type: ignore[operator]
    }
    try:
        return comparisons[op](actual, expected)
    except TypeError:
        return False


def evaluate(expr: Expr, get: Callable[[str], object]) -> bool:
    """Whether the item whose fields ``get`` returns matches ``expr``."""
    if isinstance(expr, Cond):
        return _compare(expr.op, get(expr.field), expr.value)
    if isinstance(expr, AllOf):
        return all(evaluate(p, get) for p in expr.parts)
    if isinstance(expr, AnyOf):
        return any(evaluate(p, get) for p in expr.parts)
    return not evaluate(expr.part, get)


def equalities(expr: Expr | None) -> dict[str, object]:
    """Fields the filter pins with ``eq`` at its top level (usable as key conditions)."""
    if isinstance(expr, Cond):
        return {expr.field: expr.value} if expr.op == "eq" else {}
    if isinstance(expr, AllOf):
        found: dict[str, object] = {}
        for part in expr.parts:
            for name, value in equalities(part).items():
                found.setdefault(name, value)
        return found
    return {}


def canonical(expr: Expr | None) -> str:
    """A stable text of the filter, so a page token can be bound to the query it came from."""

    def tree(e: Expr) -> object:
        if isinstance(e, Cond):
            value = e.value
            shown = [plain(v) for v in value] if isinstance(value, tuple) else plain(value)
            return [e.field, e.op, shown]
        if isinstance(e, AllOf):
            return ["and", [tree(p) for p in e.parts]]
        if isinstance(e, AnyOf):
            return ["or", [tree(p) for p in e.parts]]
        return ["not", tree(e.part)]

    return "" if expr is None else json.dumps(tree(expr), separators=(",", ":"), default=str)


def check_size(expr: Expr | None, field: str = "filter") -> None:
    """Refuse filters too large or deep to evaluate cheaply."""
    count = 0

    def walk(e: Expr, depth: int) -> None:
        nonlocal count
        if depth > MAX_DEPTH:
            raise BadUserInput.of([FieldProblem(field, f"nest and/or/not at most {MAX_DEPTH} levels deep")])
        if isinstance(e, Cond):
            count += 1
        elif isinstance(e, AllOf | AnyOf):
            if not e.parts:
                raise BadUserInput.of([FieldProblem(field, "and/or need at least one filter")])
            for p in e.parts:
                walk(p, depth + 1)
        else:
            walk(e.part, depth + 1)

    if expr is not None:
        walk(expr, 1)
    if count > MAX_CONDITIONS:
        raise BadUserInput.of([FieldProblem(field, f"use at most {MAX_CONDITIONS} conditions")])
