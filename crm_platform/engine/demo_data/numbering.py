"""Auto-numbers for generated rows: numbered in the period of their creation date (a record
created in 2024 gets KH-2024-00017), continuing the crm_autonumber counters, which are
advanced in each batch's transaction so later interactive creates go on from there."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from crm_platform.metadata.autonumber_format import AutoNumberFormat, parse_format
from crm_platform.metadata.model import Entity, Registry

Key = tuple[str, str, str]  # entity, field, period


class Numbering:
    def __init__(self, registry: Registry, entities: list[str]) -> None:
        self.formats: dict[tuple[str, str], AutoNumberFormat] = {}
        for name in entities:
            entity: Entity = registry.entity(name)
            for f in entity.fields:
                if f.type == "auto_number" and f.format:
                    self.formats[(name, f.name)] = parse_format(f.format)
        self.last: dict[Key, int] = {}
        self.before: dict[Key, int] = {}  # the counters as the run found them (to undo)
        self.dirty: set[Key] = set()

    def fields_of(self, entity: str) -> list[str]:
        return [f for (e, f) in self.formats if e == entity]

    def load(self, conn: sa.Connection, counters: sa.Table) -> None:
        entities = sorted({e for e, _ in self.formats})
        if not entities:
            return
        for row in conn.execute(sa.select(counters).where(counters.c.entity.in_(entities))):
            key = (row.entity, row.field, row.period)
            self.last[key] = self.before[key] = int(row.last_value)

    def next(self, entity: str, field: str, day: dt.date) -> str:
        fmt = self.formats[(entity, field)]
        key = (entity, field, fmt.period_key(day))
        value = self.last.get(key, 0) + 1
        self.last[key] = value
        self.dirty.add(key)
        return fmt.render(day, value)

    def take(self) -> dict[Key, int]:
        """The counters moved since the last call, to be written with the batch."""
        moved = {key: self.last[key] for key in self.dirty}
        self.dirty = set()
        return moved

    @staticmethod
    def save(conn: sa.Connection, counters: sa.Table, moved: dict[Key, int]) -> None:
        """Write counters a batch moved (never backwards: the larger value wins)."""
        for key in sorted(moved):
            entity, field, period = key
            where = (counters.c.entity == entity) & (counters.c.field == field) & (counters.c.period == period)
            current = conn.execute(sa.select(counters.c.last_value).where(where)).scalar()
            if current is None:
                conn.execute(counters.insert().values(entity=entity, field=field, period=period, last_value=moved[key]))
            elif current < moved[key]:
                conn.execute(counters.update().where(where).values(last_value=moved[key]))

    def restore(self, conn: sa.Connection, counters: sa.Table) -> None:
        """Put the counters back as the run found them (the run is being undone)."""
        for entity, field, period in sorted(self.last):
            where = (counters.c.entity == entity) & (counters.c.field == field) & (counters.c.period == period)
            before = self.before.get((entity, field, period))
            if before is None:
                conn.execute(counters.delete().where(where))
            else:
                conn.execute(counters.update().where(where).values(last_value=before))
