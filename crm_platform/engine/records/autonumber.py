"""Gap-free auto-numbers: a counter row per entity, field and period, bumped in the insert's transaction.

The counter UPDATE takes a row lock (PostgreSQL) or runs inside BEGIN IMMEDIATE (SQLite), so
concurrent creates queue and a rolled-back create gives its number back.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from crm_platform.metadata.autonumber_format import parse_format
from crm_platform.metadata.model import Field


def next_number(conn: sa.Connection, counters: sa.Table, entity: str, field: Field, today: dt.date) -> str:
    return next_numbers(conn, counters, entity, field, today, 1)[0]


def next_numbers(conn: sa.Connection, counters: sa.Table, entity: str, field: Field, today: dt.date, count: int) -> list[str]:
    """The next `count` numbers in order, taken with one bump of the counter (an import's batch)."""
    assert field.format and count >= 1
    fmt = parse_format(field.format)
    period = fmt.period_key(today)
    key = (counters.c.entity == entity) & (counters.c.field == field.name) & (counters.c.period == period)
    bump = counters.update().where(key).values(last_value=counters.c.last_value + count).returning(counters.c.last_value)
    value = conn.execute(bump).scalar()
    if value is None:
        insert = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(counters)
        conn.execute(insert.values(entity=entity, field=field.name, period=period, last_value=0).on_conflict_do_nothing())
        value = conn.execute(bump).scalar_one()
    return [fmt.render(today, int(value) - count + n) for n in range(1, count + 1)]
