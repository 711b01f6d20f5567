"""Field-level change history: who changed which field from what to what, and when, and the
titles of the records a reference field pointed to before and after a change."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from crm_platform.engine import system_references
from crm_platform.metadata.model import Entity, Registry


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
    conn.execute(table.insert(), history_rows(entity, record_id, version, action, changes, user_id, at))


def history_rows(entity: str, record_id: int, version: int, action: str, changes: dict[str, tuple[Any, Any]],
                 user_id: int | None, at: dt.datetime) -> list[dict[str, Any]]:
    """The rows `write_history` inserts (a batch of new records inserts them at once)."""
    rows = [
        {"entity": entity, "record_id": record_id, "version": version, "action": action, "field": name,
         "old_value": _json(old), "new_value": _json(new), "changed_by": user_id, "changed_at": at}
        for name, (old, new) in changes.items()
    ]
    if not rows:
        rows = [{"entity": entity, "record_id": record_id, "version": version, "action": action, "field": None,
                 "old_value": None, "new_value": None, "changed_by": user_id, "changed_at": at}]
    return rows


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


def add_reference_titles(conn: sa.Connection, registry: Registry, tables: Mapping[str, sa.Table], entity: Entity, rows: list[dict[str, Any]]) -> None:
    """Give each history row of a reference field `old_ref` / `new_ref`: {id, title, deleted} of
    the record it pointed to (title None when the record no longer exists; deleted when it is in
    the recycle bin or gone). One query per target entity."""
    wanted: dict[str, set[int]] = {}
    for row in rows:
        f = entity.field_map.get(row["field"] or "")
        if f is None or f.type != "reference" or f.entity is None or f.entity not in registry.entities:
            continue  # user and org unit targets are no pack entities: labelled elsewhere
        for side in ("old", "new"):
            if isinstance(row[side], int) and not isinstance(row[side], bool):
                wanted.setdefault(f.entity, set()).add(row[side])
    found: dict[tuple[str, int], tuple[Any, bool]] = {}
    for target_name, ids in wanted.items():
        target = registry.entity(target_name)
        table = tables[target.name]
        title = table.c[target.title_field] if target.title_field else table.c.id
        query = sa.select(table.c.id, title.label("title"), table.c.deleted_at).where(table.c.id.in_(ids))
        for hit in conn.execute(query):
            found[(target_name, hit.id)] = (hit.title, hit.deleted_at is not None)
    _add_system_reference_titles(conn, tables[entity.name].metadata.tables, entity, rows)
    for row in rows:
        f = entity.field_map.get(row["field"] or "")
        if f is None or f.type != "reference" or f.entity not in wanted:
            continue
        for side in ("old", "new"):
            value = row[side]
            if isinstance(value, int) and not isinstance(value, bool):
                title, deleted = found.get((f.entity, value), (None, True))
                row[f"{side}_ref"] = {"id": value, "title": None if title is None else str(title), "deleted": deleted}


def _add_system_reference_titles(conn: sa.Connection, system: Mapping[str, sa.Table], entity: Entity, rows: list[dict[str, Any]]) -> None:
    """`old_ref` / `new_ref` for fields naming a user or an org unit: their names (deleted when gone)."""
    for f in entity.fields:
        if not f.system_target:
            continue
        mine = [row for row in rows if row["field"] == f.name]
        ids = {row[side] for row in mine for side in ("old", "new") if isinstance(row[side], int) and not isinstance(row[side], bool)}
        names = system_references.titles(conn, system, f.system_target, ids)
        for row in mine:
            for side in ("old", "new"):
                value = row[side]
                if isinstance(value, int) and not isinstance(value, bool):
                    row[f"{side}_ref"] = {"id": value, "title": names.get(value), "deleted": value not in names}
