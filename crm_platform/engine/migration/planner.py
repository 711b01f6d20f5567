"""The migration planner: diff the Registry's tables against the live schema and applied state.

The plan is computed from the specs recorded in crm_schema_column (not from reflected types),
so it is the same on SQLite and PostgreSQL. Steps come in the order they are applied: table
and column changes first, then stale indexes are dropped and missing ones created.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import sqlalchemy as sa

from crm_platform.engine.entity_tables import ColumnSpec, Schema, constraint_name, sa_type
from crm_platform.engine.migration.conversions import fits, is_same_family, is_widening
from crm_platform.engine.migration.plan import Plan, Step
from crm_platform.engine.migration.state import TableState, archived_name, read_state
from crm_platform.engine.system_tables import SYSTEM_TABLE_NAMES
from crm_platform.metadata.model import Registry

_LOCK_KEY = 0x63726D5F736368  # 'crm_sch'


def make_plan(conn: sa.Connection, registry: Registry, schema: Schema, allow_destructive: bool = False) -> Plan:
    """Every step that brings the database on `conn` to `registry` (reads only)."""
    plan = Plan(registry.content_hash, allow_destructive=allow_destructive)
    if conn.dialect.name == "postgresql":
        # One planner at a time per database (SQLite's BEGIN IMMEDIATE does this already);
        # held until the caller's transaction ends, so a sync plans and applies alone.
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
    inspector = sa.inspect(conn)
    existing = set(inspector.get_table_names())
    missing_system = [t for t in SYSTEM_TABLE_NAMES if t not in existing]
    if missing_system:
        plan.steps.append(Step("create_system_tables", ",".join(missing_system), f"create platform tables {', '.join(missing_system)}"))
    for name in SYSTEM_TABLE_NAMES:  # a platform table of an older release gains the columns added since
        if name not in missing_system:
            live = {c["name"] for c in inspector.get_columns(name)}
            plan.steps.extend(Step("add_system_column", name, f"add platform column {name}.{col.name}", column=col.name)
                              for col in schema.system[name].columns if col.name not in live)
    state = read_state(conn, schema)  # empty on a new database
    creates: list[Step] = []  # listed first: they are applied first (see apply.apply_plan)
    changes: list[Step] = []
    for entity in registry.entities.values():
        table = schema.tables[entity.name]
        if table.name not in existing:
            cols = ", ".join(schema.specs[table.name]) or "no fields"
            creates.append(Step("create_table", table.name, f"create table {table.name} for entity '{entity.name}' ({cols})"))
            continue
        table_state = state.get(table.name) or TableState(entity.name, "entity", False)
        changes.extend(_TableDiff(conn, registry, schema, table, table_state, inspector).steps())
    for (entity_name, field_name), junction in schema.junctions.items():
        if junction.name not in existing:
            creates.append(Step("create_table", junction.name, f"create link table {junction.name} for {entity_name}.{field_name}"))
        elif state.get(junction.name) is not None and state[junction.name].archived:
            changes.append(Step("restore_table", junction.name, f"restore archived link table {junction.name}"))
    plan.steps.extend(creates + changes)
    plan.steps.extend(_state_steps(conn, registry, schema, existing, inspector))
    wanted = {t.name for t in schema.tables.values()} | {j.name for j in schema.junctions.values()}
    for name, table_state in state.items():
        if name not in wanted and not table_state.archived and name in existing:
            plan.steps.append(Step("archive_table", name, f"archive table {name}: entity '{table_state.entity}' is no longer in the packs (its data is kept)"))
    return plan


class _TableDiff:
    """The steps for one existing entity table."""

    def __init__(self, conn: sa.Connection, registry: Registry, schema: Schema, table: sa.Table, state: TableState, inspector: sa.Inspector) -> None:
        self.conn = conn
        self.table = table
        self.state = state
        self.inspector = inspector
        self.live = {c["name"] for c in inspector.get_columns(table.name)}
        self.desired = schema.specs[table.name]
        self.entity = registry.entities.get(state.entity)
        self.taken = set(self.live)
        self.moved: dict[str, str] = {}  # live column -> its name once the plan is applied
        self._rows: int | None = None

    @property
    def rows(self) -> int:
        if self._rows is None:
            self._rows = self.conn.execute(sa.select(sa.func.count()).select_from(sa.table(self.table.name))).scalar_one()
        return self._rows

    def steps(self) -> list[Step]:
        name = self.table.name
        steps: list[Step] = []
        if self.state.archived:
            steps.append(Step("restore_table", name, f"restore archived table {name}"))
        for col in self.table.columns:
            if col.name not in self.desired and col.name not in self.live:
                blocked = None
                if not col.nullable and col.server_default is None and self.rows:
                    blocked = f"the table has {self.rows} row(s) and {col.name} may not be empty"
                steps.append(Step("add_system_column", name, f"add system column {name}.{col.name}", column=col.name, blocked=blocked))
        for spec in self.desired.values():
            steps.extend(self._field_steps(spec))
        for col_name, old in self.state.active.items():
            if col_name in self.moved or col_name in self.desired or col_name not in self.live:
                continue
            target = archived_name(col_name, self.taken)
            self.taken.add(target)
            self.moved[col_name] = target
            steps.append(Step("archive_column", name, f"archive column {name}.{col_name} as {target}: field '{old.field}' was removed (data kept)", column=col_name, new_name=target, old=old))
        steps.extend(self._index_steps())
        return steps

    def _field_steps(self, spec: ColumnSpec) -> list[Step]:
        table, name = self.table.name, spec.name
        if name in self.state.active and name in self.live:
            self.moved[name] = name
            return self._change_steps(name, self.state.active[name], spec)
        field_def = self.entity.field(spec.field) if self.entity and self.entity.has_field(spec.field) else None
        renamed = field_def.renamed_from if field_def else None
        old_name = name.replace(spec.field, renamed, 1) if renamed else None
        if old_name and old_name in self.state.active and old_name in self.live and old_name not in self.desired:
            self.moved[old_name] = name
            rename = Step("rename_column", table, f"rename column {table}.{old_name} to {name} (data kept)", column=old_name, new_name=name, spec=spec)
            return [rename, *self._change_steps(old_name, self.state.active[old_name], spec, renamed_to=name)]
        restorable = [
            phys for phys, old in self.state.archived_columns.items()
            if old.name == name and old.storage_equal(spec) and phys in self.live and phys not in self.moved
        ]
        if restorable and name not in self.live:
            phys = max(restorable, key=lambda p: _archive_order(p, name))  # the latest archived
            self.moved[phys] = name
            return [Step("restore_column", table, f"restore archived column {table}.{phys} as {name} (its data comes back)", column=phys, new_name=name, spec=spec)]
        if name in self.live:
            # A column we did not record (e.g. state lost): adopt it when it has the same name.
            self.moved[name] = name
            return [Step("adopt_column", table, f"record existing column {table}.{name}", column=name, spec=spec)]
        return [Step("add_column", table, f"add column {table}.{name} ({describe_spec(spec)})", column=name, spec=spec)]

    def _change_steps(self, column: str, old: ColumnSpec, new: ColumnSpec, renamed_to: str | None = None) -> list[Step]:
        table, target = self.table.name, renamed_to or column
        if old.storage_equal(new):
            if dataclasses.replace(old, name=new.name, field=new.field) != new:
                return [Step("update_state", table, f"record new settings of {table}.{target}", column=target, spec=new, old=old)]
            return []
        change = f"{table}.{target} from {describe_spec(old)} to {describe_spec(new)}"
        if dataclasses.replace(old, on_delete=new.on_delete).storage_equal(new):  # only the rule
            rule = f"ON DELETE of {table}.{target} from {old.on_delete} to {new.on_delete}"
            return [Step("change_foreign_key", table, f"change {rule} (values kept)", column=target, spec=new, old=old)]
        if is_widening(old, new) or (old.kind == "integer" and new.kind == "decimal" and count_not_fitting(self.conn, table, column, old, new) == 0):
            # integer -> decimal keeps every value when they all fit the new digits (checked here)
            return [Step("widen_column", table, f"widen {change} (values converted in place)", column=target, spec=new, old=old)]
        archived = archived_name(column, self.taken)
        self.taken.add(archived)
        self.moved[column] = archived
        total = self._count(column, old)
        if is_same_family(old, new):
            bad = count_not_fitting(self.conn, table, column, old, new)
            why = f"narrowing {describe_spec(old)} to {describe_spec(new)}: {bad} of {total} stored value(s) would not fit"
        else:
            why = f"incompatible change {describe_spec(old)} to {describe_spec(new)}: {total} of {total} stored value(s) cannot be converted"
        description = f"change {change} (old values kept in {archived}; values that fit are copied)"
        return [Step("replace_column", table, description, column=target, spec=new, old=old, new_name=archived, refusal=why)]

    def _count(self, column: str, old: ColumnSpec) -> int:
        col = sa.column(column, sa_type(old))
        query = sa.select(sa.func.count()).select_from(sa.table(self.table.name, col)).where(col.isnot(None))
        return int(self.conn.execute(query).scalar_one())

    def _index_steps(self) -> list[Step]:
        """Drop our indexes that are stale (unwanted, or now on other columns); create missing ones."""
        table = self.table.name
        prefixes = (constraint_name("ix", table, ""), constraint_name("ux", table, ""))
        wanted = {ix.name: ([c.name for c in ix.columns], bool(ix.unique)) for ix in self.table.indexes}
        kept: set[str] = set()
        drops: list[Step] = []
        for ix in self.inspector.get_indexes(table):
            name = ix["name"]
            after = ([self.moved.get(c, c) if c else "" for c in ix["column_names"]], bool(ix["unique"]))
            if name in wanted and wanted[name] == after:
                kept.add(name)
            elif name and name.startswith(prefixes):
                drops.append(Step("drop_index", table, f"drop index {name} (no longer wanted)", column=name))
        creates: list[Step] = []
        for index in self.table.indexes:
            if index.name in kept or index.name is None:
                continue
            blocked = None
            if index.unique:
                dupes = self._duplicates([c.name for c in index.columns])
                if dupes:
                    blocked = f"{dupes} value(s) are stored in more than one record; make them unique first"
            creates.append(Step("create_index", table, f"create {'unique ' if index.unique else ''}index {index.name}", column=str(index.name), blocked=blocked))
        return drops + creates

    def _duplicates(self, columns: list[str]) -> int:
        """How many values of the live column(s) that become `columns` occur more than once."""
        reverse = {after: before for before, after in self.moved.items()}
        sources = [reverse.get(c, c if c in self.live and c not in self.moved else None) for c in columns]
        if any(s is None for s in sources):
            return 0  # a new or replaced column: empty, or copied from values that were unique
        cols: list[Any] = [sa.column(str(s)) for s in sources]
        groups = (
            sa.select(*cols).select_from(sa.table(self.table.name, *cols))
            .where(*(c.isnot(None) for c in cols)).group_by(*cols).having(sa.func.count() > 1).subquery()
        )
        return int(self.conn.execute(sa.select(sa.func.count()).select_from(groups)).scalar_one())


def _archive_order(phys: str, column: str) -> int:
    """archived__x is 1, archived__x_2 is 2, ... (see state.archived_name)."""
    tail = phys[len(archived_name(column, set())):].lstrip("_")
    return int(tail) if tail.isdigit() else 1


def count_not_fitting(conn: sa.Connection, table: str, column: str, old: ColumnSpec, new: ColumnSpec) -> int:
    """How many stored values of `column` (now stored as `old`) would not fit `new`."""
    col = sa.column(column, sa_type(old))
    query = sa.select(col).select_from(sa.table(table, col)).where(col.isnot(None))
    if not is_same_family(old, new):
        return int(conn.execute(sa.select(sa.func.count()).select_from(query.subquery())).scalar_one())
    return sum(1 for (value,) in conn.execute(query) if not fits(new, value))


def describe_spec(spec: ColumnSpec) -> str:
    if spec.kind == "string":
        return f"text({spec.length})"
    if spec.kind == "decimal":
        return f"decimal({spec.precision},{spec.scale})"
    if spec.kind == "reference":
        return f"reference to {spec.target}"
    return spec.kind


__all__ = ["make_plan", "count_not_fitting", "describe_spec"]


def _state_steps(conn: sa.Connection, registry: Registry, schema: Schema, existing: set[str], inspector: sa.Inspector) -> list[Step]:
    """Records in a state their workflow no longer has: moved where `moved_states` says, else blocked."""
    steps: list[Step] = []
    for flow in registry.extra.get("workflows", ()):
        table = schema.tables[flow.entity]
        if table.name not in existing or flow.field not in {c["name"] for c in inspector.get_columns(table.name)}:
            continue
        states = {s.name for s in flow.states}
        moves = dict(flow.moved_states)
        column = sa.column(flow.field)
        query = (sa.select(column, sa.func.count()).select_from(sa.table(table.name)).where(column.is_not(None), column.not_in(states))
                 .group_by(column).order_by(column))
        for state, count in conn.execute(query).all():
            if state in moves:
                steps.append(Step("move_state", table.name, f"move {count} {flow.entity} record(s) from the retired state '{state}' to '{moves[state]}' (workflow '{flow.name}')",
                                  column=flow.field, state_move=(flow.name, state, moves[state])))
            else:
                steps.append(Step("move_state", table.name, f"{count} {flow.entity} record(s) are in the state '{state}', which the workflow '{flow.name}' no longer has",
                                  column=flow.field, blocked=f"say where they go in moved_states ({state}: <state>) in {flow.place.file}, or move them first"))
    return steps
