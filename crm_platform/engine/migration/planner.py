"""The migration planner: diff the Registry's tables against the live schema and applied state."""

from __future__ import annotations

from collections.abc import Iterator

import sqlalchemy as sa

from crm_platform.engine.entity_tables import ColumnSpec, Schema, constraint_name
from crm_platform.engine.migration.conversions import fits, is_same_family, is_widening
from crm_platform.engine.migration.plan import Plan, Step
from crm_platform.engine.migration.state import TableState, archived_name, read_state
from crm_platform.engine.system_tables import SYSTEM_TABLE_NAMES
from crm_platform.metadata.model import Registry


def make_plan(conn: sa.Connection, registry: Registry, schema: Schema, allow_destructive: bool = False) -> Plan:
    plan = Plan(registry.content_hash, allow_destructive=allow_destructive)
    inspector = sa.inspect(conn)
    existing = set(inspector.get_table_names())
    missing_system = [t for t in SYSTEM_TABLE_NAMES if t not in existing]
    if missing_system:
        plan.steps.append(Step("create_system_tables", ",".join(missing_system), f"create platform tables {', '.join(missing_system)}"))
    state = read_state(conn, schema) if not missing_system else {}
    for entity in registry.entities.values():
        table = schema.tables[entity.name]
        if table.name not in existing:
            cols = ", ".join(schema.specs[table.name]) or "no fields"
            plan.steps.append(Step("create_table", table.name, f"create table {table.name} for entity '{entity.name}' ({cols})"))
            continue
        table_state = state.get(table.name) or TableState(entity.name, "entity", False)
        plan.steps.extend(_table_steps(conn, registry, schema, table, table_state, inspector))
    for (entity_name, field_name), junction in schema.junctions.items():
        if junction.name not in existing:
            plan.steps.append(Step("create_table", junction.name, f"create link table {junction.name} for {entity_name}.{field_name}"))
    wanted = {t.name for t in schema.tables.values()} | {j.name for j in schema.junctions.values()}
    for name, table_state in state.items():
        if name not in wanted and not table_state.archived and name in existing:
            plan.steps.append(Step("archive_table", name, f"archive table {name}: entity '{table_state.entity}' is no longer in the packs (its data is kept)"))
    return plan


def _table_steps(conn: sa.Connection, registry: Registry, schema: Schema, table: sa.Table, state: TableState, inspector: sa.Inspector) -> Iterator[Step]:
    live = {c["name"] for c in inspector.get_columns(table.name)}
    desired = schema.specs[table.name]
    entity = registry.entities[state.entity] if state.entity in registry.entities else None
    consumed: set[str] = set()
    taken = set(live)
    if state.archived:
        yield Step("restore_table", table.name, f"restore archived table {table.name}")
    for col in table.columns:
        if col.name not in desired and col.name not in live:
            yield Step("add_system_column", table.name, f"add system column {table.name}.{col.name}", column=col.name)
    for name, spec in desired.items():
        field_def = entity.field(spec.field) if entity else None
        if name in state.active and name in live:
            consumed.add(name)
            yield from _change_steps(conn, table.name, name, state.active[name], spec)
            continue
        renamed = field_def.renamed_from if field_def else None
        old_name = name.replace(spec.field, renamed, 1) if renamed else None
        if old_name and old_name in state.active and old_name in live and old_name not in desired:
            consumed.add(old_name)
            yield Step("rename_column", table.name, f"rename column {table.name}.{old_name} to {name} (data kept)", column=old_name, new_name=name, spec=spec)
            yield from _change_steps(conn, table.name, old_name, state.active[old_name], spec, renamed_to=name)
            continue
        restorable = next((phys for phys, old in state.archived_columns.items() if old.name == name and old.storage_equal(spec) and phys in live), None)
        if restorable and name not in live:
            yield Step("restore_column", table.name, f"restore archived column {table.name}.{restorable} as {name} (its data comes back)", column=restorable, new_name=name, spec=spec)
            continue
        if name in live:
            # A column we did not record (e.g. state lost): adopt it when it has the same name.
            yield Step("adopt_column", table.name, f"record existing column {table.name}.{name}", column=name, spec=spec)
            continue
        yield Step("add_column", table.name, f"add column {table.name}.{name} ({_describe(spec)})", column=name, spec=spec)
    for name, old in state.active.items():
        if name in consumed or name in desired or name not in live:
            continue
        target = archived_name(name, taken)
        taken.add(target)
        yield Step("archive_column", table.name, f"archive column {table.name}.{name} as {target}: field '{old.field}' was removed (data kept)", column=name, new_name=target, old=old)
    indexes = {ix["name"] for ix in inspector.get_indexes(table.name)}
    for index in table.indexes:
        if index.name not in indexes and all(c.name in live or c.name in desired for c in index.columns):
            yield Step("create_index", table.name, f"create index {index.name}", column=index.name)


def _change_steps(conn: sa.Connection, table: str, column: str, old: ColumnSpec, new: ColumnSpec, renamed_to: str | None = None) -> Iterator[Step]:
    target = renamed_to or column
    if old.storage_equal(new):
        if old != new:
            yield Step("update_state", table, f"record new settings of {table}.{target}", column=target, spec=new, old=old)
        return
    if is_widening(old, new):
        yield Step("widen_column", table, f"widen {table}.{target} from {_describe(old)} to {_describe(new)} (values converted in place)", column=target, spec=new, old=old)
        return
    bad = count_not_fitting(conn, table, column, old, new)
    total = conn.execute(sa.select(sa.func.count()).select_from(sa.table(table, sa.column(column))).where(sa.column(column).isnot(None))).scalar_one()
    if is_same_family(old, new):
        why = f"narrowing {_describe(old)} to {_describe(new)}: {bad} of {total} stored value(s) would not fit"
    else:
        why = f"incompatible change {_describe(old)} to {_describe(new)}: {total} stored value(s) cannot be converted"
        bad = total
    yield Step("replace_column", table, f"change {table}.{target} from {_describe(old)} to {_describe(new)}", column=target, spec=new, old=old, refusal=why if bad or not is_same_family(old, new) else None)


def count_not_fitting(conn: sa.Connection, table: str, column: str, old: ColumnSpec, new: ColumnSpec) -> int:
    from crm_platform.engine.entity_tables import sa_type

    col = sa.column(column, sa_type(old))
    query = sa.select(col).select_from(sa.table(table, col)).where(col.isnot(None))
    if not is_same_family(old, new):
        return conn.execute(sa.select(sa.func.count()).select_from(query.subquery())).scalar_one()
    return sum(1 for (value,) in conn.execute(query) if not fits(new, value))


def _describe(spec: ColumnSpec) -> str:
    if spec.kind == "string":
        return f"text({spec.length})"
    if spec.kind == "decimal":
        return f"decimal({spec.precision},{spec.scale})"
    if spec.kind == "reference":
        return f"reference to {spec.target}"
    return spec.kind


__all__ = ["make_plan", "constraint_name"]
