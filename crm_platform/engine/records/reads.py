"""Reading records through the record service: one record (404 unless visible, 403 unless the
action is allowed on it), which of some records an action is allowed on, list pages with filters,
sorting, search and rules-language conditions, and a record's history. RecordService inherits
this; it supplies `site`, `entity`, `table`, `_system`, `_relations` and `hooks`."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from crm_platform.engine import clock
from crm_platform.engine.records.actor import Actor
from crm_platform.engine.records.aggregates import table_for as aggregate_tables
from crm_platform.engine.records.errors import BadRequest, FieldError, Forbidden, NotFound
from crm_platform.engine.records.history import add_reference_titles, read_history
from crm_platform.engine.records.list_query import ListQuery, Page, apply_query, order_by
from crm_platform.engine.records.serialize import add_titles, row_to_dict
from crm_platform.metadata.model import Entity
from crm_platform.rules import SqlContext, checked_expression, compile_filter

if TYPE_CHECKING:
    from crm_platform.engine.records.relations import RelationWriter
    from crm_platform.engine.records.rule_hooks import RuleHooks
    from crm_platform.engine.site import Site


class RecordReads:
    """The read side of RecordService, which supplies what is declared here."""

    site: Site
    entity: Callable[[str], Entity]
    table: Callable[[Entity], sa.Table]
    _system: Callable[[str], sa.Table]
    _relations: Callable[[sa.Connection], RelationWriter]
    hooks: RuleHooks

    def get(self, actor: Actor, entity_name: str, record_id: int, include_deleted: bool = False) -> dict[str, Any]:
        entity = self.entity(entity_name)
        with self.site.engine.connect() as conn:
            self._visible(conn, actor, entity, record_id, "read", include_deleted)
            return self._get(conn, actor, entity, record_id, include_deleted)

    def check(self, actor: Actor, entity_name: str, record_id: int, action: str) -> None:
        """404 unless the actor sees the record, 403 unless they may do `action` on it."""
        entity = self.entity(entity_name)
        with self.site.engine.connect() as conn:
            self._visible(conn, actor, entity, record_id, action)

    def permitted_ids(self, actor: Actor, entity_name: str, ids: Any, action: str) -> set[int]:
        """Which of `ids` the actor may `action` (update, delete...), in one query: what the
        screens show buttons for. Empty when the role lacks the action."""
        entity = self.entity(entity_name)
        wanted = {i for i in ids if isinstance(i, int)}
        if not wanted or not self.site.access.can(actor, entity, action):
            return set()
        table = self.table(entity)
        allowed = self.site.access.row_filter(actor, entity, table, action)
        with self.site.engine.connect() as conn:
            return set(conn.execute(sa.select(table.c.id).where(table.c.id.in_(wanted), allowed)).scalars())

    def _visible(self, conn: sa.Connection, actor: Actor, entity: Entity, record_id: int, action: str, include_deleted: bool = False) -> Any:
        """The row when the actor may see it (else 404) and may do `action` on it (else 403)."""
        table = self.table(entity)
        access = self.site.access
        readable = access.row_filter(actor, entity, table, "read")
        query = sa.select(table).where(table.c.id == record_id, readable)
        if action != "read" and conn.dialect.name == "postgresql":
            query = query.with_for_update(of=table)
        row = conn.execute(query).mappings().first()
        if row is None or (row["deleted_at"] is not None and not include_deleted):
            raise NotFound(f"{entity.name} {record_id} not found")
        if action != "read":
            allowed = access.row_filter(actor, entity, table, action)
            if conn.execute(sa.select(table.c.id).where(table.c.id == record_id, allowed)).first() is None:
                raise Forbidden(f"your role does not allow {action} on this {entity.label.en}")
        return row

    def _get(self, conn: sa.Connection, actor: Actor, entity: Entity, record_id: int, include_deleted: bool = False) -> dict[str, Any]:
        table = self.table(entity)
        row = conn.execute(sa.select(table).where(table.c.id == record_id)).mappings().first()
        if row is None or (row["deleted_at"] is not None and not include_deleted):
            raise NotFound(f"{entity.name} {record_id} not found")
        record = row_to_dict(entity, row)
        self._relations(conn).read_into(entity, record)
        add_titles(conn, self.site.registry, self.site.schema.tables, entity, [record], self._system("crm_user"))
        for f in entity.fields:
            if f.type == "child_table" and f.entity and record.get(f.name):
                child = self.site.registry.entity(f.entity)
                for row_record in record[f.name]:
                    self.site.access.strip_hidden(actor, child, row_record)
        return self.site.access.strip_hidden(actor, entity, record)

    def list(self, actor: Actor, entity_name: str, query: ListQuery) -> Page:
        entity = self.entity(entity_name)
        table = self.table(entity)
        access = self.site.access
        hidden = access.hidden_fields(actor, entity)
        used = {f.field for f in query.filters} | {k.field for k in query.sort}
        if used & hidden:
            names = ", ".join(sorted(used & hidden))
            raise Forbidden(f"you may not filter or sort by {names}: hidden for your role", [FieldError(n, "hidden for your role", "forbidden_field") for n in sorted(used & hidden)])
        base = apply_query(sa.select(table).where(access.row_filter(actor, entity, table, "read")), entity, table, query, hidden)
        for expression in query.expressions:
            base = base.where(self._rule_filter(actor, entity, table, expression, hidden))
        count = sa.select(sa.func.count()).select_from(base.with_only_columns(table.c.id).subquery())
        rows_query = base.order_by(*order_by(entity, table, query.sort)).limit(query.page_size).offset((query.page - 1) * query.page_size)
        with self.site.engine.connect() as conn:
            total = conn.execute(count).scalar_one()
            records = [row_to_dict(entity, row) for row in conn.execute(rows_query).mappings()]
            add_titles(conn, self.site.registry, self.site.schema.tables, entity, records, self._system("crm_user"))
        return Page([access.strip_hidden(actor, entity, r) for r in records], total, query.page, query.page_size)

    def _rule_filter(self, actor: Actor, entity: Entity, table: sa.Table, expression: str, hidden: set[str]) -> Any:
        """A rules-language condition as SQL (400 naming the position when it does not check)."""
        checked = checked_expression(expression, self.site.registry, entity.name, "filter")
        errors = list(checked.errors)
        if not errors and hidden & checked.dependencies.fields:
            names = ", ".join(sorted(hidden & checked.dependencies.fields))
            raise Forbidden(f"you may not filter by {names}: hidden for your role", [FieldError("filter", f"{names} is hidden for your role", "forbidden_field")])
        if errors:
            details = [FieldError("filter", e.render(), "bad_filter", {"line": e.line, "column": e.column}) for e in errors]
            raise BadRequest("the filter is not valid: " + errors[0].message, details)
        context = SqlContext(self.hooks.user_info(actor), clock.now())
        access = self.site.access

        def visible(name: str, rows: Any) -> Any:  # a total over other records counts what the user may read
            return access.row_filter(actor, self.site.registry.entity(name), rows, "read")

        return compile_filter(checked, table, aggregate_tables(self.site), context, self.site.engine.dialect.name, visible)

    def history(self, actor: Actor, entity_name: str, record_id: int) -> list[dict[str, Any]]:
        entity = self.entity(entity_name)
        with self.site.engine.connect() as conn:
            self._visible(conn, actor, entity, record_id, "read", include_deleted=True)
            rows = read_history(conn, self._system("crm_history"), self._system("crm_user"), entity.name, record_id)
            add_reference_titles(conn, self.site.registry, self.site.schema.tables, entity, rows)
        hidden = self.site.access.hidden_fields(actor, entity)
        hidden |= {f"{name}_currency" for name in hidden}
        return [row for row in rows if row["field"] not in hidden]


__all__ = ["RecordReads"]
