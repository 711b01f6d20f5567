"""A small database of testkit records for comparing a filter's Python and SQL results."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa

from crm_platform.engine.entity_tables import build_schema
from crm_platform.metadata.model import Registry
from crm_platform.rules import (
    EvalContext,
    Relation,
    RuleError,
    SqlContext,
    UserInfo,
    checked_expression,
    compile_filter,
    compile_python,
)

NOW = dt.datetime(2026, 3, 15, 9, 30, tzinfo=dt.UTC)
USER = UserInfo(
    id=7, name="Ann", email="ann@example.com", role="sales", roles=("sales", "manager"), unit=3
)
SYSTEM = {"created_at": NOW, "updated_at": NOW, "version": 1}


@contextmanager
def open_database(registry: Registry, url: str | None) -> Iterator[KitDatabase]:
    """The testkit tables on in-memory SQLite, or in a fresh schema on PostgreSQL at `url`."""
    schema = build_schema(registry)
    if url is None:
        engine = sa.create_engine("sqlite://")
        schema.metadata.create_all(engine)
        yield KitDatabase(registry, engine, schema.tables)
        engine.dispose()
        return
    name = f"rules_{secrets.token_hex(5)}"
    admin = sa.create_engine(url)
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{name}"')
    sep = "&" if "?" in url else "?"
    engine = sa.create_engine(f"{url}{sep}options=-csearch_path%3D{name}")
    try:
        schema.metadata.create_all(engine)
        yield KitDatabase(registry, engine, schema.tables)
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{name}" CASCADE')
        admin.dispose()


class KitDatabase:
    def __init__(
        self, registry: Registry, engine: sa.Engine, tables: Mapping[str, sa.Table]
    ) -> None:
        self.registry = registry
        self.engine = engine
        self.tables = tables
        self.dialect = engine.dialect.name
        self.rows: dict[str, list[dict[str, Any]]] = {}

    def load(self, data: Mapping[str, Sequence[Mapping[str, Any]]]) -> None:
        """Replace the rows of the given entities (in order: parents first)."""
        with self.engine.begin() as conn:
            for entity in reversed(list(data)):
                conn.execute(self.tables[entity].delete())
            for entity, rows in data.items():
                full = [{**SYSTEM, **row} for row in rows]
                if full:
                    conn.execute(self.tables[entity].insert(), full)
        self.rows = {entity: [dict(r) for r in rows] for entity, rows in data.items()}

    # ---- the Python side ----

    def fetch(self, entity: str, record_id: Any) -> Mapping[str, Any] | None:
        return next((r for r in self.rows.get(entity, []) if r["id"] == record_id), None)

    def children(self, relation: Relation, record: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        field = "parent_id" if relation.kind == "child" else relation.field
        return [r for r in self.rows.get(relation.entity, []) if r.get(field) == record["id"]]

    def lookup(self, entity: str, key_field: str, key: Any, return_field: str) -> Any:
        rows = sorted(self.rows.get(entity, []), key=lambda r: r["id"])
        return next((r.get(return_field) for r in rows if r.get(key_field) == key), None)

    def context(self, record: Mapping[str, Any]) -> EvalContext:
        return EvalContext(
            record, None, USER, lambda: NOW, None, self.fetch, self.lookup, self.children
        )

    def python_ids(self, entity: str, text: str) -> set[int]:
        return self.python_results(entity, text)[0]

    def python_results(self, entity: str, text: str) -> tuple[set[int], set[int]]:
        """(ids where the filter holds, ids where evaluating it fails, e.g. division by zero)."""
        compiled = compile_python(checked_expression(text, self.registry, entity, "filter"))
        hits: set[int] = set()
        failed: set[int] = set()
        for row in self.rows[entity]:
            try:
                if compiled.test(self.context(row)):
                    hits.add(row["id"])
            except RuleError:
                failed.add(row["id"])
        return hits, failed

    def agree(self, entity: str, text: str) -> tuple[set[int], set[int]]:
        """(SQL ids, Python ids) over the rows where Python evaluates without a rule error."""
        hits, failed = self.python_results(entity, text)
        return self.sql_ids(entity, text) - failed, hits

    # ---- the SQL side ----

    def sql_ids(self, entity: str, text: str) -> set[int]:
        checked = checked_expression(text, self.registry, entity, "filter")
        table = self.tables[entity]
        condition = compile_filter(
            checked, table, self.tables.__getitem__, SqlContext(USER, NOW), self.dialect
        )
        with self.engine.connect() as conn:
            return {row_id for (row_id,) in conn.execute(sa.select(table.c.id).where(condition))}
