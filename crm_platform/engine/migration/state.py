"""What the platform last applied: the crm_schema_table and crm_schema_column rows."""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa

from crm_platform.engine.entity_tables import ColumnSpec, Schema


@dataclass
class TableState:
    entity: str
    kind: str
    archived: bool
    active: dict[str, ColumnSpec] = field(default_factory=dict)  # column name -> spec
    archived_columns: dict[str, ColumnSpec] = field(default_factory=dict)  # physical name -> spec


def read_state(conn: sa.Connection, schema: Schema) -> dict[str, TableState]:
    if not sa.inspect(conn).has_table("crm_schema_table"):
        return {}
    tables = schema.system["crm_schema_table"]
    columns = schema.system["crm_schema_column"]
    result: dict[str, TableState] = {}
    for row in conn.execute(sa.select(tables)):
        result[row.table_name] = TableState(row.entity, row.kind, row.archived_at is not None)
    for row in conn.execute(sa.select(columns)):
        state = result.get(row.table_name)
        if state is None:
            continue
        spec = ColumnSpec.from_json(row.spec)
        if row.archived_at is None:
            state.active[row.column_name] = spec
        else:
            state.archived_columns[row.column_name] = spec
    return result


def archived_name(column: str, taken: set[str]) -> str:
    base = f"archived__{column}"
    name, n = base, 2
    while name in taken:
        name, n = f"{base}_{n}", n + 1
    return name
