"""The list screen's model: one object turns the list view metadata and the request into the query,
the columns, the filter controls and the page (as Django admin's ChangeList does). Templates only
render what it gives them."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from crm_platform.engine.records.actor import Actor
from crm_platform.engine.records.list_query import ListQuery, Page, parse_list_params
from crm_platform.metadata.model import (
    Entity,
    Field,
    Label,
    ListView,
    Option,
    Place,
    Registry,
    SortKey,
)

SYSTEM_COLUMN_LABELS = {
    "id": Label("ID", "ID"), "created_at": Label("Created", "创建时间"), "updated_at": Label("Updated", "更新时间"),
    "created_by": Label("Created by", "创建人"), "updated_by": Label("Updated by", "更新人"),
    "owner_id": Label("Owner", "负责人"), "state": Label("State", "状态"),
}
SYSTEM_COLUMN_TYPES = {"id": "integer", "created_at": "datetime", "updated_at": "datetime", "created_by": "integer", "updated_by": "integer", "owner_id": "integer", "state": "text"}
FILTERABLE = ("picklist", "multi_picklist", "boolean", "date", "datetime", "integer", "decimal", "money", "percent", "reference")
SCREEN_PARAMS = ("q", "sort", "page", "page_size", "view", "filter")


def column_field(entity: Entity, name: str) -> Field:
    if name in entity.field_map:
        return entity.field(name)
    return Field(name=name, type=SYSTEM_COLUMN_TYPES.get(name, "text"), label=SYSTEM_COLUMN_LABELS.get(name, Label(name, name)), place=Place("<system>"))


@dataclass
class FilterControl:
    """One filter in the filter bar: which parameters it sets and their current values."""

    field: Field
    kind: str  # choice | range | reference | boolean
    params: tuple[str, ...]
    values: dict[str, str]
    options: tuple[Option, ...] = ()
    input_type: str = "text"


@dataclass
class ListScreen:
    registry: Registry
    entity: Entity
    view: ListView | None
    params: list[tuple[str, str]]
    query: ListQuery
    columns: list[Field]
    filters: list[FilterControl]
    page: Page | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def build(cls, registry: Registry, entity: Entity, raw_params: Sequence[tuple[str, str]], hidden: set[str] | frozenset[str] = frozenset()) -> ListScreen:
        """Raises BadRequest (naming the parameter) for a parameter the list does not know."""
        params = [(k, v) for k, v in raw_params if v.strip() != "" and k != "csrf_token"]
        view_name = next((v for k, v in params if k == "view"), None)
        view = None
        if view_name:
            view = next((v for v in registry.list_views_of(entity.name) if v.name == view_name), None)
        view = view or registry.default_list_view(entity.name)
        default_sort = view.sort if view else (SortKey("created_at", True),)
        query = parse_list_params(entity, params, default_sort=default_sort, default_page_size=view.page_size if view else 25)
        if view is not None and view.filter:
            query = dataclasses.replace(query, expressions=(view.filter, *query.expressions))
        columns = [column_field(entity, name) for name in (view.columns if view else _fallback_columns(entity)) if name not in hidden]
        filters = [_control(f, dict(params)) for f in columns if f.value_type in FILTERABLE and f.name in entity.field_map]
        return cls(registry, entity, view, params, query, columns, filters)

    def load(self, records_service: Any, actor: Actor) -> ListScreen:
        self.page = records_service.list(actor, self.entity.name, self.query)
        return self

    # -- URLs --------------------------------------------------------------------------------
    def url(self, drop: Sequence[str] = (), **changes: Any) -> str:
        kept = [(k, v) for k, v in self.params if k not in changes and k not in drop]
        for key, value in changes.items():
            if value is not None:
                kept.append((key, str(value)))
        query = urlencode(kept)
        return f"/app/{self.entity.name}" + (f"?{query}" if query else "")

    def query_string(self, drop: Sequence[str] = ("page",)) -> str:
        return urlencode([(k, v) for k, v in self.params if k not in drop])

    def sort_state(self, name: str) -> str | None:
        for key in self.query.sort[:1]:
            if key.field == name:
                return "descending" if key.descending else "ascending"
        return None

    def sort_url(self, name: str) -> str:
        state = self.sort_state(name)
        return self.url(drop=("page",), sort=f"-{name}" if state == "ascending" else name)

    def page_url(self, page: int) -> str:
        return self.url(page=page)

    @property
    def active_filters(self) -> int:
        return sum(1 for k, _ in self.params if k not in SCREEN_PARAMS)


def _fallback_columns(entity: Entity) -> list[str]:
    names = [f.name for f in entity.stored_fields if f.type not in ("long_text", "file")][:6]
    return names or ["id"]


def _control(f: Field, current: dict[str, str]) -> FilterControl:
    kind = f.value_type
    if kind in ("picklist", "multi_picklist"):
        param = f.name if kind == "picklist" else f"{f.name}__includes"
        return FilterControl(f, "choice", (param,), {param: current.get(param, "")}, f.options)
    if kind == "boolean":
        return FilterControl(f, "boolean", (f.name,), {f.name: current.get(f.name, "")})
    if kind == "reference":
        return FilterControl(f, "reference", (f.name,), {f.name: current.get(f.name, "")})
    low, high = f"{f.name}__gte", f"{f.name}__lte"
    input_type = {"date": "date", "datetime": "date"}.get(kind, "number")
    return FilterControl(f, "range", (low, high), {low: current.get(low, ""), high: current.get(high, "")}, input_type=input_type)
