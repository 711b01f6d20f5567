"""Users and org units as reference targets (`type: reference, entity: user | org_unit`).

Such a field stores the id of a row of the platform's own tables (crm_user, crm_org_unit)
instead of a pack entity's. This module owns everything that differs from an ordinary
reference: which table a target names, whether ids exist, the names shown for ids (a user's
display name, a unit's name), the choices a form offers (active users; units in tree order,
indented) and finding ids by name (imports and the API: a username, a display name, a unit
name or its path "Group / Sales / East").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from crm_platform.engine.records.errors import FieldError, ValidationFailed
from crm_platform.metadata.field_types import SYSTEM_TARGETS
from crm_platform.metadata.model import Entity, Field

PATH_SEPARATOR = " / "
INDENT = "\u00a0\u00a0"  # two no-break spaces per level below the top of the org tree


def table_of(tables: Mapping[str, sa.Table], target: str) -> sa.Table:
    """The platform table a reserved target names (tables: the site's system tables by name)."""
    return tables[SYSTEM_TARGETS[target]]


def missing_ids(conn: sa.Connection, tables: Mapping[str, sa.Table], target: str, ids: Iterable[int]) -> list[int]:
    """The ids among `ids` that name no user / org unit (deactivated users exist)."""
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        return []
    table = table_of(tables, target)
    found = set(conn.execute(sa.select(table.c.id).where(table.c.id.in_(wanted))).scalars())
    return [i for i in wanted if i not in found]


def titles(conn: sa.Connection, tables: Mapping[str, sa.Table], target: str, ids: Iterable[int]) -> dict[int, str]:
    """The name shown for each id: a user's display name (else username), a unit's name."""
    wanted = list(set(ids))
    if not wanted:
        return {}
    table = table_of(tables, target)
    if target == "user":
        query = sa.select(table.c.id, table.c.display_name, table.c.username).where(table.c.id.in_(wanted))
        return {row.id: row.display_name or row.username for row in conn.execute(query)}
    return {row.id: row.name for row in conn.execute(sa.select(table.c.id, table.c.name).where(table.c.id.in_(wanted)))}


def name_column(tables: Mapping[str, sa.Table], target: str, column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    """The name of the user / org unit whose id is in `column`, as SQL (to sort a list by it)."""
    table = table_of(tables, target)
    name = sa.func.coalesce(table.c.display_name, table.c.username) if target == "user" else table.c.name
    return sa.select(name).where(table.c.id == column).scalar_subquery()


@dataclass(frozen=True)
class Choice:
    """One option of a form's select: the id, the text shown, and whether it is still usable."""

    id: int
    label: str
    active: bool = True


def choices(conn: sa.Connection, tables: Mapping[str, sa.Table], target: str, keep: Iterable[int] = ()) -> list[Choice]:
    """What a form offers: active users by name, or every org unit in tree order (indented by
    depth). Ids in `keep` (the record's current value) are offered even when deactivated."""
    table = table_of(tables, target)
    kept = {i for i in keep if i}
    if target == "user":
        condition: sa.ColumnElement[bool] = table.c.active.is_(True)
        if kept:
            condition = sa.or_(condition, table.c.id.in_(kept))
        query = sa.select(table.c.id, table.c.display_name, table.c.username, table.c.active).where(condition)
        rows = conn.execute(query).all()
        found = [Choice(r.id, r.display_name or r.username, bool(r.active)) for r in rows]
        return sorted(found, key=lambda c: (c.label.casefold(), c.id))
    units = _units(conn, table)
    return [Choice(u.id, INDENT * u.depth + u.name) for u in _tree_order(units)]


@dataclass(frozen=True)
class _Unit:
    id: int
    name: str
    parent_id: int | None
    depth: int


def _units(conn: sa.Connection, table: sa.Table) -> list[_Unit]:
    rows = conn.execute(sa.select(table.c.id, table.c.name, table.c.parent_id, table.c.path)).all()
    return [_Unit(r.id, r.name, r.parent_id, max(str(r.path).strip("/").count("/"), 0)) for r in rows]


def _tree_order(units: list[_Unit]) -> list[_Unit]:
    """Parents before their children, siblings by name."""
    known = {u.id for u in units}
    children: dict[int | None, list[_Unit]] = {}
    for unit in units:
        parent = unit.parent_id if unit.parent_id in known else None
        children.setdefault(parent, []).append(unit)
    ordered: list[_Unit] = []

    def visit(parent: int | None) -> None:
        for unit in sorted(children.get(parent, []), key=lambda u: (u.name.casefold(), u.id)):
            ordered.append(unit)
            visit(unit.id)

    visit(None)
    return ordered


def unit_paths(conn: sa.Connection, tables: Mapping[str, sa.Table]) -> dict[int, str]:
    """Each org unit's names from the top of the tree: "Group / Sales / East"."""
    units = {u.id: u for u in _units(conn, table_of(tables, "org_unit"))}
    paths: dict[int, str] = {}

    def path(unit_id: int, seen: frozenset[int] = frozenset()) -> str:
        if unit_id in paths:
            return paths[unit_id]
        unit = units[unit_id]
        parent = unit.parent_id
        prefix = path(parent, seen | {unit_id}) + PATH_SEPARATOR if parent in units and parent not in seen else ""
        paths[unit_id] = prefix + unit.name
        return paths[unit_id]

    for unit_id in units:
        path(unit_id)
    return paths


def fold(text: str) -> str:
    """How names are compared: case-insensitive, spaces around the path separator ignored."""
    return "/".join(part.strip() for part in text.split("/")).casefold()


def ids_by_name(conn: sa.Connection, tables: Mapping[str, sa.Table], target: str) -> dict[str, set[int]]:
    """Folded name -> ids: a user by username or display name; a unit by name, by path or by the
    key its pack's org.yaml gives it."""
    table = table_of(tables, target)
    found: dict[str, set[int]] = {}
    if target == "user":
        for row in conn.execute(sa.select(table.c.id, table.c.username, table.c.display_name)):
            for name in (row.username, row.display_name):
                if name:
                    found.setdefault(fold(name), set()).add(row.id)
        return found
    for unit in _units(conn, table):
        found.setdefault(fold(unit.name), set()).add(unit.id)
    keys = tables.get("crm_seed_record")
    if keys is not None:  # the key a pack's org.yaml gives the unit (e.g. south_sales)
        for key, unit_id in conn.execute(sa.select(keys.c.key, keys.c.record_id).where(keys.c.entity == table.name)):
            found.setdefault(fold(str(key)), set()).add(int(unit_id))
    for unit_id, path in unit_paths(conn, tables).items():
        found.setdefault(fold(path), set()).add(unit_id)
    return found


class NameIndex:
    """Every user's username and display name, or every org unit's name and path, loaded once
    (an import resolves many rows with one index)."""

    def __init__(self, conn: sa.Connection, tables: Mapping[str, sa.Table], target: str) -> None:
        self.target = target
        self.what = "user" if target == "user" else "org unit"
        self.usernames: dict[str, int] = {}
        if target == "user":
            table = table_of(tables, target)
            self.usernames = {str(name).casefold(): int(i) for i, name in conn.execute(sa.select(table.c.id, table.c.username))}
        self.names = ids_by_name(conn, tables, target)

    def resolve(self, text: str, allow_id: bool = False) -> int:
        """The id `text` names (a username always wins over a display name; with `allow_id`, a
        number that names nobody is taken as an id, which the record service then checks).
        Raises ValueError naming the value when no user / unit or several match."""
        key = fold(text)
        if key in self.usernames:
            return self.usernames[key]
        matches = self.names.get(key, set())
        if len(matches) == 1:
            return next(iter(matches))
        if len(matches) > 1:
            hint = "use the username" if self.target == "user" else "use its path, e.g. 'Group / Sales / East'"
            raise ValueError(f"{len(matches)} {self.what}s are called '{text}': {hint} or the id")
        bare = text.strip().lstrip("#")
        if allow_id and bare.isdigit() and len(bare) < 19:
            return int(bare)
        raise ValueError(f"no {self.what} is called '{text}'")


def resolve_name(conn: sa.Connection, tables: Mapping[str, sa.Table], field: Field, text: str) -> int:
    """The id a name stands for in `field` (see NameIndex.resolve). Raises ValueError."""
    return NameIndex(conn, tables, field.system_target or "").resolve(text)


def names_to_ids(engine: sa.Engine, tables: Mapping[str, sa.Table], entity: Entity, data: Any) -> Any:
    """`data` (a JSON body for `entity`) with the names given for user / org-unit fields
    replaced by ids: what lets the API take `"rep": "alice"` or `"department": "Sales / East"`.
    Ids (numbers, numeric text) pass unchanged. Raises ValidationFailed (422) naming every field
    whose name matches no user / unit, or several."""
    if not isinstance(data, dict) or not any(f.system_target and isinstance(data.get(f.name), str) for f in entity.fields):
        return data
    with engine.connect() as conn:
        return names_to_ids_in(conn, tables, entity, data)


def names_to_ids_in(conn: sa.Connection, tables: Mapping[str, sa.Table], entity: Entity, data: dict[str, Any]) -> dict[str, Any]:
    """names_to_ids on an open connection (seed records load in one transaction)."""
    out = dict(data)
    errors: list[FieldError] = []
    indexes: dict[str, NameIndex] = {}
    for key, value in data.items():
        f = entity.field_map.get(key)
        if f is None or not f.system_target or not isinstance(value, str) or not value.strip() or value.strip().isdigit():
            continue
        index = indexes.get(f.system_target) or indexes.setdefault(f.system_target, NameIndex(conn, tables, f.system_target))
        try:
            out[key] = index.resolve(value)
        except ValueError as exc:
            errors.append(FieldError(key, str(exc), "unknown_reference"))
    if errors:
        raise ValidationFailed(errors)
    return out


def system_tables_of(any_system_table: sa.Table) -> Mapping[str, Any]:
    """The system tables that share `any_system_table`'s MetaData (crm_user, crm_org_unit...)."""
    return any_system_table.metadata.tables
