"""Text functions, the multi-picklist test `includes`, and the conversions text/value/is_number.

Positions are 1-based. A text function given null gives null (len gives 0; the tests
contains, startswith, matches and includes give false). An empty result is null.
"""

from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa

from crm_platform.rules import runtime as rt
from crm_platform.rules import types as t
from crm_platform.rules.function_spec import (
    NOT_LITERAL,
    CallCheck,
    CallInfo,
    FunctionSpec,
    Param,
    plain,
    strict,
    typed,
)
from crm_platform.rules.regex_safety import compile_pattern
from crm_platform.rules.sql_values import SqlBuilder, SqlValue
from crm_platform.rules.types import RuleType

MAX_MATCH_INPUT = 10_000  # longer texts never match a pattern

TEXT = Param("text", "text")


def _all_text(info: CallInfo) -> str | None:
    if all(x.textual or x.vague for x in info.types):
        return None
    name = info.spec.name
    return f"{name}() in a list filter takes text only; convert the other values first"


def _left(value: str, count: int) -> str | None:
    return rt.text_or_null(value[: max(count, 0)])


def _right(value: str, count: int) -> str | None:
    return rt.text_or_null(value[-count:] if count > 0 else "")


def _mid(value: str, start: int, count: int) -> str | None:
    begin = max(start, 1) - 1
    return rt.text_or_null(value[begin : begin + max(count, 0)])


def _replace(value: Any, old: Any, new: Any) -> str | None:
    if value is None or old is None:
        return None
    return rt.text_or_null(value.replace(old, new or ""))


def _contains(value: Any, part: Any) -> bool:
    return value is not None and part is not None and part in value


def _startswith(value: Any, prefix: Any) -> bool:
    return value is not None and prefix is not None and value.startswith(prefix)


def _concat(*values: Any) -> str | None:
    return rt.text_or_null("".join(rt.to_text(v) or "" for v in values))


def _includes(values: Any, value: Any) -> bool:
    return value is not None and bool(values) and value in values


# ---- checks with more than a signature ----


def _check_matches(c: CallCheck) -> RuleType:
    result = typed([TEXT, Param("pattern", "text")], t.BOOLEAN)(c)
    pattern = c.info.literals[1]
    if pattern is NOT_LITERAL:
        return c.fail(1, "the pattern of matches() must be written as a text in quotes")
    if pattern is None:
        return c.fail(1, "the pattern of matches() is empty")
    compiled, problem = compile_pattern(pattern)
    if problem:
        return c.fail(1, problem)
    c.info.extra = compiled
    return result


def _check_includes(c: CallCheck) -> RuleType:
    result = typed([Param("field", "multi"), Param("value", "text")], t.BOOLEAN)(c)
    if c.info.types[0].kind == "multi_picklist":
        c.check_value(c.info.types[0], c.node.args[1])
    return result


# ---- Python forms with extra data ----


def _python_matches(args: list[Any], info: CallInfo) -> Any:
    value = args[0]
    pattern: re.Pattern[str] = info.extra

    def run(c: Any) -> bool:
        text = value(c)
        if text is None or len(text) > MAX_MATCH_INPUT:
            return False
        return pattern.fullmatch(text) is not None

    return run


# ---- SQL forms ----


def _sql_len(s: SqlBuilder, a: list[SqlValue], info: CallInfo) -> SqlValue:
    return SqlValue(sa.func.coalesce(s.length(s.expr(a[0])), 0), t.INTEGER, 0, False)


def _sql_case_fn(name: str) -> Any:
    def build(s: SqlBuilder, a: list[SqlValue], info: CallInfo) -> SqlValue:
        return s.text(getattr(sa.func, name)(s.expr(a[0])))

    return build


def _sql_trim(s: SqlBuilder, a: list[SqlValue], info: CallInfo) -> SqlValue:
    return s.text(s.trim(s.expr(a[0])))


