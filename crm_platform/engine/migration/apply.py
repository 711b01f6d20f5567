"""Running a migration plan in one transaction with alembic's operations, then recording it."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations

from crm_platform.engine.column_types import SQLITE_MAX_INTEGER, UTCDateTime, utcnow
from crm_platform.engine.database import is_sqlite
from crm_platform.engine.entity_tables import (
    ON_DELETE,
    ColumnSpec,
    Schema,
    constraint_name,
    sa_column,
    sa_type,
)
from crm_platform.engine.migration.conversions import convert, fits
from crm_platform.engine.migration.plan import Plan, Step
from crm_platform.engine.migration.sqlite_fk import set_on_delete
from crm_platform.metadata.model import Registry


class PlanRefused(Exception):
    """The plan has refused or blocked steps; nothing was applied."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        super().__init__(plan.describe())


class MigrationError(Exception):
    """A step could not be applied; the transaction is rolled back."""


def apply_plan(conn: sa.Connection, plan: Plan, registry: Registry, schema: Schema, applied_by: str) -> None:
    """Apply every step of `plan` on `conn` (inside the caller's transaction) and record it."""
    if plan.refused:
        raise PlanRefused(plan)
    versions = schema.system["crm_metadata_version"]
    if not plan.steps:
        # no schema change, but new metadata (labels, rules, workflows): record it, so other
        # processes see the version change and switch to it
        latest = conn.execute(sa.select(versions.c.content_hash).order_by(versions.c.id.desc()).limit(1)).scalar()
        if latest is not None and latest != registry.content_hash:
            _record_version(conn, versions, registry, plan, applied_by)
        return
    if is_sqlite(conn):
        conn.exec_driver_sql("PRAGMA defer_foreign_keys=ON")
    ops = Operations(MigrationContext.configure(conn))
    new_tables = [schema.metadata.tables[s.table] for s in plan.steps if s.action == "create_table"]
    for step in plan.steps:
        if step.action == "create_system_tables":
            schema.metadata.create_all(conn, tables=list(schema.system.values()))
    if new_tables:
        schema.metadata.create_all(conn, tables=new_tables)
    archived: list[tuple[str, str, ColumnSpec]] = []
    for step in plan.steps:
        _apply_step(conn, ops, step, schema, archived)
    _record_state(conn, schema, plan, archived)
    _record_version(conn, versions, registry, plan, applied_by)


def _record_version(conn: sa.Connection, versions: sa.Table, registry: Registry, plan: Plan, applied_by: str) -> None:
    conn.execute(versions.insert().values(
        content_hash=registry.content_hash,
        packs=json.dumps({p.name: p.version for p in registry.packs}),
        applied_by=applied_by,
        applied_at=utcnow(),
        changes=json.dumps(plan.as_dicts()),
    ))


def _apply_step(conn: sa.Connection, ops: Operations, step: Step, schema: Schema, archived: list[tuple[str, str, ColumnSpec]]) -> None:
    action = step.action
    if action in ("create_system_tables", "create_table", "update_state", "adopt_column", "archive_table", "restore_table"):
        return
    table = schema.metadata.tables[step.table]
    if action == "add_system_column":
        assert step.column
        _add_column(conn, ops, step.table, table.c[step.column]._copy())
    elif action == "add_column":
        assert step.spec
        _add_column(conn, ops, step.table, sa_column(step.spec))
    elif action in ("rename_column", "restore_column", "archive_column"):
        assert step.column and step.new_name
        ops.alter_column(step.table, step.column, new_column_name=step.new_name)
        if action == "archive_column" and step.old:
            archived.append((step.table, step.new_name, step.old))
    elif action == "widen_column":
        assert step.spec and step.old and step.column
        _widen(conn, ops, step.table, step.column, step.old, step.spec)
    elif action == "replace_column":
        assert step.spec and step.old and step.column and step.new_name
        _replace(conn, ops, step.table, step.column, step.new_name, step.old, step.spec)
        archived.append((step.table, step.new_name, step.old))
    elif action == "change_foreign_key":
        assert step.column and step.spec and step.spec.target
        _change_foreign_key(conn, ops, step.table, step.column, step.spec)
    elif action == "drop_index":
        assert step.column
        ops.drop_index(step.column, table_name=step.table)
    elif action == "create_index":
        index = next(ix for ix in table.indexes if ix.name == step.column)
        index.create(conn)
    elif action == "move_state":
        assert step.column and step.state_move
        _move_state(conn, schema, table, step.column, *step.state_move)
    else:
        raise ValueError(f"unknown migration step {action}")


