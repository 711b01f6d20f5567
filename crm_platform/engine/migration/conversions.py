"""Which column type changes keep every value (widen in place) and which may lose some."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from crm_platform.engine.entity_tables import ColumnSpec


def is_widening(old: ColumnSpec, new: ColumnSpec) -> bool:
    """True when every value of `old` fits `new` unchanged."""
    if old.kind == "string" and new.kind == "string":
        return (new.length or 0) >= (old.length or 0)
    if old.kind in ("string", "list") and new.kind == "text":
        return True
    if old.kind == "integer" and new.kind == "decimal":
        return False  # decimals hold at most 18 digits: the planner checks the stored values
    if old.kind == "decimal" and new.kind == "decimal":
        old_int = (old.precision or 0) - (old.scale or 0)
        new_int = (new.precision or 0) - (new.scale or 0)
        return new_int >= old_int and (new.scale or 0) >= (old.scale or 0)
    if old.kind == "date" and new.kind == "datetime":
        return True
    return False


def is_same_family(old: ColumnSpec, new: ColumnSpec) -> bool:
    """Narrowing within a family (shorter text, fewer digits) can keep the values that fit."""
    if old.kind == "reference" or new.kind == "reference":
        return old.kind == new.kind and old.target == new.target
    families = ({"string", "text"}, {"integer", "decimal"}, {"date", "datetime"})
    return any(old.kind in fam and new.kind in fam for fam in families) or old.kind == new.kind


def fits(new: ColumnSpec, value: Any) -> bool:
    """Whether a value read from the old column can be stored unchanged in `new`."""
    if value is None:
        return True
    if new.kind == "string":
        return isinstance(value, str) and len(value) <= (new.length or 0)
    if new.kind == "text":
        return isinstance(value, str)
    if new.kind in ("integer", "decimal"):
        if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
            return False
        number = Decimal(value)
        if new.kind == "integer":
            return number == number.to_integral_value() and abs(number) < 2**63
        scale = new.scale or 0
        if number != number.quantize(Decimal(1).scaleb(-scale)):
            return False
        return abs(number) < Decimal(10) ** ((new.precision or 0) - scale)
    if new.kind == "date":
        import datetime as dt

        return isinstance(value, dt.date) and not isinstance(value, dt.datetime)
    if new.kind == "datetime":
        import datetime as dt

        return isinstance(value, dt.datetime)
    return False


def convert(new: ColumnSpec, value: Any) -> Any:
    """The value as stored in `new` (only called for values that fit)."""
    if value is None:
        return None
    if new.kind == "integer":
        return int(value)
    if new.kind == "decimal":
        return Decimal(value)
    return value
