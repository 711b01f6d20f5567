"""Values at run time: exact decimal arithmetic, null semantics, conversions.

Shared by the Python compiler and the function library. Numbers are int or Decimal, never
float. Null is None; there is no empty text (an empty result is null).
"""

from __future__ import annotations

import datetime as dt
import decimal
from decimal import Decimal
from typing import Any

# Exact enough for NUMERIC(38): operations never round a stored value; errors trap.
CONTEXT = decimal.Context(
    prec=38,
    rounding=decimal.ROUND_HALF_EVEN,
    Emax=99999,
    Emin=-99999,
    traps=[decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow],
)
HUNDRED = Decimal(100)


class EvaluationFailure(Exception):
    """A rule cannot be computed for this record (division by zero, ...); becomes a RuleError."""


def is_blank(value: Any) -> bool:
    return value is None or value == "" or value == []


def truth(value: Any) -> bool:
    """Two-valued logic: only true is true (null counts as false)."""
    return value is True


def text_or_null(value: str | None) -> str | None:
    """There is no empty text in the language: "" is null."""
    return value if value else None


# ---- stored values <-> language values ----


def percent_from_stored(value: Any) -> Decimal | None:
    """A stored percent (12.5 meaning 12.5 %) as the fraction 0.125."""
    if value is None:
        return None
    return (value if isinstance(value, Decimal) else Decimal(value)).scaleb(-2)


def percent_to_stored(value: Any) -> Decimal | None:
    """The fraction 0.125 as the stored percent 12.5."""
    if value is None:
        return None
    return (value if isinstance(value, Decimal) else Decimal(value)).scaleb(2)


# ---- arithmetic ----


def add(a: Any, b: Any) -> Any:
    if a is None or b is None:
        return None
    if type(a) is int and type(b) is int:
        return a + b
    return CONTEXT.add(a, b)


def subtract(a: Any, b: Any) -> Any:
    if a is None or b is None:
        return None
    if type(a) is int and type(b) is int:
        return a - b
    return CONTEXT.subtract(a, b)


def multiply(a: Any, b: Any) -> Any:
    if a is None or b is None:
        return None
    if type(a) is int and type(b) is int:
        return a * b
    return CONTEXT.multiply(a, b)


def divide(a: Any, b: Any) -> Any:
    if a is None or b is None:
        return None
    if not b:
        raise EvaluationFailure("division by zero")
    return CONTEXT.divide(Decimal(a), Decimal(b))


def negate(a: Any) -> Any:
    return None if a is None else -a


def concat2(a: Any, b: Any) -> str | None:
    """`text + text`: null counts as empty text."""
    return text_or_null((a or "") + (b or ""))


def date_plus_days(value: dt.date | None, days: int | None) -> dt.date | None:
    if value is None or days is None:
        return None
    try:
        return value + dt.timedelta(days=days)
    except OverflowError:
        raise EvaluationFailure("the date is out of range (years 1 to 9999)") from None


def date_minus_days(value: dt.date | None, days: int | None) -> dt.date | None:
    return date_plus_days(value, None if days is None else -days)


def days_between(start: Any, end: Any) -> int | None:
    """Whole days from `start` to `end` (datetimes count by their UTC date)."""
    if start is None or end is None:
        return None
    return (as_date(end) - as_date(start)).days


def as_date(value: dt.date) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).date()
    return value


# ---- comparison ----


def equal(a: Any, b: Any) -> bool:
    """`=`: null equals null and nothing else."""
    if a is None or b is None:
        return a is None and b is None
    return bool(a == b)


def less(a: Any, b: Any) -> bool:
    return a is not None and b is not None and a < b


def less_equal(a: Any, b: Any) -> bool:
    return a is not None and b is not None and a <= b


def greater(a: Any, b: Any) -> bool:
    return a is not None and b is not None and a > b


def greater_equal(a: Any, b: Any) -> bool:
    return a is not None and b is not None and a >= b


# ---- conversions ----


def to_text(value: Any) -> str | None:
    """How a value reads as text: ISO dates, plain decimals, true/false."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return text_or_null(", ".join(str(v) for v in value))
    return text_or_null(str(value))


def to_number(value: Any) -> Decimal | None:
    """A text read as a number ("1,234.50" -> 1234.50), or None when it is not one."""
    if value is None:
        return None
    if isinstance(value, (int, Decimal)) and not isinstance(value, bool):
        return Decimal(value)
    text = str(value).strip().replace(",", "")
    if not text or len(text) > 60:
        return None
    try:
        number = Decimal(text)
    except decimal.InvalidOperation:
        return None
    return number if number.is_finite() else None
