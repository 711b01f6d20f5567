"""Global search: one box for every entity with `search_fields`, as far as the user may read.

Each entity is asked through its own search index (engine/search_index.py: the same condition as
a list's `q=`) with the user's read scope (`site.access.row_filter`) and without the fields
hidden from the user, newest first, at most `per_entity` records (one more is read to know
whether there are more: no count of every match). Child rows and entities without search fields
are not searched; an entity the user may not read is skipped, never an error.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import sqlalchemy as sa

from crm_platform.engine.records.actor import Actor
from crm_platform.engine.records.list_query import ListQuery, apply_query
from crm_platform.engine.records.serialize import add_titles, row_to_dict
from crm_platform.engine.search_index import search_columns
from crm_platform.metadata.model import Entity

if TYPE_CHECKING:
    from crm_platform.engine.site import Site

PER_ENTITY = 5
MAX_PER_ENTITY = 50
MAX_QUERY = 200  # characters of the search text used


@dataclass
class SearchGroup:
    entity: Entity
    records: list[dict[str, Any]]
    more: bool  # more records match than are listed
    query: str

    @property
    def list_url(self) -> str:
        """The entity's list screen searching the same text."""
        return f"/app/{self.entity.name}?{urlencode({'q': self.query})}"

    def title(self, record: dict[str, Any]) -> str:
        value = record.get(self.entity.title_field) if self.entity.title_field else None
        return str(value) if value not in (None, "") else f"#{record['id']}"

    def details(self, record: dict[str, Any]) -> list[str]:
        """The record's other search field values, shown under its title."""
        out = []
        for name in self.entity.search_fields:
            if name == self.entity.title_field:
                continue
            value = record.get(name)
            if value not in (None, "", []):
                out.append(str(value))
        return out[:4]

    def as_dict(self) -> dict[str, Any]:
        return {
            "entity": self.entity.name,
            "label": self.entity.plural_label.as_dict(),
            "more": self.more,
            "list_url": self.list_url,
            "api_url": f"/api/v1/records/{self.entity.name}?{urlencode({'q': self.query})}",
            "data": [{**r, "_title": self.title(r), "_url": f"/app/{self.entity.name}/{r['id']}"} for r in self.records],
        }


def searchable_entities(site: Site, only: Iterable[str] | None = None) -> list[Entity]:
    """Entities with search fields, in the order of the navigation, then by name."""
    registry = site.registry
    wanted = set(only) if only is not None else None
    ordered: list[str] = []
    for menu in registry.menus:
        for item in menu.items:
            if item.entity not in ordered:
                ordered.append(item.entity)
    ordered += sorted(name for name in registry.entities if name not in ordered)
    result = []
    for name in ordered:
        entity = registry.entities.get(name)
        if entity is None or entity.child_of or not entity.search_fields:
            continue
        if wanted is not None and name not in wanted:
            continue
        result.append(entity)
    return result


def global_search(site: Site, actor: Actor, text: str, per_entity: int = PER_ENTITY, only: Iterable[str] | None = None) -> list[SearchGroup]:
    """The groups of matching records (entities without a match are left out)."""
    text = " ".join((text or "")[:MAX_QUERY].split())
    if not text:
        return []
    per_entity = max(1, min(per_entity, MAX_PER_ENTITY))
    access = site.access
    groups: list[SearchGroup] = []
    with site.engine.connect() as conn:
        for entity in searchable_entities(site, only):
            if not access.can(actor, entity, "read"):
                continue
            table = site.schema.tables[entity.name]
            hidden = access.hidden_fields(actor, entity)
            if not search_columns(entity, table, hidden):
                continue  # every searched field is hidden from this user
            query = apply_query(sa.select(table).where(access.row_filter(actor, entity, table, "read")), entity, table, ListQuery(search=text), hidden)
            # Newest first, by `id + 0`: ordering by the bare id lets PostgreSQL walk the primary key
            # backwards computing every row's grams until it has a page (seconds on a large table
            # with few matches); the expression makes it ask the search index and sort the matches.
            rows = conn.execute(query.order_by((table.c.id + 0).desc()).limit(per_entity + 1)).mappings().all()
            if not rows:
                continue
            records = [row_to_dict(entity, dict(row)) for row in rows[:per_entity]]
            add_titles(conn, site.registry, site.schema.tables, entity, records)
            groups.append(SearchGroup(entity, [access.strip_hidden(actor, entity, r) for r in records], len(rows) > per_entity, text))
    return groups
