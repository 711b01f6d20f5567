"""Field-level change history: who changed which field from what to what, and when."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

import sqlalchemy as sa


def _json(value: Any) -> str | None:
    if value is None:
        return None
    return json.dumps(value, default=_default, ensure_ascii=False, sort_keys=True)


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    raise TypeError(f"cannot store {type(value).__name__} in history")


def write_history(
    conn: sa.Connection,
    table: sa.Table,
    entity: str,
    record_id: int,
    version: int,
    action: str,
    changes: dict[str, tuple[Any, Any]],
    user_id: int | None,
    at: dt.datetime,
) -> None:
    rows = [
        {"entity": entity, "record_id": record_id, "version": version, "action": action, "field": name,
         "old_value": _json(old), "new_value": _json(new), "changed_by": user_id, "changed_at": at}
        for name, (old, new) in changes.items()
    ]
    if not rows:
        rows = [{"entity": entity, "record_id": record_id, "version": version, "action": action, "field": None,
                 "old_value": None, "new_value": None, "changed_by": user_id, "changed_at": at}]
    conn.execute(table.insert(), rows)


def fields_changed_since(conn: sa.Connection, table: sa.Table, entity: str, record_id: int, version: int) -> dict[str, int | None]:
    """Fields changed after `version`, with who changed each last."""
    query = (
        sa.select(table.c.field, table.c.changed_by)
        .where(table.c.entity == entity, table.c.record_id == record_id, table.c.version > version, table.c.field.isnot(None))
        .order_by(table.c.version)
    )
    return {row.field: row.changed_by for row in conn.execute(query)}


def read_history(conn: sa.Connection, table: sa.Table, users: sa.Table, entity: str, record_id: int) -> list[dict[str, Any]]:
    query = (
        sa.select(table, users.c.username)
        .select_from(table.outerjoin(users, users.c.id == table.c.changed_by))
        .where(table.c.entity == entity, table.c.record_id == record_id)
        .order_by(table.c.version, table.c.id)
    )
    return [
        {
            "version": row.version,
            "action": row.action,
            "field": row.field,
            "old": json.loads(row.old_value) if row.old_value is not None else None,
            "new": json.loads(row.new_value) if row.new_value is not None else None,
            "changed_by": row.changed_by,
            "changed_by_name": row.username,
            "changed_at": row.changed_at.isoformat(),
        }
        for row in conn.execute(query)
    ]
