"""Writing an import's new records in batches, in the import's transaction.

Each row is checked on its own, exactly as a create through the record service is
(`RecordService.new_values`: defaults, formulas, required fields, references, rules), then waits
in the batch; `flush()` writes the batch with `RecordService.write_new` (one counter bump for
the auto-numbers, one INSERT per run of rows with the same columns, history, links, roll-ups),
then starts each record's workflow. The search index follows by itself (database triggers on
SQLite, GIN indexes on PostgreSQL).

A batch is written before anything could need its records: the import flushes when a row names
a waiting row (a reference by title, a key), and an entity whose rules read other records
(lookups, related records, roll-ups) is written row by row, so every rule sees the records
of the rows before it, as it would one create at a time.

When the database refuses a batch (a unique index), the batch's savepoint is rolled back and
its rows are written one by one, each in a savepoint: only the refused rows fail.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from crm_platform.engine.records.actor import Actor
from crm_platform.engine.records.errors import FieldError, RecordError
from crm_platform.engine.records.payload import Payload
from crm_platform.metadata.model import Entity

if TYPE_CHECKING:
    from crm_platform.engine.records.service import RecordService
    from crm_platform.engine.site import Site

WRITE_BATCH = 250  # new records written together


@dataclass
class NewRow:
    """A checked row waiting to be written."""

    number: int
    cells: list[Any]
    payload: Payload
    values: dict[str, Any]
    key: Any
    title: str | None


def reads_other_records(site: Site, entity: Entity) -> bool:
    """Whether a rule of the entity (validation, default, formula...) reads anything beyond the
    record itself: then its rows are written one at a time."""
    rules = site.rules
    expressions = [rule.expression for rule in rules.ruleset.of(entity.name)]
    expressions += [expression for _name, expression in rules.formula_fields.get(entity.name, [])]
    for expression in expressions:
        deps = expression.checked.dependencies
        if deps.paths or deps.relations or deps.lookups:
            return True
    return False


class BatchWriter:
    def __init__(self, site: Site, service: RecordService, conn: sa.Connection, actor: Actor, entity: Entity,
                 written: Callable[[NewRow, int], None], refused: Callable[[NewRow, list[FieldError]], None],
                 batch_size: int = WRITE_BATCH) -> None:
        self.site = site
        self.service = service
        self.conn = conn
        self.actor = actor
        self.entity = entity
        self.flow = site.workflows.of(entity.name)
        self.written = written
        self.refused = refused
        self.batch_size = batch_size
        self.rows: list[NewRow] = []
        self.titles: set[str] = set()  # folded titles of the waiting rows
        self.keys: set[Any] = set()

    def start_state(self, payload: Payload) -> None:
        """A new record starts in its workflow's initial state (as RecordService.create says)."""
        if self.flow is None:
            return
        given = payload.values.get(self.flow.field)
        if given is not None and given != self.flow.initial:
            payload.errors.append(FieldError(self.flow.field, f"a new {self.entity.label.en} starts in state '{self.flow.initial}'; other states are reached through transitions", "workflow"))
        payload.values[self.flow.field] = self.flow.initial

    def add(self, row: NewRow, folded_title: str | None) -> None:
        self.rows.append(row)
        if folded_title:
            self.titles.add(folded_title)
        if row.key is not None:
            self.keys.add(row.key)
        if len(self.rows) >= self.batch_size:
            self.flush()

    def waiting(self, folded_title: str | None = None, key: Any = None) -> bool:
        return bool(self.rows) and ((folded_title is not None and folded_title in self.titles) or (key is not None and key in self.keys))

    def flush(self) -> None:
        rows, self.rows = self.rows, []
        self.titles, self.keys = set(), set()
        if not rows:
            return
        savepoint = self.conn.begin_nested()
        try:
            ids = self._write(rows)
        except (sa.exc.IntegrityError, sa.exc.DataError, RecordError):
            savepoint.rollback()
        else:
            savepoint.commit()
            for row, record_id in zip(rows, ids, strict=True):
                self.written(row, record_id)
            return
        for row in rows:  # one by one: only the rows the database refuses fail
            savepoint = self.conn.begin_nested()
            try:
                record_id = self._write([row])[0]
            except (sa.exc.IntegrityError, sa.exc.DataError) as exc:
                savepoint.rollback()
                self.refused(row, [database_error(self.entity, exc)])
            except RecordError as exc:
                savepoint.rollback()
                self.refused(row, exc.details or [FieldError("_record", exc.message, exc.code)])
            else:
                savepoint.commit()
                self.written(row, record_id)

    def _write(self, rows: list[NewRow]) -> list[int]:
        ids = self.service.write_new(self.conn, self.actor, self.entity, [(row.payload, row.values) for row in rows])
        if self.flow is not None:
            for record_id in ids:
                self.site.workflows.start(self.conn, self.flow, record_id, self.actor)  # timers: delivered after the commit
        return ids


def database_error(entity: Entity, exc: Exception) -> FieldError:
    """A refusal by the database (a unique index): named on the field when the message tells it."""
    text = str(getattr(exc, "orig", exc))
    for f in entity.fields:
        if re.search(rf"\b{re.escape(f.name)}\b", text):
            return FieldError(f.name, f"another {entity.label.en} has this {f.label.en} already", "duplicate")
    return FieldError("_record", f"the database refused the row: {text.splitlines()[0][:200]}", "database")
