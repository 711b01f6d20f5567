"""A row being generated and the scope it is generated in: ids, the rows of the current batch
(what rules read through references and roll-ups), the rows under the current root row
(`related`), the pools `random` draws from, owners as rules see them, the run's clock."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from crm_platform.rules import EvalContext, Relation, UserInfo

if TYPE_CHECKING:
    from crm_platform.engine.demo_data.model import EntityPlan
    from crm_platform.rules import CompiledExpression


class IdPool:
    """Ids `random` draws from: rows that existed before the run, then the ones generated so far."""

    def __init__(self, existing: Sequence[int], first_new: int) -> None:
        self.existing = list(existing)
        self.first_new = first_new
        self.next_new = first_new

    def __len__(self) -> int:
        return len(self.existing) + self.next_new - self.first_new

    def draw(self, rng: random.Random) -> int:
        index = int(rng.random() * len(self))
        return self.existing[index] if index < len(self.existing) else self.first_new + index - len(self.existing)


class Row:
    """One record being generated: its stored values (child rows and N:N ids under their field
    names), the row it is generated under and the scope."""

    __slots__ = ("plan", "values", "parent", "scope", "_context")

    def __init__(self, plan: EntityPlan, values: dict[str, Any], parent: Row | None, scope: Scope) -> None:
        self.plan = plan
        self.values = values
        self.parent = parent
        self.scope = scope
        self._context: EvalContext | None = None

    @property
    def id(self) -> int:
        return self.values["id"]

    def ancestor(self, entity: str) -> Row | None:
        row = self.parent
        while row is not None and row.plan.name != entity:
            row = row.parent
        return row

    def context(self) -> EvalContext:
        if self._context is None:
            self._context = self.scope.context(self.values)
        return self._context

    def eval(self, expression: CompiledExpression) -> Any:
        return expression.evaluate(self.context())


class Scope:
    """Everything rows of one run see; the batch part is cleared after each batch is written."""

    def __init__(self, conn_factory: Any, tables: dict[str, sa.Table], users: dict[int, UserInfo], now: dt.datetime) -> None:
        self.conn_factory = conn_factory  # () -> the connection of the current batch
        self.tables = tables
        self.users = users
        self.now = now
        self.today = now.date()
        self.pools: dict[str, IdPool] = {}
        self.batch: dict[tuple[str, int], dict[str, Any]] = {}
        self.under_root: dict[str, list[Row]] = {}
        self._cache: dict[tuple[str, int], dict[str, Any] | None] = {}

    # -- ids ---------------------------------------------------------------------------------------
    def allocate(self, entity: str) -> int:
        pool = self.pools[entity]
        value = pool.next_new
        pool.next_new += 1
        return value

    def pool(self, entity: str) -> IdPool | None:
        return self.pools.get(entity)

    # -- rows --------------------------------------------------------------------------------------
    def add(self, row: Row) -> None:
        self.batch[(row.plan.name, row.id)] = row.values
        if row.plan.mode != "pool":
            self.under_root.setdefault(row.plan.name, []).append(row)

    def related(self, entity: str, row: Row) -> list[Row]:
        return self.under_root.get(entity, [])

    def new_root(self) -> None:
        self.under_root = {}

    def end_batch(self) -> None:
        self.batch = {}
        if len(self._cache) > 50_000:
            self._cache = {}

    # -- what rules see -----------------------------------------------------------------------------
    def context(self, record: dict[str, Any]) -> EvalContext:
        user = self.users.get(record.get("owner_id") or 0, _NOBODY)
        return EvalContext(record, None, user, clock=self._clock, today=self._today, fetch=self.fetch, lookup=self.lookup, children=self.children)

    def _clock(self) -> dt.datetime:
        return self.now

    def _today(self) -> dt.date:
        return self.today

    def fetch(self, entity: str, record_id: Any) -> dict[str, Any] | None:
        if record_id is None:
            return None
        key = (entity, record_id)
        found = self.batch.get(key)
        if found is not None:
            return found
        if key not in self._cache:
            table = self.tables.get(entity)
            row = None
            if table is not None:
                query = sa.select(table).where(table.c.id == record_id, table.c.deleted_at.is_(None))
                row = self.conn_factory().execute(query).mappings().first()
            self._cache[key] = dict(row) if row is not None else None
        return self._cache[key]

    def existing_values(self, entity: str, column: str) -> set[Any]:
        table = self.tables[entity]
        return set(self.conn_factory().execute(sa.select(table.c[column]).where(table.c[column].isnot(None))).scalars())

    def lookup(self, entity: str, key_field: str, key_value: Any, return_field: str) -> Any:
        table = self.tables.get(entity)
        if table is None or key_field not in table.c or return_field not in table.c:
            return None
        query = sa.select(table.c[return_field]).where(table.c[key_field] == key_value, table.c.deleted_at.is_(None)).order_by(table.c.id).limit(1)
        return self.conn_factory().execute(query).scalar()

    def children(self, relation: Relation, owner: Any) -> Sequence[Any]:
        """Child rows and N:N targets of a generated row (kept under the field's name); rows of
        other entities pointing at it ("reverse") are added up after the load (recompute)."""
        held = owner.get(relation.field) if relation.kind in ("child", "many") else None
        if not held:
            return ()
        if relation.kind == "child":
            return held
        return [r for r in (self.fetch(relation.entity, i) for i in held) if r is not None]


_NOBODY = UserInfo()