def _sql_left(s: SqlBuilder, a: list[SqlValue], info: CallInfo) -> SqlValue:
    return s.text(sa.func.substr(s.expr(a[0]), 1, s.at_least(s.expr(a[1]), 0)))


def _sql_right(s: SqlBuilder, a: list[SqlValue], info: CallInfo) -> SqlValue:
    return s.text(s.right(s.expr(a[0]), s.expr(a[1])))


def _sql_mid(s: SqlBuilder, a: list[SqlValue], info: CallInfo) -> SqlValue:
    return s.text(
        sa.func.substr(s.expr(a[0]), s.at_least(s.expr(a[1]), 1), s.at_least(s.expr(a[2]), 0))
    )


def _sql_find(s: SqlBuilder, a: list[SqlValue], info: CallInfo) -> SqlValue:
    return SqlValue(s.position(s.expr(a[1]), s.expr(a[0])), t.INTEGER, 0, True)


def _sql_replace(s: SqlBuilder, a: list[SqlValue], info: CallInfo) -> SqlValue:
    new = sa.func.coalesce(s.expr(a[2]), "")
    return s.text(sa.func.replace(s.expr(a[0]), s.expr(a[1]), new))


def _sql_contains(s: SqlBuilder, a: list[SqlValue], info: CallInfo) -> SqlValue:
    return s.never_null(s.position(s.expr(a[0]), s.expr(a[1])) > 0)


def _sql_startswith(s: SqlBuilder, a: list[SqlValue], info: CallInfo) -> SqlValue:
    value, prefix = s.expr(a[0]), s.expr(a[1])
    return s.never_null(sa.func.substr(value, 1, s.length(prefix)) == prefix)


def _sql_concat(s: SqlBuilder, a: list[SqlValue], info: CallInfo) -> SqlValue:
    parts = [sa.func.coalesce(s.expr(v), sa.literal("", sa.Text())) for v in a]
    joined: Any = parts[0]
    for part in parts[1:]:
        joined = joined.concat(part)
    return s.text(joined)


def sql_includes(s: SqlBuilder, values: SqlValue, value: SqlValue) -> SqlValue:
    """Is `value` one of the multi-picklist's values? (stored as ';a;b;')"""
    if value.constant:
        needle: Any = sa.literal(f";{value.literal};", sa.Text())
    else:
        needle = sa.literal(";", sa.Text()).concat(s.expr(value)).concat(";")
    return s.never_null(s.position(sa.type_coerce(s.expr(values), sa.Text()), needle) > 0)


def _sql_includes(s: SqlBuilder, a: list[SqlValue], info: CallInfo) -> SqlValue:
    return sql_includes(s, a[0], a[1])


