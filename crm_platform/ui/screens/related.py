"""The parts of a detail screen that come from other records: related lists (the customer 360
view) and the timeline of changes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from crm_platform.engine.records.actor import Actor
from crm_platform.engine.records.list_query import Filter, ListQuery
from crm_platform.metadata.model import Entity, Field, Form, SortKey
from crm_platform.ui.display import display_value
from crm_platform.ui.i18n import translate
from crm_platform.ui.screens.list_screen import column_field

RELATED_ROWS = 5
TIMELINE_ACTIVITIES = 20


@dataclass
class RelatedList:
    entity: Entity
    field: Field  # the reference from the related entity to this record
    columns: list[Field]
    records: list[dict[str, Any]]
    total: int
    can_create: bool = False  # the user may create a record of `entity` ("New" is shown)

    @property
    def list_url(self) -> str:
        return f"/app/{self.entity.name}?{self.field.name}={self.records[0][self.field.name] if self.records else ''}"


def related_lists(site: Any, actor: Actor, entity: Entity, form: Form | None, record_id: int) -> list[RelatedList]:
    """The related lists the form names (or every reference to this entity when it names none)."""
    registry = site.registry
    pairs: list[tuple[Entity, Field]] = []
    if form is not None and form.related:
        for spec in form.related:
            child_name, ref_name = spec.split(".")
            child = registry.entity(child_name)
            pairs.append((child, child.field(ref_name)))
    else:
        pairs = [(e, f) for e, f in registry.references_to(entity.name) if not e.child_of and e.name != entity.name]
    result = []
    for child, ref in pairs:
        if site.access.scope(actor, child, "read") is None:
            continue  # a list this user may not read is left out, not an error for the whole page
        view = registry.default_list_view(child.name)
        names = [c for c in (view.columns if view else (child.title_field or "id",)) if c != ref.name][:4]
        query = ListQuery(filters=(Filter(ref.name, "eq", record_id),), sort=(SortKey("created_at", True),), page_size=RELATED_ROWS)
        page = site.records.list(actor, child.name, query)
        result.append(RelatedList(child, ref, [column_field(child, n) for n in names], page.records, page.total, site.access.can(actor, child, "create")))
    return result


def timeline(site: Any, actor: Actor, entity: Entity, record_id: int, language: str) -> list[dict[str, Any]]:
    """Changes of the record and the activities that reference it (entities with a
    `timeline_date`), newest first, in the user's language."""
    items = _changes(site, actor, entity, record_id, language) + _activities(site, actor, entity, record_id, language)
    return sorted(items, key=lambda i: i["sort"], reverse=True)


def _activities(site: Any, actor: Actor, entity: Entity, record_id: int, language: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for other, ref in site.registry.references_to(entity.name):
        if not other.timeline_date or not site.access.can(actor, other, "read"):
            continue
        query = ListQuery(filters=(Filter(ref.name, "eq", record_id),), sort=(SortKey(other.timeline_date, True),), page_size=TIMELINE_ACTIVITIES)
        for row in site.records.list(actor, other.name, query).records:
            when = str(row.get(other.timeline_date) or row["created_at"])
            title = row.get(other.title_field or "id") or f"#{row['id']}"
            kind = next((f for f in other.fields if f.type == "picklist"), None)
            detail = display_value(kind, row, language) if kind else ""
            items.append({"sort": when, "when": when[:16].replace("T", " "), "who": "", "action": "activity", "changes": [],
                          "activity": {"entity": other.name, "id": row["id"], "title": str(title), "label": other.label.get(language), "detail": detail}})
    return items


def _changes(site: Any, actor: Actor, entity: Entity, record_id: int, language: str) -> list[dict[str, Any]]:
    history = site.records.history(actor, entity.name, record_id)
    by_version: dict[int, dict[str, Any]] = {}
    for row in history:
        item = by_version.setdefault(row["version"], {"version": row["version"], "action": row["action"], "who": row["changed_by_name"] or "system",
                                                      "when": row["changed_at"][:16].replace("T", " "), "sort": row["changed_at"], "changes": [], "activity": None})
        if row["field"] and row["action"] == "update":
            f = entity.field_map.get(row["field"].removesuffix("_currency"))
            label = f.label.get(language) if f else row["field"]
            is_value = f is not None and f.name == row["field"]
            old = _shown(f, row["old"], row.get("old_ref"), language) if is_value else _short(row["old"])
            new = _shown(f, row["new"], row.get("new_ref"), language) if is_value else _short(row["new"])
            item["changes"].append(translate("changed_from_to", language, field=label, old=old, new=new))
    return list(by_version.values())


def _shown(f: Field | None, value: Any, ref: dict[str, Any] | None, language: str) -> str:
    """A value of the history as the screens show it: a referenced record's title (marked when it
    is deleted), picklist labels, yes/no, money with its currency."""
    if value is None or value == "" or f is None:
        return _short(value)
    if ref is not None:
        title = ref["title"] or f"#{ref['id']}"
        return _short(title) + (f" ({translate('ref_deleted', language)})" if ref["deleted"] else "")
    if f.value_type in ("picklist", "multi_picklist", "boolean", "money", "percent", "decimal", "integer", "datetime"):
        return _short(display_value(f, {f.name: value}, language))
    return _short(value)


def _short(value: Any) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, list):
        return f"[{len(value)}]" if value and isinstance(value[0], dict) else ", ".join(map(str, value))
    text = str(value)
    return text if len(text) <= 60 else text[:57] + "…"
