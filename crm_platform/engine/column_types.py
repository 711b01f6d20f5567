"""Column types that keep values exact on both databases.

SQLite has no exact decimal type, so decimals are stored there as integers scaled by
10**scale (exact, sortable, summable); PostgreSQL uses NUMERIC. Datetimes are always UTC.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from crm_platform.engine import clock

SQLITE_MAX_INTEGER = 2**63 - 1


class ExactDecimal(TypeDecorator[Decimal]):
    """NUMERIC(precision, scale) on PostgreSQL; a scaled BIGINT on SQLite."""

    impl = sa.Numeric
    cache_ok = True

    def __init__(self, precision: int, scale: int) -> None:
        super().__init__()
        self.precision = precision
        self.scale = scale

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.BigInteger())
        return dialect.type_descriptor(sa.Numeric(self.precision, self.scale, asdecimal=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, Decimal):
            value = Decimal(str(value))
        if dialect.name == "sqlite":
            scaled = int(value.scaleb(self.scale).to_integral_value())
            if not -SQLITE_MAX_INTEGER <= scaled <= SQLITE_MAX_INTEGER:
                raise ValueError(f"{value} has too many digits to be stored exactly on SQLite (at most 18 in all)")
            return scaled
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return Decimal(int(value)).scaleb(-self.scale).quantize(Decimal(1).scaleb(-self.scale))
        return Decimal(value).quantize(Decimal(1).scaleb(-self.scale))

    @property
    def python_type(self) -> type:
        return Decimal


class UTCDateTime(TypeDecorator[dt.datetime]):
    """TIMESTAMP WITH TIME ZONE on PostgreSQL; naive UTC text on SQLite; always aware in Python."""

    impl = sa.DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(sa.DateTime(timezone=False))
        return dialect.type_descriptor(sa.DateTime(timezone=True))

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class DelimitedList(TypeDecorator[list[str]]):
    """A multi-picklist: stored as ';a;b;' so SQL can test membership with LIKE '%;a;%'."""

    impl = sa.Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        if value is None or value == []:
            return None
        if isinstance(value, str):  # a single value used in a membership test
            return value
        return ";" + ";".join(value) + ";"

    def process_result_value(self, value: Any, dialect: Dialect) -> list[str] | None:
        if value is None:
            return None
        return [v for v in value.split(";") if v]


def utcnow() -> dt.datetime:
    """The platform clock's current instant (aware UTC), so a moved test clock stamps records too."""
    return clock.now()