SPECS = [
    FunctionSpec(
        "len",
        "text",
        "len(text) -> number",
        "number of characters (0 for null)",
        typed([TEXT], t.INTEGER),
        plain(lambda v: len(v) if v else 0),
        _sql_len,
        min_args=1,
        max_args=1,
    ),
    FunctionSpec(
        "upper",
        "text",
        "upper(text) -> text",
        "in capitals",
        typed([TEXT], t.TEXT),
        strict(str.upper),
        _sql_case_fn("upper"),
        min_args=1,
        max_args=1,
    ),
    FunctionSpec(
        "lower",
        "text",
        "lower(text) -> text",
        "in small letters",
        typed([TEXT], t.TEXT),
        strict(str.lower),
        _sql_case_fn("lower"),
        min_args=1,
        max_args=1,
    ),
    FunctionSpec(
        "trim",
        "text",
        "trim(text) -> text",
        "without leading and trailing spaces, tabs and line breaks",
        typed([TEXT], t.TEXT),
        strict(lambda v: rt.text_or_null(v.strip(" \t\r\n"))),
        _sql_trim,
        min_args=1,
        max_args=1,
    ),
    FunctionSpec(
        "concat",
        "text",
        "concat(a, b, ...) -> text",
        "the values joined as text (null counts as empty)",
        typed([Param("value", "scalar")], t.TEXT, variadic=True),
        plain(_concat),
        _sql_concat,
        sql_check=_all_text,
        min_args=1,
        max_args=None,
    ),
    FunctionSpec(
        "left",
        "text",
        "left(text, count) -> text",
        "the first `count` characters",
        typed([TEXT, Param("count", "integer")], t.TEXT),
        strict(_left),
        _sql_left,
        min_args=2,
        max_args=2,
    ),
    FunctionSpec(
        "right",
        "text",
        "right(text, count) -> text",
        "the last `count` characters",
        typed([TEXT, Param("count", "integer")], t.TEXT),
        strict(_right),
        _sql_right,
        min_args=2,
        max_args=2,
    ),
    FunctionSpec(
        "mid",
        "text",
        "mid(text, start, count) -> text",
        "`count` characters from position `start` (1 = first)",
        typed([TEXT, Param("start", "integer"), Param("count", "integer")], t.TEXT),
        strict(_mid),
        _sql_mid,
        min_args=3,
        max_args=3,
    ),
    FunctionSpec(
        "find",
        "text",
        "find(search, text) -> number",
        "position of `search` in `text` (1 = first), 0 if absent",
        typed([Param("search", "text"), TEXT], t.INTEGER),
        strict(lambda n, h: h.find(n) + 1),
        _sql_find,
        min_args=2,
        max_args=2,
    ),
    FunctionSpec(
        "replace",
        "text",
        "replace(text, old, new) -> text",
        "every `old` replaced by `new`",
        typed([TEXT, Param("old", "text"), Param("new", "text")], t.TEXT),
        plain(_replace),
        _sql_replace,
        min_args=3,
        max_args=3,
    ),
    FunctionSpec(
        "contains",
        "text",
        "contains(text, part) -> boolean",
        "true when `part` occurs in `text` (case matters)",
        typed([TEXT, Param("part", "text")], t.BOOLEAN),
        plain(_contains),
        _sql_contains,
        min_args=2,
        max_args=2,
    ),
    FunctionSpec(
        "startswith",
        "text",
        "startswith(text, prefix) -> boolean",
        "true when `text` begins with `prefix`",
        typed([TEXT, Param("prefix", "text")], t.BOOLEAN),
        plain(_startswith),
        _sql_startswith,
        min_args=2,
        max_args=2,
    ),
    FunctionSpec(
        "matches",
        "text",
        'matches(text, "pattern") -> boolean',
        "true when the whole text matches the regular expression "
        "(a quoted pattern of at most 200 characters)",
        _check_matches,
        _python_matches,
        None,
        "regular expressions cannot run in the database",
        min_args=2,
        max_args=2,
    ),
    FunctionSpec(
        "includes",
        "multi-picklist",
        "includes(field, value) -> boolean",
        "true when the multi-picklist has `value` selected",
        _check_includes,
        plain(_includes),
        _sql_includes,
        min_args=2,
        max_args=2,
    ),
    FunctionSpec(
        "text",
        "conversion",
        "text(value) -> text",
        "the value as text (dates as YYYY-MM-DD, true/false)",
        typed([Param("value", "any")], t.TEXT),
        plain(rt.to_text),
        None,
        "numbers and dates are written differently by each database",
        min_args=1,
        max_args=1,
    ),
    FunctionSpec(
        "value",
        "conversion",
        "value(text) -> number",
        "the number written in the text, or null",
        typed([TEXT], t.DECIMAL),
        plain(rt.to_number),
        None,
        "the database cannot read numbers from text safely",
        min_args=1,
        max_args=1,
    ),
    FunctionSpec(
        "is_number",
        "conversion",
        "is_number(text) -> boolean",
        "true when the text is a number",
        typed([TEXT], t.BOOLEAN),
        plain(lambda v: rt.to_number(v) is not None),
        None,
        "the database cannot read numbers from text safely",
        min_args=1,
        max_args=1,
    ),
]
