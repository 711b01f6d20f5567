"""References, child tables and N:N links of a record: checking, reading and replacing them."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from crm_platform.engine import system_references
from crm_platform.engine.records.errors import FieldError, ValidationFailed
from crm_platform.engine.records.serialize import row_to_dict
from crm_platform.metadata.model import Entity, Field, Registry

if TYPE_CHECKING:
    from crm_platform.engine.entity_tables import Schema
    from crm_platform.engine.records.actor import Actor
    from crm_platform.engine.records.payload import ChildRows, Payload

InsertChild = Callable[[sa.Connection, "Actor", Entity, dict[str, Any], int], int]


class RelationWriter:
    def __init__(self, conn: sa.Connection, registry: Registry, schema: Schema) -> None:
        self.conn = conn
        self.registry = registry
        self.schema = schema

    def check(self, entity: Entity, values: dict[str, Any], payload: Payload) -> list[FieldError]:
        """Every reference and link must point at an existing, not deleted record."""
        errors: list[FieldError] = []
        for f in entity.fields:
            if f.type in ("reference", "file") and values.get(f.name) is not None and not self._target_exists(f, values[f.name]):
                what = ("user" if f.system_target == "user" else "org unit") if f.system_target else f.entity if f.type == "reference" else "file"
                errors.append(FieldError(f.name, f"{what} {values[f.name]} does not exist", "unknown_reference"))
            if f.type == "many_to_many" and payload.links.get(f.name):
                ids = payload.links[f.name]
                missing = self._missing(f.entity or "", ids)
                if missing:
                    errors.append(FieldError(f.name, f"{f.entity} {', '.join(map(str, missing))} do(es) not exist", "unknown_reference"))
        for name, rows in payload.children.items():
            for index, (_cid, row_values) in enumerate(rows.rows):
                for err in self.check(rows.entity, row_values, _empty_payload()):
                    errors.append(FieldError(f"{name}[{index}].{err.field}", err.message, err.code))
        return errors

    def _target_exists(self, f: Field, value: int) -> bool:
        if f.system_target:  # a user / org unit (engine/system_references.py)
            return not system_references.missing_ids(self.conn, self.schema.system, f.system_target, [value])
        return self._exists(f.entity if f.type == "reference" else None, [value])

    def _exists(self, entity: str | None, ids: list[int]) -> bool:
        return not (self._missing(entity, ids) if entity else self._missing_files(ids))

    def _missing(self, entity: str, ids: list[int]) -> list[int]:
        table = self.schema.tables[entity]
        found = set(self.conn.execute(sa.select(table.c.id).where(table.c.id.in_(ids), table.c.deleted_at.is_(None))).scalars())
        return [i for i in ids if i not in found]

    def _missing_files(self, ids: list[int]) -> list[int]:
        table = self.schema.system["crm_file"]
        found = set(self.conn.execute(sa.select(table.c.id).where(table.c.id.in_(ids))).scalars())
        return [i for i in ids if i not in found]

    def read_into(self, entity: Entity, record: dict[str, Any]) -> None:
        for f in entity.fields:
            if f.type == "child_table" and f.entity:
                child = self.registry.entity(f.entity)
                table = self.schema.tables[child.name]
                rows = self.conn.execute(sa.select(table).where(table.c.parent_id == record["id"]).order_by(table.c.id)).mappings()
                record[f.name] = [row_to_dict(child, r) for r in rows]
            elif f.type == "many_to_many":
                junction = self.schema.junctions[(entity.name, f.name)]
                ids = self.conn.execute(sa.select(junction.c.target_id).where(junction.c.source_id == record["id"]).order_by(junction.c.target_id)).scalars()
                record[f.name] = list(ids)

    def replace_children(self, actor: Actor, entity: Entity, parent_id: int, rows: ChildRows, insert: InsertChild) -> list[dict[str, Any]]:
        """Make the child rows exactly `rows`: update those with an id, insert the others, delete the rest."""
        child = rows.entity
        table = self.schema.tables[child.name]
        existing = set(self.conn.execute(sa.select(table.c.id).where(table.c.parent_id == parent_id)).scalars())
        kept: set[int] = set()
        errors: list[FieldError] = []
        for index, (cid, values) in enumerate(rows.rows):
            if cid is not None and cid not in existing:
                errors.append(FieldError(f"{rows.field}[{index}].id", f"row {cid} is not a row of this {entity.name}", "unknown_reference"))
        if errors:
            raise ValidationFailed(errors)
        for cid, values in rows.rows:
            if cid is None:
                kept.add(insert(self.conn, actor, child, values, parent_id))
            else:
                kept.add(cid)
                if values:
                    self.conn.execute(table.update().where(table.c.id == cid).values(**values, version=table.c.version + 1))
        gone = existing - kept
        if gone:
            self.conn.execute(table.delete().where(table.c.id.in_(gone)))
        result = self.conn.execute(sa.select(table).where(table.c.parent_id == parent_id).order_by(table.c.id)).mappings()
        return [row_to_dict(child, r) for r in result]

    def replace_links(self, entity: Entity, field: str, source_id: int, ids: list[int]) -> list[int]:
        junction = self.schema.junctions[(entity.name, field)]
        self.conn.execute(junction.delete().where(junction.c.source_id == source_id))
        if ids:
            self.conn.execute(junction.insert(), [{"source_id": source_id, "target_id": i} for i in ids])
        return ids


def _empty_payload() -> Payload:
    from crm_platform.engine.records.payload import Payload

    return Payload()
