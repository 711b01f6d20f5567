"""The list query: filters, search, sort and page of one entity, from a fixed parameter contract.

Parameters (the same for the API and the screens):
  q=text                     search the entity's search fields
  sort=-amount,name          sort keys, '-' for descending; the id always ends the order
  page=1, page_size=50       pagination (page_size at most 200)
  deleted=only|include       the recycle bin
  <field>=value              equals; <field>__<op>=value with op one of OPERATORS
  filter=<expression>        a condition in the rules language, e.g. amount > 10000 and stage != "lost"
Any other parameter is an error that names it, so a typo never silently widens a list.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from crm_platform.engine import system_references
from crm_platform.engine.records.errors import BadRequest, FieldError
from crm_platform.engine.search_index import search_condition
from crm_platform.metadata import field_types as ft
from crm_platform.metadata.model import Entity, Field, SortKey
from crm_platform.metadata.values import parse_value

OPERATORS = ("eq", "ne", "lt", "lte", "gt", "gte", "in", "contains", "startswith", "isnull", "includes")
MAX_PAGE_SIZE = 200
RESERVED = ("q", "sort", "page", "page_size", "deleted", "view", "filter")
SYSTEM_FILTERABLE = {"id": "integer", "owner_id": "integer", "unit_id": "integer", "created_by": "integer", "updated_by": "integer", "created_at": "datetime", "updated_at": "datetime", "state": "text", "version": "integer"}


@dataclass(frozen=True)
class Filter:
    field: str
    op: str
    value: Any


@dataclass(frozen=True)
class ListQuery:
    filters: tuple[Filter, ...] = ()
    search: str | None = None
    sort: tuple[SortKey, ...] = ()
    page: int = 1
    page_size: int = 50
    deleted: str = "exclude"  # exclude | include | only
    expressions: tuple[str, ...] = ()  # rules-language conditions (filter=..., a view's filter)


@dataclass
class Page:
    records: list[dict[str, Any]]
    total: int
    page: int
    page_size: int
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))


def _pseudo_field(name: str, kind: str) -> Field:
    from crm_platform.metadata.model import Label, Place

    return Field(name=name, type=kind, label=Label(name, name), place=Place("<system>"))


def filter_field(entity: Entity, name: str) -> Field | None:
    if name in SYSTEM_FILTERABLE:
        return _pseudo_field(name, SYSTEM_FILTERABLE[name])
    f = entity.field_map.get(name)
    if f is None or not ft.FIELD_TYPES[f.type].stored:
        return None
    return f


def parse_list_params(entity: Entity, params: Sequence[tuple[str, str]], default_sort: Sequence[SortKey] = (), default_page_size: int = 50) -> ListQuery:
    """A ListQuery from query-string pairs; raises BadRequest naming every bad parameter."""
    errors: list[FieldError] = []
    filters: list[Filter] = []
    search: str | None = None
    sort: list[SortKey] = list(default_sort)
    page, page_size, deleted = 1, default_page_size, "exclude"
    expressions: list[str] = []
    for key, raw in params:
        if key == "filter":
            if raw.strip():
                expressions.append(raw)
        elif key == "q":
            search = raw.strip() or None
        elif key == "sort":
            sort = []
            for part in (p.strip() for p in raw.split(",") if p.strip()):
                name = part.lstrip("-")
                if filter_field(entity, name) is None or (name in entity.field_map and entity.field(name).type == "multi_picklist"):
                    errors.append(FieldError("sort", f"cannot sort by '{name}': not a sortable field of {entity.name}", "bad_sort"))
                else:
                    sort.append(SortKey(name, part.startswith("-")))
        elif key in ("page", "page_size"):
            if not raw.isdigit() or int(raw) < 1 or len(raw) > 9:
                errors.append(FieldError(key, f"'{key}' must be a positive whole number (at most 999999999)", "bad_page"))
            elif key == "page":
                page = int(raw)
            else:
                page_size = min(int(raw), MAX_PAGE_SIZE)
        elif key == "deleted":
            if raw not in ("exclude", "include", "only"):
                errors.append(FieldError(key, "'deleted' must be exclude, include or only", "bad_parameter"))
            else:
                deleted = raw
        elif key == "view":
            continue
        else:
            name, _, op = key.partition("__")
            op = op or "eq"
            f = filter_field(entity, name)
            if f is None:
                errors.append(FieldError(key, f"unknown filter '{key}': {entity.name} has no filterable field '{name}'", "unknown_filter"))
                continue
            if op not in OPERATORS:
                errors.append(FieldError(key, f"unknown operator '{op}'; expected one of {', '.join(OPERATORS)}", "unknown_operator"))
                continue
            try:
                filters.append(Filter(name, op, _filter_value(f, op, raw)))
            except ValueError as exc:
                errors.append(FieldError(key, str(exc), "bad_filter"))
    if errors:
        raise BadRequest("invalid list parameters: " + "; ".join(e.message for e in errors), errors)
    return ListQuery(tuple(filters), search, tuple(sort), page, page_size, deleted, tuple(expressions))


def _filter_value(f: Field, op: str, raw: str) -> Any:
    if op == "isnull":
        if raw.lower() not in ("true", "false", "1", "0"):
            raise ValueError("isnull takes true or false")
        return raw.lower() in ("true", "1")
    if op in ("contains", "startswith"):
        if f.value_type not in ("text", "long_text", "email", "phone", "url", "auto_number"):
            raise ValueError(f"'{op}' applies to text fields; {f.name} is {f.type}")
        return raw
    kind = f.type
    probe = f
    if kind == "multi_picklist":
        import dataclasses

        probe = dataclasses.replace(f, type="picklist")
        if op not in ("includes", "isnull"):
            raise ValueError(f"multi-picklist {f.name} is filtered with __includes")
    elif op == "includes":
        raise ValueError("'includes' applies to multi-picklist fields")
    if kind in ("auto_number",):
        return raw
    if op in ("in", "includes"):
        return [parse_value(probe, part.strip()) for part in raw.split(",") if part.strip()]
    return parse_value(probe, raw)


def filter_clause(table: sa.Table, flt: Filter) -> sa.ColumnElement[bool]:
    col = table.c[flt.field]
    op, value = flt.op, flt.value
    if op == "eq":
        return col.is_(None) if value is None else col == value
    if op == "ne":
        return sa.or_(col != value, col.is_(None))
    if op == "lt":
        return col < value
    if op == "lte":
        return col <= value
    if op == "gt":
        return col > value
    if op == "gte":
        return col >= value
    if op == "in":
        return col.in_(value)
    if op == "contains":
        return col.ilike("%" + _escape(value) + "%", escape="\\")
    if op == "startswith":
        return col.ilike(_escape(value) + "%", escape="\\")
    if op == "isnull":
        return col.is_(None) if value else col.isnot(None)
    if op == "includes":
        text_col = sa.cast(col, sa.Text)
        return sa.or_(*(text_col.like(f"%;{_escape(v)};%", escape="\\") for v in value))
    raise ValueError(op)


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def search_clause(entity: Entity, table: sa.Table, text: str, hidden: Iterable[str] = ()) -> sa.ColumnElement[bool]:
    """Rows whose search fields (less `hidden` ones) contain every word of `text`.

    Substring, case-insensitive and literal; answered from the entity's full-text index
    (engine/search_index.py), never a scan of the table.
    """
    return search_condition(entity, table, text, hidden)


def apply_query(select: sa.Select[Any], entity: Entity, table: sa.Table, query: ListQuery, hidden: set[str] | frozenset[str] = frozenset()) -> sa.Select[Any]:
    """The query's conditions on `select`. Search ignores fields hidden from the user (`hidden`)."""
    if query.deleted == "exclude":
        select = select.where(table.c.deleted_at.is_(None))
    elif query.deleted == "only":
        select = select.where(table.c.deleted_at.isnot(None))
    for flt in query.filters:
        select = select.where(filter_clause(table, flt))
    if query.search:
        select = select.where(search_clause(entity, table, query.search, hidden))
    return select


def order_by(entity: Entity, table: sa.Table, sort: Sequence[SortKey]) -> list[sa.ColumnElement[Any]]:
    """ORDER BY for the sort keys (picklists in option order), ending with the id for stable pages."""
    keys = []
    for key in sort:
        column: sa.ColumnElement[Any] = table.c[key.field]
        f = entity.field_map.get(key.field)
        if f is not None and f.type == "picklist" and f.options:
            column = sa.case({value: rank for rank, value in enumerate(f.option_values)}, value=table.c[key.field], else_=len(f.options))
        elif f is not None and f.system_target:  # a user / org unit sorts by its name
            column = system_references.name_column(table.metadata.tables, f.system_target, table.c[key.field])
        keys.append(column.desc() if key.descending else column.asc())
    return [*keys, table.c.id.desc() if sort and sort[-1].descending else table.c.id.asc()]
