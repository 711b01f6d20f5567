"""Math functions on exact decimals. Null in gives null out; impossible operations (mod by
zero, square root of a negative number, ln of zero) are rule errors at evaluation."""

from __future__ import annotations

import decimal
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from crm_platform.rules import types as t
from crm_platform.rules.function_spec import (
    NOT_LITERAL,
    CallCheck,
    CallInfo,
    FunctionSpec,
    Param,
    first_numeric,
    strict,
    typed,
    unified,
)
from crm_platform.rules.runtime import CONTEXT, EvaluationFailure
from crm_platform.rules.sql_values import SqlBuilder, SqlValue
from crm_platform.rules.types import RuleType

NUMBER = Param("number", "number")
_ROUNDING = {
    "round": decimal.ROUND_HALF_UP,
    "floor": decimal.ROUND_FLOOR,
    "ceil": decimal.ROUND_CEILING,
}


def _quantize(value: Any, digits: int, mode: str) -> Any:
    whole = isinstance(value, int)
    if whole and digits >= 0:
        return value
    exponent = Decimal(1).scaleb(-digits)
    try:
        result = Decimal(value).quantize(exponent, rounding=_ROUNDING[mode], context=CONTEXT)
    except decimal.InvalidOperation:
        raise EvaluationFailure(f"cannot {mode} {value} to {digits} places") from None
    return int(result) if whole else result


def _round(value: Any, digits: Any = None) -> Any:
    if digits is None:
        return int(_quantize(value, 0, "round"))
    return _quantize(value, digits, "round")


def _floor(value: Any) -> int:
    return int(_quantize(value, 0, "floor"))


def _ceil(value: Any) -> int:
    return int(_quantize(value, 0, "ceil"))


def _mod(a: Any, b: Any) -> Any:
    """The remainder with the sign of `a` (as in SQL): mod(-7, 3) = -1."""
    if not b:
        raise EvaluationFailure("mod() by zero")
    if type(a) is int and type(b) is int:
        remainder = abs(a) % abs(b)
        return remainder if a >= 0 else -remainder
    return CONTEXT.remainder(Decimal(a), Decimal(b))


def _power(base: Any, exponent: Any) -> Decimal:
    if abs(exponent) > 1000:
        raise EvaluationFailure("power() exponent is too large (at most 1000)")
    try:
        return CONTEXT.power(Decimal(base), Decimal(exponent))
    except (decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow):
        raise EvaluationFailure(f"power({base}, {exponent}) cannot be computed") from None


def _sqrt(value: Any) -> Decimal:
    if value < 0:
        raise EvaluationFailure("square root of a negative number")
    return CONTEXT.sqrt(Decimal(value))


def _exp(value: Any) -> Decimal:
    try:
        return CONTEXT.exp(Decimal(value))
    except decimal.Overflow:
        raise EvaluationFailure(f"exp({value}) is too large") from None


def _ln(value: Any) -> Decimal:
    if value <= 0:
        raise EvaluationFailure("ln() of zero or a negative number")
    return CONTEXT.ln(Decimal(value))


def _extreme(pick: Any) -> Any:
    def run(*values: Any) -> Any:
        return pick(values)

    return run


# ---- checks ----


def _check_round(c: CallCheck) -> RuleType:
    result = typed([NUMBER, Param("digits", "integer")], first_numeric)(c)
    if len(c.info.types) == 1 and not result.unknown:
        return t.INTEGER
    return result


def _check_extreme(c: CallCheck) -> RuleType:
    for index, arg_type in enumerate(c.info.types):
        if not t.ordered(arg_type) or arg_type.kind == "picklist":
            return c.fail(
                index, f"{c.node.name}() compares numbers, texts or dates, not {arg_type}"
            )
    return unified(c, range(len(c.info.types)))


def _check_mod(c: CallCheck) -> RuleType:
    typed([NUMBER, Param("divisor", "number")], t.DECIMAL)(c)
    left, right = c.info.types
    return t.arithmetic_result("-", left, right) or t.ANY


def _digits_literal(info: CallInfo) -> str | None:
    if len(info.literals) > 1 and not isinstance(info.literals[1], int):
        return "round() in a list filter needs its number of digits written as a whole number"
    return None


# ---- SQL ----


def _sql_rounding(mode: str) -> Any:
    def build(s: SqlBuilder, a: list[SqlValue], info: CallInfo) -> SqlValue:
        digits = info.literals[1] if len(a) > 1 and info.literals[1] is not NOT_LITERAL else 0
        return s.round_to(a[0], digits, mode, info.result)

    return build


