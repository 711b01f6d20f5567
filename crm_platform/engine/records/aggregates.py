"""Roll-ups over records that do not refer to the record they total (a sales target's actual:
`sum(sales_order.total_amount where owner_id = $record.rep and ...)`), run in SQL.

Owns: which tables a rule's SQL may read (entity tables and the org units), running such a
roll-up for one record, and finding the records whose roll-up a changed row affects, so their
formulas are recomputed in the same transaction (before and after the change).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from crm_platform.rules import EvalContext, SqlContext
from crm_platform.rules import types as rule_types
from crm_platform.rules.compile_sql import aggregate_select, owners_select
from crm_platform.rules.lib_records import AggregateQuery

if TYPE_CHECKING:
    from crm_platform.engine.site import Site


def table_for(site: Site) -> Callable[[str], sa.Table]:
    """The table of an entity, or of the org units (for within_unit())."""
    tables = site.schema.tables

    def find(name: str) -> sa.Table:
        if name == rule_types.UNIT_ENTITY:
            return site.schema.system["crm_org_unit"]
        return tables[name]

    return find


def sql_context(context: EvalContext) -> SqlContext:
    return SqlContext(context.user, context.clock(), context.current_date())


def run_aggregate(site: Site, conn: sa.Connection, query: AggregateQuery, context: EvalContext) -> Any:
    """The roll-up's value for the record of `context` (its `$record`)."""
    outer = context if context.outer is None else _as_record(context, context.outer)
    select, read = aggregate_select(query, outer, table_for(site), sql_context(context), site.engine.dialect.name)
    return read(conn.execute(select).scalar())


def _as_record(context: EvalContext, record: Any) -> EvalContext:
    return EvalContext(record, None, context.user, context.clock, context.today, context.fetch, context.lookup,
                       context.children, context.aggregate)


def queries_over(site: Site, entity_name: str) -> Iterator[tuple[str, AggregateQuery]]:
    """(owner entity, roll-up) for every formula that totals `entity_name` records it is not
    referred to by."""
    rules = site.rules
    expressions = [(owner, expr) for owner, items in rules.formula_fields.items() for _name, expr in items]
    expressions += [(rule.entity, rule.expression) for rule in rules.ruleset.rules if rule.kind == "formula"]
    seen: set[tuple[str, int]] = set()
    for owner, expression in expressions:
        checked = expression.checked
        for info in checked.calls.values():
            rollup = info.extra
            relation = getattr(rollup, "relation", None)
            if relation is None or relation.kind != "all" or relation.entity != entity_name:
                continue
            if (owner, id(rollup)) in seen:
                continue
            seen.add((owner, id(rollup)))
            yield owner, AggregateQuery(checked, rollup)


def affected_owners(site: Site, conn: sa.Connection, context: EvalContext, entity_name: str,
                    rows: list[dict[str, Any]]) -> dict[str, set[int]]:
    """The ids, by entity, of the records whose roll-ups count any of `rows` (states of one
    changed `entity_name` record: before and after)."""
    found: dict[str, set[int]] = {}
    for owner, query in queries_over(site, entity_name):
        table = site.schema.tables[owner]
        for row in rows:
            bound = _as_record(context, row)
            select = owners_select(query, table, bound, table_for(site), sql_context(context), site.engine.dialect.name)
            found.setdefault(owner, set()).update(conn.execute(select).scalars())
    return found


__all__ = ["affected_owners", "queries_over", "run_aggregate", "table_for"]
