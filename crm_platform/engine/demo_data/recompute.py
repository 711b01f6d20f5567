"""Roll-ups over other entities' rows (an account's `sum(payment.amount)`, a contract's paid
amount) cannot be known while rows are generated in batches: after the load, the formulas of
every entity that has them are recomputed here, in batches, for the generated rows and for the
existing rows that generated rows point at. Entities are done in dependency order (a contract's
paid amount before the account totals that read it).

The same compiled rules as on a save; what a formula reads comes from preloaded rows (one query
per relation and batch), references through the database."""

from __future__ import annotations

import datetime as dt
import itertools
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from crm_platform.engine.demo_data.row_rules import EntityRules
from crm_platform.engine.demo_data.rows import Scope
from crm_platform.engine.records.aggregates import run_aggregate
from crm_platform.metadata.model import Entity
from crm_platform.rules import EvalContext, Relation, RuleError, UserInfo

if TYPE_CHECKING:
    from crm_platform.engine.site import Site

BATCH = 1000
Key = tuple[str, str, str]  # relation kind, entity, field


def rolled_up(site: Site) -> list[str]:
    """Entities whose formulas add up rows of other entities, those they read first."""
    reads: dict[str, set[str]] = {}
    for name, entity in site.registry.entities.items():
        rules = EntityRules(site, entity)
        if rules.rolls_up_others:
            reads[name] = {r.entity for _, e in rules.formulas for r in e.checked.dependencies.relations if r.kind in ("reverse", "all")}
    ordered: list[str] = []

    def visit(name: str, seen: frozenset[str]) -> None:
        if name in ordered or name in seen:
            return
        for other in sorted(reads[name]):
            if other in reads:
                visit(other, seen | {name})
        ordered.append(name)

    for name in sorted(reads):
        visit(name, frozenset())
    return ordered


class Recompute:
    def __init__(self, site: Site, users: dict[int, UserInfo], now: dt.datetime) -> None:
        self.site = site
        self.users = users
        self.now = now
        self.tables = site.schema.tables

    def outside_owners(self, conn: sa.Connection, entity: Entity, generated: dict[str, tuple[int, int]], extra: dict[str, set[int]]) -> set[int]:
        """Existing rows of `entity` (not generated) that generated rows, or the `extra` rows
        recomputed before, point at through the reference fields its roll-ups follow."""
        found: set[int] = set()
        low, high = generated.get(entity.name, (0, 0))
        for _, expression in EntityRules(self.site, entity).formulas:
            for relation in expression.checked.dependencies.relations:
                if relation.kind == "all" and relation.entity in generated:
                    # tied by a condition, not a reference: every existing row may count new rows
                    table = self.tables[entity.name]
                    outside = sa.or_(table.c.id < low, table.c.id >= high)
                    found.update(conn.execute(sa.select(table.c.id).where(outside, table.c.deleted_at.is_(None))).scalars())
                if relation.kind != "reverse":
                    continue
                table = self.tables[relation.entity]
                column = table.c[relation.field]
                query = sa.select(column).where(column.isnot(None), sa.or_(column < low, column >= high)).distinct()
                if relation.entity in generated:
                    first, after = generated[relation.entity]
                    found.update(conn.execute(query.where(table.c.id >= first, table.c.id < after)).scalars())
                for chunk in _chunks(sorted(extra.get(relation.entity, ()))):
                    found.update(conn.execute(query.where(table.c.id.in_(chunk))).scalars())
        return found

    def run(self, entity: Entity, ids: Iterable[int], on_batch: Callable[[int], None] | None = None) -> int:
        """Recompute the formulas of these rows; returns how many rows changed."""
        rules = EntityRules(self.site, entity)
        table = self.tables[entity.name]
        names = [name for name, _ in rules.formulas]
        currencies = {name: cur for name, cur in rules.money if name in names}
        statement = table.update().where(table.c.id == sa.bindparam("_id")).values(
            {c: sa.bindparam(c) for c in [*names, *(f"{n}_currency" for n in currencies)]})
        changed = 0
        for chunk in _chunks(ids):
            with self.site.engine.begin() as conn:
                updates = self._batch(conn, entity, rules, table, chunk, names, currencies)
                if updates:
                    conn.execute(statement, updates)
                changed += len(updates)
            if on_batch is not None:
                on_batch(len(chunk))
        return changed

    def _batch(self, conn: sa.Connection, entity: Entity, rules: EntityRules, table: sa.Table, chunk: list[int],
               names: list[str], currencies: dict[str, str]) -> list[dict[str, Any]]:
        rows = [dict(r) for r in conn.execute(sa.select(table).where(table.c.id.in_(chunk))).mappings()]
        groups = self._preload(conn, entity, rules, chunk)
        scope = Scope(lambda: conn, self.tables, self.users, self.now)

        def children(relation: Relation, owner: Any) -> list[dict[str, Any]]:
            return groups.get((relation.kind, relation.entity, relation.field), {}).get(owner.get("id"), [])

        def aggregate(query: Any, context: EvalContext) -> Any:
            return run_aggregate(self.site, conn, query, context)

        updates = []
        for row in rows:
            before = {n: row.get(n) for n in names}
            context = EvalContext(row, None, self.users.get(row.get("owner_id") or 0, UserInfo()), clock=scope._clock, today=scope._today,
                                  fetch=scope.fetch, lookup=scope.lookup, children=children, aggregate=aggregate)
            for name, expression in rules.formulas:
                try:
                    row[name] = rules.store(entity, name, expression.evaluate(context))
                except (RuleError, ValueError):
                    continue  # as on a save: a roll-up that cannot be computed keeps its value
            if any(row.get(n) != before[n] for n in names):
                update = {"_id": row["id"], **{n: row.get(n) for n in names}}
                update.update({f"{n}_currency": (cur if row.get(n) is not None else None) for n, cur in currencies.items()})
                updates.append(update)
        return updates

    def _preload(self, conn: sa.Connection, entity: Entity, rules: EntityRules, chunk: list[int]) -> dict[Key, dict[int, list[dict[str, Any]]]]:
        groups: dict[Key, dict[int, list[dict[str, Any]]]] = {}
        relations = {(r.kind, r.entity, r.field): r for _, e in rules.formulas for r in e.checked.dependencies.relations}
        for key, relation in relations.items():
            grouped: dict[int, list[dict[str, Any]]] = defaultdict(list)
            target = self.tables[relation.entity]
            live = target.c.deleted_at.is_(None)
            if relation.kind == "all":
                continue  # totalled in SQL per row (aggregate), nothing to preload
            if relation.kind in ("reverse", "child"):
                column = target.c[relation.field] if relation.kind == "reverse" else target.c.parent_id
                for row in conn.execute(sa.select(target).where(column.in_(chunk), live)).mappings():
                    grouped[row[column.name]].append(dict(row))
            else:
                junction = self.site.schema.junctions[(entity.name, relation.field)]
                query = sa.select(junction.c.source_id, target).join(target, target.c.id == junction.c.target_id).where(junction.c.source_id.in_(chunk), live)
                for row in conn.execute(query).mappings():
                    grouped[row["source_id"]].append({k: v for k, v in row.items() if k != "source_id"})
            groups[key] = grouped
        return groups


def _chunks(ids: Iterable[int]) -> Iterable[list[int]]:
    iterator = iter(ids)
    while chunk := list(itertools.islice(iterator, BATCH)):
        yield chunk
