"""Amplify-style filter arguments (``{bloodGroup: {eq: O_NEG}, and: [...]}``) to domain expressions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bloodbank.domain.filters import AllOf, AnyOf, Cond, Expr, Not
from bloodbank.errors import BadUserInput, FieldProblem

MAX_VALUE_LENGTH = 256
_OPERATOR_NAMES = {"begins_with": "beginsWith"}


def _check_value(where: str, value: object) -> None:
    if isinstance(value, str) and len(value) > MAX_VALUE_LENGTH:
        raise BadUserInput.of([FieldProblem(where, f"must be at most {MAX_VALUE_LENGTH} characters")])


def to_expr(arguments: Mapping[str, Any] | None, where: str = "filter") -> Expr | None:
    """The expression a filter argument means; None when it sets no condition."""
    if not arguments:
        return None
    parts: list[Expr] = []
    for key, value in arguments.items():
        if value is None:
            continue
        if key in ("and_", "or_"):
            subs = [to_expr(v, f"{where}.{key[:-1]}") for v in value]
            kept = tuple(s for s in subs if s is not None)
            parts.append(AllOf(kept) if key == "and_" else AnyOf(kept))
        elif key == "not_":
            sub = to_expr(value, f"{where}.not")
            if sub is not None:
                parts.append(Not(sub))
        else:
            for op, operand in value.items():
                if operand is None:
                    continue
                name = _OPERATOR_NAMES.get(op, op)
                if name == "between":
                    if len(operand) != 2:
                        raise BadUserInput.of(
                            [FieldProblem(f"{where}.{key}.between", "needs exactly two values")]
                        )
                    for v in operand:
                        _check_value(f"{where}.{key}.between", v)
                    parts.append(Cond(key, name, (operand[0], operand[1])))
                else:
                    _check_value(f"{where}.{key}.{name}", operand)
                    parts.append(Cond(key, name, operand))
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else AllOf(tuple(parts))


def operand(filter_: Mapping[str, Any] | None, name: str, where: str, ops: tuple[str, ...] = ("eq",)) -> Any:
    """The value of ``filter.<name>.eq`` (or the one operator allowed); other operators are refused."""
    conditions = (filter_ or {}).get(name) or {}
    for op in conditions:
        if op not in ops:
            raise BadUserInput.of(
                [FieldProblem(f"{where}.{name}.{op}", f"only {', '.join(ops)} is supported here")]
            )
    return conditions.get(ops[0])
