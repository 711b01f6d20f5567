"""Date functions. Datetimes are UTC; year(), days_between() ... read a datetime's UTC date.
today() and now() come from the evaluation context's clock (in filters: read once per query)."""

from __future__ import annotations

import calendar
import datetime as dt
from typing import Any

from crm_platform.rules import runtime as rt
from crm_platform.rules import types as t
from crm_platform.rules.function_spec import (
    CallCheck,
    CallInfo,
    Closure,
    FunctionSpec,
    Param,
    strict,
    typed,
)
from crm_platform.rules.runtime import EvaluationFailure
from crm_platform.rules.sql_values import SqlBuilder, SqlValue
from crm_platform.rules.types import RuleType

WHEN = Param("date", "temporal")
DAYS = Param("days", "integer")


def _date_of(*args: Any) -> dt.date | None:
    if len(args) == 3:
        try:
            return dt.date(*args)
        except (ValueError, OverflowError):
            return None
    value = args[0]
    if isinstance(value, dt.datetime):
        return rt.as_date(value)
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError:
        return None


def _add_days(value: Any, days: int) -> Any:
    try:
        return value + dt.timedelta(days=days)
    except OverflowError:
        raise EvaluationFailure("the date is out of range (years 1 to 9999)") from None


def _add_months(value: Any, months: int) -> Any:
    index = value.year * 12 + value.month - 1 + months
    year, month = divmod(index, 12)
    if not 1 <= year <= 9999:
        raise EvaluationFailure("the date is out of range (years 1 to 9999)")
    day = min(value.day, calendar.monthrange(year, month + 1)[1])
    return value.replace(year=year, month=month + 1, day=day)


def _part(name: str) -> Any:
    def get(value: Any) -> int:
        date = rt.as_date(value)
        return date.isoweekday() if name == "weekday" else int(getattr(date, name))

    return get


# ---- checks ----


def _check_date(c: CallCheck) -> RuleType:
    types = c.info.types
    if len(types) == 3:
        return typed(
            [Param("year", "integer"), Param("month", "integer"), Param("day", "integer")], t.DATE
        )(c)
    if len(types) == 1 and (
        types[0].vague or types[0].textual or types[0].kind in ("date", "datetime")
    ):
        return t.DATE
    if len(types) == 1:
        return c.fail(
            0, f"date() reads a date from text or from a date and time, not from {types[0]}"
        )
    return c.fail(
        None, 'date() takes a text ("2026-01-31"), a date and time, or year, month and day'
    )


def _check_shift(c: CallCheck) -> RuleType:
    result = typed([WHEN, DAYS], lambda types: types[0])(c)
    return t.DATE if result.kind == "null" else result


def _date_sql_check(info: CallInfo) -> str | None:
    if len(info.types) == 1 and info.types[0].kind in ("date", "datetime"):
        return None
    return "date() in a list filter must take a date and time, or only constant values"


def _add_days_sql_check(info: CallInfo) -> str | None:
    if info.types[0].kind == "datetime":
        return (
            "add_days() on a date and time cannot run in a list filter; "
            "compare its date: add_days(date(x), n)"
        )
    return None


def _python_days_between(args: list[Closure], info: CallInfo) -> Closure:
    if any(x.kind != "date" for x in info.types):
        return strict(rt.days_between)(args, info)
    start, end = args

    def dates(c: Any) -> int | None:  # the common case, without conversions
        a, b = start(c), end(c)
        return None if a is None or b is None else (b - a).days

    return dates


# ---- Python forms reading the context ----


def _python_today(args: list[Closure], info: CallInfo) -> Closure:
    return lambda c: c.current_date()


def _python_now(args: list[Closure], info: CallInfo) -> Closure:
    return lambda c: c.clock()


# ---- SQL ----


def _sql_date(s: SqlBuilder, a: list[SqlValue], info: CallInfo) -> SqlValue:
    return SqlValue(s.as_date(s.expr(a[0]), a[0].type), t.DATE, 0, a[0].nullable)


def _sql_add_days(s: SqlBuilder, a: list[SqlValue], info: CallInfo) -> SqlValue:
    return SqlValue(s.add_days(s.expr(a[0]), s.expr(a[1])), t.DATE, 0, True)


def _sql_days_between(s: SqlBuilder, a: list[SqlValue], info: CallInfo) -> SqlValue:
    expr = s.days_between(s.expr(a[0]), a[0].type, s.expr(a[1]), a[1].type)
    return SqlValue(expr, t.INTEGER, 0, True)


def _sql_part(name: str) -> Any:
    def build(s: SqlBuilder, a: list[SqlValue], info: CallInfo) -> SqlValue:
        return SqlValue(s.date_part(s.expr(a[0]), a[0].type, name), t.INTEGER, 0, a[0].nullable)

    return build


def _part_spec(name: str, summary: str) -> FunctionSpec:
    return FunctionSpec(
        name,
        "date",
        f"{name}(date) -> number",
        summary,
        typed([WHEN], t.INTEGER),
        strict(_part(name)),
        _sql_part(name),
        min_args=1,
        max_args=1,
    )


SPECS = [
    FunctionSpec(
        "today",
        "date",
        "today() -> date",
        "the current date",
        lambda c: t.DATE,
        _python_today,
        None,
        "today() is read once per query",
        min_args=0,
        max_args=0,
    ),
    FunctionSpec(
        "now",
        "date",
        "now() -> datetime",
        "the current date and time (UTC)",
        lambda c: t.DATETIME,
        _python_now,
        None,
        "now() is read once per query",
        min_args=0,
        max_args=0,
    ),
    FunctionSpec(
        "date",
        "date",
        'date("2026-01-31") | date(datetime) | date(year, month, day) -> date',
        "a date from text, from a date and time (its UTC date), or from its parts; null if invalid",
        _check_date,
        strict(_date_of),
        _sql_date,
        sql_check=_date_sql_check,
        min_args=1,
        max_args=3,
    ),
    FunctionSpec(
        "add_days",
        "date",
        "add_days(date, days) -> date",
        "the date `days` later (earlier if negative)",
        _check_shift,
        strict(_add_days),
        _sql_add_days,
        sql_check=_add_days_sql_check,
        min_args=2,
        max_args=2,
        may_fail=True,
    ),
    FunctionSpec(
        "add_months",
        "date",
        "add_months(date, months) -> date",
        "the same day `months` later, or the month's last day (Jan 31 + 1 month = Feb 28/29)",
        _check_shift,
        strict(_add_months),
        None,
        "month arithmetic is done in the application",
        min_args=2,
        max_args=2,
        may_fail=True,
    ),
    FunctionSpec(
        "days_between",
        "date",
        "days_between(start, end) -> number",
        "whole days from `start` to `end` (negative if `end` is earlier)",
        typed([Param("start", "temporal"), Param("end", "temporal")], t.INTEGER),
        _python_days_between,
        _sql_days_between,
        min_args=2,
        max_args=2,
    ),
    _part_spec("year", "the year"),
    _part_spec("month", "the month, 1 to 12"),
    _part_spec("day", "the day of the month"),
    _part_spec("weekday", "the day of the week: 1 = Monday ... 7 = Sunday"),
]