def _move_state(conn: sa.Connection, schema: Schema, table: sa.Table, field: str, workflow: str, old: str, new: str) -> None:
    """Records of a retired state go to its mapped state, each move on the workflow history."""
    history = schema.system["crm_workflow_history"]
    entity = next(name for name, t in schema.tables.items() if t is table)
    now = utcnow()
    moved = sa.select(sa.literal(entity), table.c.id, sa.literal(workflow), sa.literal("_state_moved"), table.c[field], sa.literal(new),
                      sa.literal("the workflow no longer has this state"), sa.literal(now, UTCDateTime())).where(table.c[field] == old)
    conn.execute(history.insert().from_select(["entity", "record_id", "workflow", "transition", "from_state", "to_state", "comment", "changed_at"], moved))
    conn.execute(table.update().where(table.c[field] == old).values({field: new, "version": table.c.version + 1, "updated_at": now}))


def _add_column(conn: sa.Connection, ops: Operations, table: str, column: sa.Column[Any]) -> None:
    fks = list(column.foreign_keys)
    if is_sqlite(conn) and fks:
        # SQLite adds a column with a REFERENCES clause natively; alembic would rebuild the table.
        prep = conn.dialect.identifier_preparer
        fk = fks[0]
        target_table, target_col = fk.target_fullname.split(".")
        on_delete = f" ON DELETE {fk.ondelete}" if fk.ondelete else ""
        type_sql = column.type.compile(dialect=conn.dialect)
        conn.exec_driver_sql(
            f"ALTER TABLE {prep.quote(table)} ADD COLUMN {prep.quote(column.name)} {type_sql} "
            f"REFERENCES {prep.quote(target_table)}({prep.quote(target_col)}){on_delete}"
        )
        return
    ops.add_column(table, column)


def _change_foreign_key(conn: sa.Connection, ops: Operations, table: str, column: str, spec: ColumnSpec) -> None:
    assert spec.target
    rule = ON_DELETE[spec.on_delete or "restrict"]
    if is_sqlite(conn):
        set_on_delete(conn, table, column, spec.target, rule)
        return
    for fk in sa.inspect(conn).get_foreign_keys(table):
        if fk["constrained_columns"] == [column] and fk["name"]:
            ops.drop_constraint(fk["name"], table, type_="foreignkey")
    ops.create_foreign_key(constraint_name("fk", table, column), table, spec.target, [column], ["id"], ondelete=rule)


