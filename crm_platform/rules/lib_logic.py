"""Logic functions: if, case, coalesce, isblank. They evaluate only the arguments they need."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from crm_platform.rules import runtime as rt
from crm_platform.rules import types as t
from crm_platform.rules.context import EvalContext
from crm_platform.rules.function_spec import (
    NOT_LITERAL,
    CallCheck,
    CallInfo,
    Closure,
    FunctionSpec,
    unified,
)
from crm_platform.rules.sql_values import SqlBuilder, SqlValue
from crm_platform.rules.types import RuleType


def _nothing(c: EvalContext) -> Any:
    return None


def branches(s: SqlBuilder, values: list[SqlValue], result: RuleType) -> tuple[list[Any], int]:
    """The SQL expressions of branch results, on one scale (SQLite numbers)."""
    if result.numeric and s.sqlite:
        scale = max((v.scale for v in values), default=0)
        return [
            s.rescaled(v, scale) if not (v.constant and v.literal is None) else sa.null()
            for v in values
        ], scale
    like = next((v.expr for v in values if not v.constant), None)
    return [s.expr(v, like) for v in values], 0


# ---- if ----


def _check_if(c: CallCheck) -> RuleType:
    condition = c.info.types[0]
    if not (condition.vague or condition.kind == "boolean"):
        return c.fail(
            0, f"the first argument of if() must be a condition (true/false), not {condition}"
        )
    return unified(c, range(1, len(c.info.types)))


def _python_if(args: list[Closure], info: CallInfo) -> Closure:
    test, then = args[0], args[1]
    otherwise = args[2] if len(args) > 2 else _nothing
    return lambda c: then(c) if test(c) is True else otherwise(c)


def _sql_if(s: SqlBuilder, args: list[SqlValue], info: CallInfo) -> SqlValue:
    results = args[1:] if len(args) > 2 else [args[1], s.const(None, t.NULL)]
    exprs, scale = branches(s, results, info.result)
    return SqlValue(sa.case((s.condition(args[0]), exprs[0]), else_=exprs[1]), info.result, scale)


# ---- case ----


def _check_case(c: CallCheck) -> RuleType:
    types = c.info.types
    subject = types[0]
    if len(types) < 3:
        return c.fail(
            None, "case() needs a value, then pairs of (match, result), then optionally a default"
        )
    pairs = (len(types) - 1) // 2
    for index in range(1, 1 + 2 * pairs, 2):
        if not t.comparable(subject, types[index]):
            c.fail(index, f"case() compares {subject} with {types[index]}")
        elif subject.kind == "picklist":
            c.check_value(subject, c.node.args[index])
    results = [i for i in range(2, 1 + 2 * pairs, 2)]
    if (len(types) - 1) % 2 == 1:
        results.append(len(types) - 1)
    return unified(c, results)


def _python_case(args: list[Closure], info: CallInfo) -> Closure:
    subject = args[0]
    pairs = [(args[i], args[i + 1]) for i in range(1, len(args) - 1, 2)]
    otherwise = args[-1] if (len(args) - 1) % 2 == 1 else _nothing
    constants = all(info.literals[i] is not NOT_LITERAL for i in range(1, len(args) - 1, 2))
    if constants:
        table: dict[Any, Closure] = {}
        for i in range(1, len(args) - 1, 2):
            table.setdefault(info.literals[i], args[i + 1])

        def fast(c: EvalContext) -> Any:
            return table.get(subject(c), otherwise)(c)

        return fast

    def run(c: EvalContext) -> Any:
        value = subject(c)
        for match, result in pairs:
            if rt.equal(value, match(c)):
                return result(c)
        return otherwise(c)

    return run


def _sql_case(s: SqlBuilder, args: list[SqlValue], info: CallInfo) -> SqlValue:
    subject = args[0]
    matches = [args[i] for i in range(1, len(args) - 1, 2)]
    results = [args[i] for i in range(2, len(args), 2)]
    has_default = (len(args) - 1) % 2 == 1
    default = args[-1] if has_default else s.const(None, t.NULL)
    exprs, scale = branches(s, [*results, default], info.result)
    whens = [
        (s.condition(s.compare("=", subject, m)), e)
        for m, e in zip(matches, exprs[:-1], strict=True)
    ]
    return SqlValue(sa.case(*whens, else_=exprs[-1]), info.result, scale)


# ---- coalesce, isblank ----


def _check_coalesce(c: CallCheck) -> RuleType:
    return unified(c, range(len(c.info.types)))


def _python_coalesce(args: list[Closure], info: CallInfo) -> Closure:
    def run(c: EvalContext) -> Any:
        for arg in args:
            value = arg(c)
            if value is not None:
                return value
        return None

    return run


def _sql_coalesce(s: SqlBuilder, args: list[SqlValue], info: CallInfo) -> SqlValue:
    exprs, scale = branches(s, args, info.result)
    return SqlValue(sa.func.coalesce(*exprs), info.result, scale, all(a.nullable for a in args))


def _python_isblank(args: list[Closure], info: CallInfo) -> Closure:
    (arg,) = args
    return lambda c: rt.is_blank(arg(c))


def _sql_isblank(s: SqlBuilder, args: list[SqlValue], info: CallInfo) -> SqlValue:
    return s.boolean(s.expr(args[0]).is_(None))


SPECS = [
    FunctionSpec(
        "if",
        "logic",
        "if(condition, then, else)",
        "`then` when the condition is true, else `else` (null when left out)",
        _check_if,
        _python_if,
        _sql_if,
        min_args=2,
        max_args=3,
        lazy=True,
    ),
    FunctionSpec(
        "case",
        "logic",
        "case(value, match1, result1, ..., default)",
        "the result paired with the first match equal to `value`, else the default (or null)",
        _check_case,
        _python_case,
        _sql_case,
        min_args=3,
        max_args=None,
        lazy=True,
    ),
    FunctionSpec(
        "coalesce",
        "logic",
        "coalesce(a, b, ...)",
        "the first argument that is not null",
        _check_coalesce,
        _python_coalesce,
        _sql_coalesce,
        min_args=2,
        max_args=None,
        lazy=True,
    ),
    FunctionSpec(
        "isblank",
        "logic",
        "isblank(value)",
        "true when the value is null (empty text, no selection)",
        lambda c: t.BOOLEAN,
        _python_isblank,
        _sql_isblank,
        min_args=1,
        max_args=1,
    ),
]
