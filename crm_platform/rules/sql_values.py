"""SQL forms of values: exact numbers on both databases, null-safe comparisons, text and dates.

On SQLite decimals are stored as integers scaled by 10**scale (see the engine's ExactDecimal),
so a numeric SqlValue there carries its `scale` and arithmetic stays in exact integers; on
PostgreSQL numbers are NUMERIC and `scale` is 0. Every comparison gives a two-valued boolean
(never SQL NULL), so `not`, `and` and `or` behave as in Python.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from crm_platform.rules import types as t
from crm_platform.rules.context import SqlContext
from crm_platform.rules.function_spec import NOT_LITERAL
from crm_platform.rules.types import RuleType

Expr = ColumnElement[Any]
DIVISION_SCALE = 8  # decimal places of a quotient computed on SQLite (truncated)
TRIM_CHARS = " \t\r\n"


@dataclass(frozen=True)
class SqlValue:
    """An SQL expression with its language type. `literal` holds the Python value of a constant
    (bound only when the other side of an operation is known, so it gets that side's type)."""

    expr: Expr | None
    type: RuleType
    scale: int = 0
    nullable: bool = True
    literal: Any = NOT_LITERAL

    @property
    def constant(self) -> bool:
        return self.literal is not NOT_LITERAL


def decimal_places(value: Any) -> int:
    if isinstance(value, Decimal):
        exponent = value.as_tuple().exponent
        return max(0, -exponent) if isinstance(exponent, int) else 0
    return 0


def integer_division(dividend: Any, divisor: Any) -> Expr:
    """SQLite's integer division (truncating toward zero), never SQLAlchemy's true division."""
    return sa.type_coerce(dividend, sa.BigInteger()) // sa.type_coerce(divisor, sa.BigInteger())


class SqlBuilder:
    """Dialect-aware pieces of SQL, used by the filter compiler and the function library."""

    def __init__(self, dialect: str, context: SqlContext) -> None:
        self.dialect = dialect
        self.sqlite = dialect == "sqlite"
        self.context = context

    # ---- binding ----

    def const(self, value: Any, rule_type: RuleType) -> SqlValue:
        return SqlValue(
            None, rule_type, decimal_places(value) if self.sqlite else 0, value is None, value
        )

    def expr(self, value: SqlValue, like: Expr | None = None) -> Expr:
        """The SQL expression of `value`; a constant is bound with the type of `like`."""
        if not value.constant:
            assert value.expr is not None
            return value.expr
        literal = value.literal
        if literal is None:
            return sa.null()
        if value.type.numeric:
            return self._number(literal, value.scale)
        if like is not None and not isinstance(literal, (bool, list)):
            return sa.literal(literal, type_=like.type)
        if isinstance(literal, bool):
            return sa.true() if literal else sa.false()
        if isinstance(literal, dt.datetime):
            return sa.literal(
                literal.astimezone(dt.UTC).replace(tzinfo=None) if self.sqlite else literal,
                sa.DateTime(timezone=not self.sqlite),
            )
        if isinstance(literal, dt.date):
            return sa.literal(literal, sa.Date())
        if isinstance(literal, int):
            return sa.literal(literal, sa.BigInteger())
        return sa.literal(literal, sa.Text())

    def _number(self, value: Any, scale: int) -> Expr:
        if self.sqlite:
            return sa.literal(int(Decimal(value).scaleb(scale)), sa.BigInteger())
        if isinstance(value, int):
            return sa.literal(value, sa.BigInteger())
        return sa.literal(value, sa.Numeric())

    # ---- numbers ----

    def rescaled(self, value: SqlValue, scale: int) -> Expr:
        """`value` as an integer expression at `scale` (SQLite; scale >= value.scale)."""
        if value.constant:
            return self._number(value.literal, scale)
        factor = 10 ** (scale - value.scale)
        expr = self.expr(value)
        return expr if factor == 1 else expr * factor

    def aligned(self, left: SqlValue, right: SqlValue) -> tuple[Expr, Expr, int]:
        if not (left.type.numeric and right.type.numeric):
            left_expr = self.expr(left, None if right.constant else self.expr(right))
            right_expr = self.expr(right, None if left.constant else left_expr)
            return left_expr, right_expr, 0
        if not self.sqlite:
            return self.expr(left), self.expr(right), 0
        scale = max(left.scale, right.scale)
        return self.rescaled(left, scale), self.rescaled(right, scale), scale

    def arithmetic(self, op: str, left: SqlValue, right: SqlValue, result: RuleType) -> SqlValue:
        nullable = left.nullable or right.nullable
        if op in "+-":
            a, b, scale = self.aligned(left, right)
            return SqlValue(a + b if op == "+" else a - b, result, scale, nullable)
        a, b = self.expr(left), self.expr(right)
        if op == "*":
            return SqlValue(a * b, result, left.scale + right.scale if self.sqlite else 0, nullable)
        divisor = sa.func.nullif(b, 0)
        if self.sqlite:
            scale = max(DIVISION_SCALE, left.scale)
            return SqlValue(
                integer_division(self.rescaled(left, scale + right.scale), divisor),
                result,
                scale,
                True,
            )
        return SqlValue(sa.cast(a, sa.Numeric()) / divisor, result, 0, True)

    def negative(self, value: SqlValue) -> SqlValue:
        return SqlValue(-self.expr(value), value.type, value.scale, value.nullable)

    def round_to(self, value: SqlValue, digits: int, mode: str, result: RuleType) -> SqlValue:
        """Round half away from zero ("round"), down ("floor") or up ("ceil") to `digits` places."""
        expr = self.expr(value)
        if not self.sqlite:
            exact = sa.cast(expr, sa.Numeric())  # never PostgreSQL's double precision variants
            if mode == "round":
                return SqlValue(sa.func.round(exact, digits), result, 0, value.nullable)
            return SqlValue(getattr(sa.func, mode)(exact), result, 0, value.nullable)
        drop = value.scale - digits
        if drop <= 0:
            return replace(value, type=result)
        p = 10**drop
        div = integer_division
        if mode == "round":
            half = 5 * 10 ** (drop - 1)
            up, down = div(expr + half, p), -div(-expr + half, p)
        elif mode == "floor":
            up, down = div(expr, p), -div(-expr + (p - 1), p)
        else:
            up, down = div(expr + (p - 1), p), -div(-expr, p)
        return SqlValue(sa.case((expr >= 0, up), else_=down), result, digits, value.nullable)

    # ---- conditions ----

    def condition(self, value: SqlValue) -> Expr:
        """A two-valued condition: a null boolean counts as false."""
        if value.constant:
            return sa.true() if value.literal is True else sa.false()
        expr = self.expr(value)
        return expr.is_(sa.true()) if value.nullable else expr

    def compare(self, op: str, left: SqlValue, right: SqlValue) -> SqlValue:
        if left.constant and left.literal is None:
            left, right = right, left
        if right.constant and right.literal is None:
            expr = self.expr(left)
            if op in ("=", "!="):
                return self.boolean(expr.is_(None) if op == "=" else expr.is_not(None))
            return self.boolean(sa.false())
        a, b, _scale = self.aligned(left, right)
        if left.type.textual and right.type.textual and op not in ("=", "!=") and not self.sqlite:
            a, b = a.collate("C"), b.collate("C")
        guards = [e.is_not(None) for e, v in ((a, left), (b, right)) if v.nullable]
        if op == "=":
            if len(guards) == 2:
                return self.boolean(a.is_not_distinct_from(b))
            return self.boolean(sa.and_(*guards, a == b))
        if op == "!=":
            if len(guards) == 2:
                return self.boolean(a.is_distinct_from(b))
            nulls = [e.is_(None) for e, v in ((a, left), (b, right)) if v.nullable]
            return self.boolean(sa.or_(*nulls, a != b))
        test = {"<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]
        return self.boolean(sa.and_(*guards, test))

    def boolean(self, expr: Expr, nullable: bool = False) -> SqlValue:
        return SqlValue(expr, t.BOOLEAN, 0, nullable)

    def never_null(self, expr: Expr) -> SqlValue:
        """A boolean that may be SQL NULL, made two-valued (null -> false)."""
        return self.boolean(sa.func.coalesce(expr, sa.false()))

    # ---- text ----

    def text(self, expr: Expr, nullable: bool = True) -> SqlValue:
        """A text result; empty text becomes null."""
        return SqlValue(sa.func.nullif(expr, ""), t.TEXT, 0, nullable)

    def length(self, expr: Expr) -> Expr:
        return sa.func.length(expr) if self.sqlite else sa.func.char_length(expr)

    def position(self, haystack: Expr, needle: Expr) -> Expr:
        """1-based position of `needle` in `haystack`, 0 when absent."""
        return sa.func.instr(haystack, needle) if self.sqlite else sa.func.strpos(haystack, needle)

    def trim(self, expr: Expr) -> Expr:
        chars = sa.literal(TRIM_CHARS, sa.Text())
        return sa.func.trim(expr, chars) if self.sqlite else sa.func.btrim(expr, chars)

    def at_least(self, expr: Expr, floor: int) -> Expr:
        """max(expr, floor), as a 4-byte integer on PostgreSQL (its text functions want int)."""
        return (
            sa.func.max(expr, floor)
            if self.sqlite
            else sa.func.greatest(sa.cast(expr, sa.Integer()), floor)
        )

    def right(self, expr: Expr, count: Expr) -> Expr:
        if self.sqlite:
            return sa.case((count > 0, sa.func.substr(expr, -count)), else_=sa.null())
        return sa.func.right(expr, self.at_least(count, 0))

    # ---- dates ----

    def utc(self, expr: Expr, rule_type: RuleType) -> Expr:
        if rule_type.kind == "datetime" and not self.sqlite:
            return sa.func.timezone("UTC", expr)
        return expr

    def as_date(self, expr: Expr, rule_type: RuleType) -> Expr:
        if rule_type.kind == "date":
            return expr
        if self.sqlite:
            return sa.type_coerce(sa.func.date(expr), sa.Date())
        return sa.cast(self.utc(expr, rule_type), sa.Date())

    def date_part(self, expr: Expr, rule_type: RuleType, part: str) -> Expr:
        """year, month, day or weekday (1 = Monday ... 7 = Sunday) as an integer."""
        if self.sqlite:
            if part == "weekday":
                return (sa.cast(sa.func.strftime("%w", expr), sa.Integer()) + 6) % 7 + 1
            code = {"year": "%Y", "month": "%m", "day": "%d"}[part]
            return sa.cast(sa.func.strftime(code, expr), sa.Integer())
        field = "isodow" if part == "weekday" else part
        return sa.cast(sa.extract(field, self.utc(expr, rule_type)), sa.Integer())

    def add_days(self, date_expr: Expr, days: Expr) -> Expr:
        if self.sqlite:
            return sa.type_coerce(
                sa.func.date(date_expr, sa.func.printf("%+d days", days)), sa.Date()
            )
        return sa.type_coerce(date_expr + sa.cast(days, sa.Integer()), sa.Date())

    def days_between(
        self, start: Expr, start_type: RuleType, end: Expr, end_type: RuleType
    ) -> Expr:
        a, b = self.as_date(start, start_type), self.as_date(end, end_type)
        if self.sqlite:
            return sa.cast(sa.func.julianday(b) - sa.func.julianday(a), sa.Integer())
        return b - a