def _widen(conn: sa.Connection, ops: Operations, table: str, column: str, old: ColumnSpec, new: ColumnSpec) -> None:
    prep = conn.dialect.identifier_preparer
    col, tbl = prep.quote(column), prep.quote(table)
    if old.kind == "list":  # ';a;b;' (column_types.DelimitedList) reads as 'a, b'
        conn.exec_driver_sql(f"UPDATE {tbl} SET {col} = replace(substr({col}, 2, length({col}) - 2), ';', ', ') WHERE {col} IS NOT NULL")
    if is_sqlite(conn):
        # SQLite does not enforce declared lengths: only values stored differently change.
        if new.kind == "decimal":  # decimals are integers scaled by 10**scale (column_types)
            old_scale = (old.scale or 0) if old.kind == "decimal" else 0
            factor = 10 ** ((new.scale or 0) - old_scale)
            if factor != 1:
                limit = SQLITE_MAX_INTEGER // factor
                too_big = conn.exec_driver_sql(f"SELECT count(*) FROM {tbl} WHERE abs({col}) > {limit}").scalar_one()
                if too_big:
                    raise MigrationError(f"{table}.{column}: {too_big} value(s) are too large for {new.scale} decimal places on SQLite")
                conn.exec_driver_sql(f"UPDATE {tbl} SET {col} = {col} * {factor} WHERE {col} IS NOT NULL")
        elif new.kind == "datetime" and old.kind == "date":  # midnight UTC, stored as naive UTC text
            conn.exec_driver_sql(f"UPDATE {tbl} SET {col} = {col} || ' 00:00:00.000000' WHERE {col} IS NOT NULL")
        return
    new_type = sa_type(new)
    if new.kind == "datetime" and old.kind == "date":
        using = f"({col}::timestamp AT TIME ZONE 'UTC')"  # midnight UTC, whatever the session zone
    else:
        using = f"{col}::{new_type.compile(dialect=conn.dialect)}"
    ops.alter_column(table, column, type_=new_type, existing_type=sa_type(old), postgresql_using=using)


def _replace(conn: sa.Connection, ops: Operations, table: str, column: str, archived: str, old: ColumnSpec, new: ColumnSpec) -> None:
    """Keep the old column as `archived`, add the new one, and copy every value that fits."""
    ops.alter_column(table, column, new_column_name=archived)
    _add_column(conn, ops, table, sa_column(new))
    old_col = sa.column(archived, sa_type(old))
    new_col = sa.column(column, sa_type(new))
    id_col = sa.column("id", sa.BigInteger)
    source = sa.table(table, id_col, old_col, new_col)
    rows = conn.execute(sa.select(id_col, old_col).where(old_col.isnot(None))).all()
    updates = [{"rid": rid, "val": convert(new, value)} for rid, value in rows if fits(new, value)]
    if updates:
        stmt = source.update().where(id_col == sa.bindparam("rid")).values({column: sa.bindparam("val", type_=sa_type(new))})
        conn.execute(stmt, updates)


def _record_state(conn: sa.Connection, schema: Schema, plan: Plan, archived: list[tuple[str, str, ColumnSpec]]) -> None:
    """Rewrite crm_schema_table/crm_schema_column to what the database now holds."""
    tables = schema.system["crm_schema_table"]
    columns = schema.system["crm_schema_column"]
    now = utcnow()
    entity_tables = {t.name: name for name, t in schema.tables.items()}
    wanted = entity_tables | {j.name: e for (e, _), j in schema.junctions.items()}
    for step in plan.steps:
        if step.action == "restore_column":
            conn.execute(columns.delete().where(columns.c.table_name == step.table, columns.c.column_name == step.column))
    for table_name, entity in wanted.items():
        exists = conn.execute(sa.select(tables.c.table_name).where(tables.c.table_name == table_name)).first()
        if exists is None:
            kind = "entity" if table_name in entity_tables else "junction"
            conn.execute(tables.insert().values(table_name=table_name, entity=entity, kind=kind, archived_at=None))
        else:
            conn.execute(tables.update().where(tables.c.table_name == table_name).values(archived_at=None))
        conn.execute(columns.delete().where(columns.c.table_name == table_name, columns.c.archived_at.is_(None)))
        for spec in schema.specs.get(table_name, {}).values():
            conn.execute(columns.insert().values(table_name=table_name, column_name=spec.name, entity=entity, field=spec.field, spec=spec.to_json(), archived_at=None))
    for table_name, phys, old in archived:
        conn.execute(columns.delete().where(columns.c.table_name == table_name, columns.c.column_name == phys))
        conn.execute(columns.insert().values(table_name=table_name, column_name=phys, entity=wanted.get(table_name, ""), field=old.field, spec=old.to_json(), archived_at=now))
    for step in plan.steps:
        if step.action == "archive_table":
            conn.execute(tables.update().where(tables.c.table_name == step.table).values(archived_at=now))