def _sql_abs(s: SqlBuilder, a: list[SqlValue], info: CallInfo) -> SqlValue:
    return SqlValue(sa.func.abs(s.expr(a[0])), info.result, a[0].scale, a[0].nullable)


def _sql_mod(s: SqlBuilder, a: list[SqlValue], info: CallInfo) -> SqlValue:
    left, right, scale = s.aligned(a[0], a[1])
    divisor = sa.func.nullif(right, 0)
    expr = (
        sa.type_coerce(left, sa.BigInteger()) % sa.type_coerce(divisor, sa.BigInteger())
        if s.sqlite
        else sa.func.mod(left, divisor)
    )
    return SqlValue(expr, info.result, scale)


def _sql_extreme(smaller: bool) -> Any:
    def build(s: SqlBuilder, a: list[SqlValue], info: CallInfo) -> SqlValue:
        current = a[0]
        for other in a[1:]:
            x, y, scale = s.aligned(current, other)
            pick = (x <= y) if smaller else (x >= y)
            expr = sa.case((sa.or_(x.is_(None), y.is_(None)), sa.null()), (pick, x), else_=y)
            current = SqlValue(expr, info.result, scale)
        return current

    return build


SPECS = [
    FunctionSpec(
        "round",
        "math",
        "round(number, digits) -> number",
        "rounded half away from zero; without digits, to a whole number",
        _check_round,
        strict(_round),
        _sql_rounding("round"),
        sql_check=_digits_literal,
        min_args=1,
        max_args=2,
        may_fail=True,
    ),
    FunctionSpec(
        "floor",
        "math",
        "floor(number) -> number",
        "the whole number at or below",
        typed([NUMBER], t.INTEGER),
        strict(_floor),
        _sql_rounding("floor"),
        min_args=1,
        max_args=1,
    ),
    FunctionSpec(
        "ceil",
        "math",
        "ceil(number) -> number",
        "the whole number at or above",
        typed([NUMBER], t.INTEGER),
        strict(_ceil),
        _sql_rounding("ceil"),
        min_args=1,
        max_args=1,
    ),
    FunctionSpec(
        "abs",
        "math",
        "abs(number) -> number",
        "without its sign",
        typed([NUMBER], first_numeric),
        strict(abs),
        _sql_abs,
        min_args=1,
        max_args=1,
    ),
    FunctionSpec(
        "min",
        "math",
        "min(a, b, ...) or min(children.field)",
        "the smallest value (null if any is null); over child rows: the smallest non-null value",
        _check_extreme,
        strict(_extreme(min)),
        _sql_extreme(True),
        min_args=1,
        max_args=None,
        special="rollup",
    ),
    FunctionSpec(
        "max",
        "math",
        "max(a, b, ...) or max(children.field)",
        "the largest value (null if any is null); over child rows: the largest non-null value",
        _check_extreme,
        strict(_extreme(max)),
        _sql_extreme(False),
        min_args=1,
        max_args=None,
        special="rollup",
    ),
    FunctionSpec(
        "mod",
        "math",
        "mod(number, divisor) -> number",
        "the remainder, with the sign of `number`",
        _check_mod,
        strict(_mod),
        _sql_mod,
        min_args=2,
        max_args=2,
        may_fail=True,
    ),
    FunctionSpec(
        "power",
        "math",
        "power(number, exponent) -> number",
        "`number` to the power `exponent`",
        typed([NUMBER, Param("exponent", "number")], t.DECIMAL),
        strict(_power),
        None,
        "powers are computed exactly only in the application",
        min_args=2,
        max_args=2,
        may_fail=True,
    ),
    FunctionSpec(
        "sqrt",
        "math",
        "sqrt(number) -> number",
        "the square root",
        typed([NUMBER], t.DECIMAL),
        strict(_sqrt),
        None,
        "roots are computed exactly only in the application",
        min_args=1,
        max_args=1,
        may_fail=True,
    ),
    FunctionSpec(
        "exp",
        "math",
        "exp(number) -> number",
        "e to the power `number`",
        typed([NUMBER], t.DECIMAL),
        strict(_exp),
        None,
        "exponentials are computed only in the application",
        min_args=1,
        max_args=1,
        may_fail=True,
    ),
    FunctionSpec(
        "ln",
        "math",
        "ln(number) -> number",
        "the natural logarithm",
        typed([NUMBER], t.DECIMAL),
        strict(_ln),
        None,
        "logarithms are computed only in the application",
        min_args=1,
        max_args=1,
        may_fail=True,
    ),
]
