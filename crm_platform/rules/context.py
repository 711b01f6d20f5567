"""What a compiled rule can see when it runs: the record, its prior state, the user, the clock,
and callbacks the engine supplies for related records, lookups and child rows.

Nothing here touches a database: the engine answers the callbacks (and may cache them).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

Record = Mapping[str, Any]


@dataclass(frozen=True)
class UserInfo:
    """The current user as rules see it (`$user.id`, `$user.role`, ...)."""

    id: int | None = None
    name: str | None = None
    email: str | None = None
    role: str | None = None  # the primary role
    roles: tuple[str, ...] = ()
    unit: int | None = None

    def attribute(self, name: str) -> Any:
        value = getattr(self, name)
        return list(value) if isinstance(value, tuple) else value


ANONYMOUS = UserInfo()


@dataclass(frozen=True)
class Relation:
    """Child rows a roll-up reads.

    kind "child": the child table `entity` of field `field` (rows with parent_id = record id);
    kind "many": the targets `entity` of the N:N field `field`;
    kind "reverse": rows of `entity` whose reference field `field` points at the record;
    kind "all": every row of `entity`, tied to the record only by the roll-up's `where`
      (which names the record as `$record`).
    """

    kind: str
    entity: str
    field: str
    name: str  # as written in the rule


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _no_fetch(entity: str, record_id: Any) -> Record | None:
    return None


def _no_lookup(entity: str, key_field: str, key_value: Any, return_field: str) -> Any:
    return None


def _no_children(relation: Relation, record: Record) -> Sequence[Record]:
    return ()


def _no_aggregate(query: Any, context: EvalContext) -> Any:
    return None  # no database to total in (e.g. a generated row before it is written)


@dataclass
class EvalContext:
    """The world of one evaluation.

    `record` maps field names (and system columns such as id, owner_id) to stored values
    (Decimal for money, date for dates, list for multi-picklists, id for references; a
    percent as stored, 12.5 for 12.5 %). `prior` is the record before this change, or None
    for a new record. Callbacks:
      fetch(entity, id) -> the related record (for `account.grade`), or None; for the org
        unit entity (types.UNIT_ENTITY) a mapping with the unit's `path` ("/1/4/", ids from
        the top), which within_unit() compares;
      lookup(entity, key_field, key_value, return_field) -> a value of the first matching,
        not deleted record (by id), or None;
      children(relation, record) -> the relation's non-deleted rows for `record`;
      aggregate(query, context) -> the value of a roll-up over records of another entity
        that do not refer to this one (`sum(order.total where owner_id = $record.rep)`):
        `query` is a `compile_sql.AggregateQuery`, which the engine runs in SQL.
    `outer` is the record `$record` names inside a roll-up's `where` (None: `record` itself).
    `clock` gives the current UTC datetime; `today` the current date (default: the clock's
    UTC date).
    """

    record: Record
    prior: Record | None = None
    user: UserInfo = ANONYMOUS
    clock: Callable[[], dt.datetime] = _utcnow
    today: Callable[[], dt.date] | None = None
    fetch: Callable[[str, Any], Record | None] = _no_fetch
    lookup: Callable[[str, str, Any, str], Any] = _no_lookup
    children: Callable[[Relation, Record], Sequence[Record]] = _no_children
    aggregate: Callable[[Any, EvalContext], Any] = _no_aggregate
    outer: Record | None = None

    @property
    def this(self) -> Record:
        """The record `$record` names: the rule's own record, also inside a roll-up."""
        return self.outer if self.outer is not None else self.record

    def current_date(self) -> dt.date:
        if self.today is not None:
            return self.today()
        return self.clock().astimezone(dt.UTC).date()

    def for_row(self, row: Record) -> EvalContext:
        """The context of a child row (for the condition of a roll-up's `where`)."""
        return EvalContext(
            row, None, self.user, self.clock, self.today, self.fetch, self.lookup, self.children,
            self.aggregate, self.this,
        )


@dataclass(frozen=True)
class SqlContext:
    """What a filter compiled to SQL binds as constants: the user and the clock, read once."""

    user: UserInfo = ANONYMOUS
    now: dt.datetime = field(default_factory=_utcnow)
    today: dt.date | None = None

    def current_date(self) -> dt.date:
        return self.today if self.today is not None else self.now.astimezone(dt.UTC).date()
