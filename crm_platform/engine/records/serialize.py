"""Rows to JSON-ready dicts: typed values as strings where JSON has no type, titles of references."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa

from crm_platform.engine import system_references
from crm_platform.metadata.model import Entity, Registry
from crm_platform.metadata.values import to_json

SYSTEM_OUTPUT = ("id", "version", "created_at", "created_by", "updated_at", "updated_by", "owner_id", "unit_id", "state", "deleted_at", "parent_id")


def row_to_dict(entity: Entity, row: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in SYSTEM_OUTPUT:
        if key in row:
            value = row[key]
            out[key] = value.isoformat() if hasattr(value, "isoformat") else value
    for f in entity.stored_fields:
        out[f.name] = to_json(f, row.get(f.name))
        if f.type == "money":
            out[f"{f.name}_currency"] = row.get(f"{f.name}_currency")
    return out


def add_titles(conn: sa.Connection, registry: Registry, tables: Mapping[str, sa.Table], entity: Entity, records: Iterable[dict[str, Any]],
               users: sa.Table | None = None) -> None:
    """Add `_titles: {field: title}` to each record for its reference fields (one query per field),
    and the owner's name when `users` (crm_user) is given; with it too, the names of the users
    and org units that `entity: user` / `entity: org_unit` fields refer to."""
    records = list(records)
    owners = {r["owner_id"] for r in records if r.get("owner_id") is not None}
    if users is not None and owners:
        names = {row.id: row.display_name or row.username for row in conn.execute(sa.select(users.c.id, users.c.display_name, users.c.username).where(users.c.id.in_(owners)))}
        for r in records:
            if r.get("owner_id") is not None:
                r.setdefault("_titles", {})["owner_id"] = _title(names.get(r["owner_id"]), r["owner_id"])
    for f in entity.fields:
        if f.type != "reference" or not f.entity:
            continue
        if f.system_target:  # a user / org unit: its name (engine/system_references.py)
            _add_system_titles(conn, users, f.system_target, f.name, records)
            continue
        target = registry.entity(f.entity)
        ids = {r[f.name] for r in records if r.get(f.name) is not None}
        if not ids or not target.title_field:
            continue
        table = tables[target.name]
        title_col = table.c[target.title_field]
        titles = dict(conn.execute(sa.select(table.c.id, title_col).where(table.c.id.in_(ids))).all())
        for r in records:
            if r.get(f.name) is not None:
                r.setdefault("_titles", {})[f.name] = _title(titles.get(r[f.name]), r[f.name])


def _add_system_titles(conn: sa.Connection, users: sa.Table | None, target: str, name: str, records: list[dict[str, Any]]) -> None:
    ids = {r[name] for r in records if r.get(name) is not None}
    if users is None or not ids:
        return
    names = system_references.titles(conn, system_references.system_tables_of(users), target, ids)
    for r in records:
        if r.get(name) is not None:
            r.setdefault("_titles", {})[name] = _title(names.get(r[name]), r[name])


def _title(value: Any, fallback: Any) -> str:
    return str(value) if value is not None else f"#{fallback}"
