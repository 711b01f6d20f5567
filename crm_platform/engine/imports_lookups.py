"""Looking up an import's keys and references a chunk of rows at a time: the records whose key
is in the chunk, and the records the chunk's reference cells name by title, each in one query
within the user's read scope; records created earlier in the same import are found too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from crm_platform.engine import system_references
from crm_platform.engine.imports_convert import Unresolved, clean, split_list, text_value
from crm_platform.engine.imports_mapping import ID_TARGET
from crm_platform.metadata.model import Entity, Field
from crm_platform.metadata.values import is_blank

if TYPE_CHECKING:
    from crm_platform.engine.imports import Importer
    from crm_platform.engine.imports_writer import BatchWriter

CHUNK = 500  # rows whose keys and references are looked up together


class Lookups:
    def __init__(self, importer: Importer, conn: sa.Connection) -> None:
        self.importer = importer
        self.site = importer.site
        self.actor = importer.actor
        self.conn = conn
        self.keys: dict[Any, set[int]] = {}
        self.new_keys: dict[Any, set[int]] = {}
        self.titles: dict[str, dict[str, set[int]]] = {}  # target entity -> folded title -> ids
        self.new_titles: dict[str, dict[str, set[int]]] = {}
        self.system_names: dict[str, system_references.NameIndex] = {}  # "user" / "org_unit" -> names, loaded once
        self.writer: BatchWriter | None = None  # new records waiting to be written: written before one is looked up

    def _readable(self, entity: Entity) -> tuple[sa.Table, Any]:
        table = self.site.schema.tables[entity.name]
        return table, sa.and_(table.c.deleted_at.is_(None), self.site.access.row_filter(self.actor, entity, table, "read"))

    def prepare(self, rows: list[tuple[int, list[Any]]]) -> None:
        importer = self.importer
        if importer.key_column is not None:
            values = {v for v in (importer.key_value(cells) for _n, cells in rows) if v is not None and not isinstance(v, Unresolved)}
            self.keys = self._find_keys(values)
        self.titles = {}
        for index, target in enumerate(importer.columns):
            if target is None or target.field is None or target.field.type not in ("reference", "many_to_many") or not target.writable:
                continue
            if target.field.system_target:
                continue  # users / org units: by name, see _resolve_system
            f = target.field
            texts: set[str] = set()
            for _n, cells in rows:
                if not is_blank(cells[index]):
                    texts.update(split_list(cells[index]) if f.type == "many_to_many" else [text_value(cells[index])])
            self._find_titles(self.site.registry.entity(f.entity or ""), texts)

    def _find_keys(self, values: set[Any]) -> dict[Any, set[int]]:
        found: dict[Any, set[int]] = {}
        entity = self.importer.entity
        if not values or not self.site.access.can(self.actor, entity, "read"):
            return found  # records the user cannot see are never matched
        table, readable = self._readable(entity)
        column = table.c.id if self.importer.settings.key == ID_TARGET else table.c[self.importer.settings.key or ""]
        listed = sorted(values, key=str)
        for start in range(0, len(listed), CHUNK):
            part = listed[start:start + CHUNK]
            for record_id, value in self.conn.execute(sa.select(table.c.id, column).where(column.in_(part), readable)):
                found.setdefault(value, set()).add(record_id)
        return found

    def _find_titles(self, target: Entity, texts: set[str]) -> None:
        titles = self.titles.setdefault(target.name, {})
        if not texts or not self.site.access.can(self.actor, target, "read"):
            return  # ids only: the record service checks them
        table, readable = self._readable(target)
        if target.title_field and target.title_field in table.c:
            column = table.c[target.title_field]
            exact = sorted(texts)
            folded = sorted({t.casefold() for t in texts})
            query = sa.select(table.c.id, column).where(readable, sa.or_(column.in_(exact), sa.func.lower(column).in_(folded)))
            for record_id, title in self.conn.execute(query):
                titles.setdefault(fold(title), set()).add(record_id)

    def find(self, key: Any) -> set[int]:
        if self.writer is not None and self.writer.waiting(key=key):
            self.writer.flush()
        return self.keys.get(key, set()) | self.new_keys.get(key, set())

    def resolve(self, f: Field, text: str) -> int:
        if f.system_target:
            return self._resolve_system(f.system_target, text)
        target = self.site.registry.entity(f.entity or "")
        if self.writer is not None and target.name == self.importer.entity.name and self.writer.waiting(folded_title=fold(text)):
            self.writer.flush()
        matches = self.titles.get(target.name, {}).get(fold(text), set()) | self.new_titles.get(target.name, {}).get(fold(text), set())
        if len(matches) == 1:
            return next(iter(matches))
        if len(matches) > 1:
            ids = ", ".join(str(i) for i in sorted(matches)[:5])
            raise Unresolved(f"{len(matches)} {target.label.en} records are called '{text}' (ids {ids}): give the id", "ambiguous_reference")
        bare = text.lstrip("#")
        if bare.isdigit() and len(bare) < 19:
            return int(bare)  # an id: the record service checks that it exists
        what = f"no {target.label.en} is called '{text}'" if target.title_field else f"'{text}' is not the id of a {target.label.en}"
        raise Unresolved(what, "unknown_reference")

    # -- user and org-unit fields (engine/system_references.py) -------------------------------
    def _resolve_system(self, target: str, text: str) -> int:
        """A user by username or display name, an org unit by name or path (or either by id)."""
        index = self.system_names.get(target)
        if index is None:
            index = self.system_names[target] = system_references.NameIndex(self.conn, self.site.schema.system, target)
        try:
            return index.resolve(text, allow_id=True)
        except ValueError as exc:
            raise Unresolved(str(exc), "unknown_reference") from None

    def remember(self, record_id: int, key: Any, record: dict[str, Any]) -> None:
        if key is not None:
            self.new_keys.setdefault(key, set()).add(record_id)
        entity = self.importer.entity
        title = record.get(entity.title_field) if entity.title_field else None
        if isinstance(title, str):
            self.new_titles.setdefault(entity.name, {}).setdefault(fold(title), set()).add(record_id)


def fold(text: Any) -> str:
    return clean(str(text)).casefold()
