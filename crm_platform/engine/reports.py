"""Reports: records of one entity grouped by fields or date buckets, with aggregates, computed in
SQL within what the viewer may read (their permission scope, hidden fields refused), filtered by
list parameters and rules-language conditions. Every row carries the list filters that show its
records (drill-down).

    spec = ReportSpec("opportunity", group_by=("stage",), measures=(Measure("count"), Measure("sum", "amount")))
    result = Reports(site).run(actor, spec)
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from crm_platform.engine.records.actor import Actor
from crm_platform.engine.records.errors import BadRequest, FieldError, Forbidden
from crm_platform.engine.records.list_query import Filter, ListQuery, apply_query
from crm_platform.metadata.model import Entity

if TYPE_CHECKING:
    from crm_platform.engine.site import Site

AGGREGATES = ("count", "sum", "avg", "min", "max")
BUCKETS = ("day", "month", "quarter", "year")
NUMERIC = ("integer", "decimal", "money", "percent")
GROUPABLE = ("picklist", "reference", "boolean", "text", "email", "phone", "integer", "date", "datetime", "auto_number")
SYSTEM_GROUPS = {"owner_id": "user", "unit_id": "unit", "created_at": "datetime", "updated_at": "datetime"}
MAX_ROWS = 1000


@dataclass(frozen=True)
class Measure:
    aggregate: str = "count"
    field: str | None = None

    @property
    def key(self) -> str:
        return self.aggregate if self.field is None else f"{self.aggregate}_{self.field}"


@dataclass(frozen=True)
class ReportSpec:
    entity: str
    group_by: tuple[str, ...] = ()  # "stage", "owner_id", "expected_close:month"
    measures: tuple[Measure, ...] = (Measure(),)
    filters: tuple[Filter, ...] = ()
    expressions: tuple[str, ...] = ()  # rules-language conditions
    limit: int = 200

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReportSpec:
        """From JSON: {entity, group_by: [..], measures: [{aggregate, field}], filter: "..."}; BadRequest when malformed."""
        if not isinstance(data, dict) or not isinstance(data.get("entity"), str):
            raise BadRequest("a report needs {entity, group_by, measures}", [FieldError("entity", "required", "required")])
        group_by = data.get("group_by") or []
        measures = data.get("measures") or [{"aggregate": "count"}]
        if not isinstance(group_by, list) or not all(isinstance(g, str) for g in group_by):
            raise BadRequest("group_by is a list of field names", [FieldError("group_by", "expected a list of field names", "type")])
        if not isinstance(measures, list) or not all(isinstance(m, dict) for m in measures):
            raise BadRequest("measures is a list of {aggregate, field}", [FieldError("measures", "expected a list of {aggregate, field}", "type")])
        expression = data.get("filter")
        limit = data.get("limit", 200)
        return cls(data["entity"], tuple(group_by), tuple(Measure(str(m.get("aggregate", "count")), m.get("field")) for m in measures),
                   (), (expression,) if isinstance(expression, str) and expression.strip() else (), int(limit) if isinstance(limit, int) else 200)

    def as_dict(self) -> dict[str, Any]:
        return {"entity": self.entity, "group_by": list(self.group_by), "measures": [{"aggregate": m.aggregate, "field": m.field} for m in self.measures],
                "filter": self.expressions[0] if self.expressions else None, "limit": self.limit}


@dataclass
class ReportResult:
    spec: ReportSpec
    groups: list[dict[str, Any]]  # [{"key": "stage", "label": ..., "kind": ...}]
    measures: list[dict[str, Any]]
    rows: list[dict[str, Any]] = field(default_factory=list)  # {"keys": [...], "labels": [...], "values": {...}, "drill": {param: value}}
    totals: dict[str, Any] = field(default_factory=dict)
    truncated: bool = False


class Reports:
    def __init__(self, site: Site) -> None:
        self.site = site

    def _check(self, actor: Actor, entity: Entity, spec: ReportSpec) -> list[tuple[str, str | None, str]]:
        """(column, bucket, kind) per group; BadRequest/Forbidden naming every bad part."""
        errors: list[FieldError] = []
        hidden = self.site.access.hidden_fields(actor, entity)
        groups: list[tuple[str, str | None, str]] = []
        for key in spec.group_by:
            name, _, bucket = key.partition(":")
            kind = SYSTEM_GROUPS.get(name) or (entity.field(name).value_type if name in entity.field_map else None)
            if name in entity.field_map and entity.field(name).system_target:  # a user / org-unit field groups like owner_id / unit_id
                kind = "user" if entity.field(name).system_target == "user" else "unit"
            if kind is None or (kind not in GROUPABLE and kind not in ("user", "unit")):
                errors.append(FieldError("group_by", f"cannot group by '{name}': not a groupable field of {entity.name}", "bad_group"))
            elif bucket and (bucket not in BUCKETS or kind not in ("date", "datetime")):
                errors.append(FieldError("group_by", f"'{key}': date buckets ({', '.join(BUCKETS)}) apply to date fields", "bad_group"))
            elif name in hidden:
                raise Forbidden(f"you may not group by {name}: hidden for your role", [FieldError("group_by", f"{name} is hidden for your role", "forbidden_field")])
            else:
                groups.append((name, bucket or None, kind))
        for m in spec.measures:
            if m.aggregate not in AGGREGATES:
                errors.append(FieldError("measures", f"unknown aggregate '{m.aggregate}'; expected one of {', '.join(AGGREGATES)}", "bad_measure"))
            elif m.field is not None:
                f = entity.field_map.get(m.field)
                if f is None or (f.value_type not in NUMERIC and m.aggregate in ("sum", "avg")) or (f.value_type not in (*NUMERIC, "date", "datetime") and m.aggregate in ("min", "max")):
                    errors.append(FieldError("measures", f"cannot {m.aggregate} '{m.field}': not a number field of {entity.name}", "bad_measure"))
                elif m.field in hidden:
                    raise Forbidden(f"you may not aggregate {m.field}: hidden for your role", [FieldError("measures", f"{m.field} is hidden for your role", "forbidden_field")])
            elif m.aggregate != "count":
                errors.append(FieldError("measures", f"'{m.aggregate}' needs a field", "bad_measure"))
        if len(spec.group_by) > 2:
            errors.append(FieldError("group_by", "group by at most two fields", "bad_group"))
        if errors:
            raise BadRequest("the report is not valid: " + "; ".join(e.message for e in errors), errors)
        return groups

    def _bucket(self, column: Any, bucket: str) -> Any:
        if self.site.engine.dialect.name == "postgresql":
            formats = {"day": "YYYY-MM-DD", "month": "YYYY-MM", "quarter": 'YYYY-"Q"Q', "year": "YYYY"}
            return sa.func.to_char(column, formats[bucket])
        if bucket == "quarter":
            return sa.func.strftime("%Y", column) + "-Q" + sa.cast((sa.cast(sa.func.strftime("%m", column), sa.Integer) + 2) / 3, sa.String)
        formats = {"day": "%Y-%m-%d", "month": "%Y-%m", "year": "%Y"}
        return sa.func.strftime(formats[bucket], column)

    def run(self, actor: Actor, spec: ReportSpec) -> ReportResult:
        entity = self.site.registry.entity(spec.entity)
        groups = self._check(actor, entity, spec)
        table = self.site.schema.tables[entity.name]
        access = self.site.access
        query = ListQuery(filters=spec.filters)
        base = apply_query(sa.select(table).where(access.row_filter(actor, entity, table, "read")), entity, table, query, access.hidden_fields(actor, entity))
        for expression in spec.expressions:
            base = base.where(self.site.records._rule_filter(actor, entity, table, expression, access.hidden_fields(actor, entity)))
        scoped = base.subquery()
        group_columns = [(self._bucket(scoped.c[name], bucket) if bucket else scoped.c[name]).label(f"g{i}") for i, (name, bucket, _) in enumerate(groups)]
        measure_columns = []
        for m in spec.measures:
            if m.aggregate == "count":
                measure_columns.append(sa.func.count().label(m.key))
                continue
            column = scoped.c[m.field]
            function = getattr(sa.func, m.aggregate)(column)
            measure_columns.append(sa.type_coerce(function, column.type).label(m.key) if m.aggregate != "avg" else function.label(m.key))
        select = sa.select(*group_columns, *measure_columns).select_from(scoped)
        if group_columns:
            select = select.group_by(*group_columns).order_by(*group_columns)
        limit = min(max(spec.limit, 1), MAX_ROWS)
        with self.site.engine.connect() as conn:
            raw = conn.execute(select.limit(limit + 1)).all()
            # totals add up from the rows unless they were cut or an average must be weighed again
            separate = group_columns and (len(raw) > limit or any(m.aggregate == "avg" for m in spec.measures))
            totals_row = conn.execute(sa.select(*measure_columns).select_from(scoped)).one() if separate else None
        if group_columns and totals_row is None:
            totals_row = tuple(_combine(m.aggregate, [row[len(groups) + i] for row in raw]) for i, m in enumerate(spec.measures))
        result = ReportResult(spec, [{"key": f"{n}:{b}" if b else n, "field": n, "bucket": b, "kind": k} for n, b, k in groups],
                              [{"key": m.key, "aggregate": m.aggregate, "field": m.field} for m in spec.measures])
        result.truncated = len(raw) > limit
        for row in raw[:limit]:
            keys = list(row[: len(groups)])
            values = {m.key: self._value(entity, m, row[len(groups) + i]) for i, m in enumerate(spec.measures)}
            result.rows.append({"keys": keys, "values": values, "drill": self._drill(groups, keys)})
        source = totals_row if totals_row is not None else (raw[0][len(groups):] if raw else [None] * len(spec.measures))
        result.totals = {m.key: self._value(entity, m, source[i]) for i, m in enumerate(spec.measures)}
        self._label(entity, groups, result.rows)
        return result

    def _label(self, entity: Entity, groups: list[tuple[str, str | None, str]], rows: list[dict[str, Any]]) -> None:
        """Each row's `labels`: {en, zh-CN} per group key (picklist labels, record titles, user and unit names)."""
        names: list[dict[Any, dict[str, str]]] = []
        with self.site.engine.connect() as conn:
            for index, (name, bucket, kind) in enumerate(groups):
                keys = {row["keys"][index] for row in rows if row["keys"][index] is not None}
                found: dict[Any, dict[str, str]] = {}
                if kind == "picklist" and not bucket:
                    for option in entity.field(name).options:
                        found[option.value] = {"en": option.label.en, "zh-CN": option.label.zh_cn}
                elif kind in ("reference", "user", "unit") and keys:
                    if kind == "reference":
                        target = self.site.registry.entity(entity.field(name).entity or "")
                        table, title = self.site.schema.tables[target.name], target.title_field or "id"
                    else:
                        table = self.site.schema.system["crm_user" if kind == "user" else "crm_org_unit"]
                        title = "username" if kind == "user" else "name"
                    for key, text in conn.execute(sa.select(table.c.id, table.c[title]).where(table.c.id.in_(keys))).all():
                        found[key] = {"en": str(text), "zh-CN": str(text)}
                names.append(found)
        for row in rows:
            row["labels"] = [names[i].get(key) or {"en": _text(key), "zh-CN": _text(key, "zh")} for i, key in enumerate(row["keys"])]


    def _value(self, entity: Entity, measure: Measure, value: Any) -> Any:
        if value is None:
            return 0 if measure.aggregate == "count" else None
        if measure.aggregate == "avg" and measure.field is not None:
            f = entity.field(measure.field)
            if f.value_type in ("decimal", "money", "percent") and self.site.engine.dialect.name == "sqlite":
                scale = f.scale if f.scale is not None else {"money": 2, "percent": 4}.get(f.value_type, 4)
                value = Decimal(str(value)) / (Decimal(10) ** scale)
            return round(Decimal(str(value)), 2)
        if isinstance(value, (dt.date, dt.datetime)):
            return value.isoformat()
        return value

    def _drill(self, groups: list[tuple[str, str | None, str]], keys: list[Any]) -> dict[str, str]:
        """The list parameters that show a row's records."""
        params: dict[str, str] = {}
        for (name, bucket, _kind), key in zip(groups, keys, strict=True):
            if key is None:
                params[f"{name}__isnull"] = "true"
            elif bucket:
                start, end = bucket_range(str(key), bucket)
                params[f"{name}__gte"], params[f"{name}__lt"] = start.isoformat(), end.isoformat()
            else:
                params[name] = str(key).lower() if isinstance(key, bool) else str(key)
        return params


def bucket_range(key: str, bucket: str) -> tuple[dt.date, dt.date]:
    """[start, end) of a bucket label such as 2026-05-17, 2026-05, 2026-Q2, 2026."""
    if bucket == "year":
        year = int(key)
        return dt.date(year, 1, 1), dt.date(year + 1, 1, 1)
    if bucket == "quarter":
        year, quarter = int(key[:4]), int(key[-1])
        start = dt.date(year, 3 * quarter - 2, 1)
        return start, dt.date(year + (quarter == 4), 1 if quarter == 4 else 3 * quarter + 1, 1)
    if bucket == "month":
        year, month = int(key[:4]), int(key[5:7])
        return dt.date(year, month, 1), dt.date(year + (month == 12), 1 if month == 12 else month + 1, 1)
    day = dt.date.fromisoformat(key)
    return day, day + dt.timedelta(days=1)


def _text(key: Any, language: str = "en") -> str:
    if key is None:
        return "(none)" if language == "en" else "（空）"
    if isinstance(key, bool):
        return ("yes" if key else "no") if language == "en" else ("是" if key else "否")
    return key.isoformat() if isinstance(key, (dt.date, dt.datetime)) else str(key)


class SavedReports:
    """Reports users keep: their own, and the ones shared with everyone (each still scoped to who runs it)."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.table = site.schema.system["crm_report"]

    def visible(self, actor: Actor) -> list[dict[str, Any]]:
        import json

        query = sa.select(self.table).where(sa.or_(self.table.c.owner_id == actor.user_id, self.table.c.shared.is_(True))).order_by(self.table.c.name)
        with self.site.engine.connect() as conn:
            return [{**dict(r), "spec": json.loads(r.spec), "created_at": r.created_at.isoformat()} for r in conn.execute(query).mappings()]

    def get(self, actor: Actor, report_id: int) -> dict[str, Any]:
        from crm_platform.engine.records.errors import NotFound

        found = next((r for r in self.visible(actor) if r["id"] == report_id), None)
        if found is None:
            raise NotFound(f"report {report_id} not found")
        return found

    def save(self, actor: Actor, name: str, spec: ReportSpec, shared: bool = False) -> int:
        import json

        from crm_platform.engine.clock import now

        if not name.strip():
            raise BadRequest("a saved report needs a name", [FieldError("name", "required", "required")])
        self.run_check(actor, spec)
        with self.site.engine.begin() as conn:
            return int(conn.execute(self.table.insert().values(name=name.strip()[:200], spec=json.dumps(spec.as_dict()), owner_id=actor.user_id,
                                                               shared=shared, created_at=now()).returning(self.table.c.id)).scalar_one())

    def run_check(self, actor: Actor, spec: ReportSpec) -> None:
        Reports(self.site).run(actor, ReportSpec(spec.entity, spec.group_by, spec.measures, spec.filters, spec.expressions, 1))

    def delete(self, actor: Actor, report_id: int) -> None:
        report = self.get(actor, report_id)
        if report["owner_id"] != actor.user_id and not self.site.access.is_administrator(actor):
            raise Forbidden("only its owner deletes a saved report")
        with self.site.engine.begin() as conn:
            conn.execute(self.table.delete().where(self.table.c.id == report_id))


def _combine(aggregate: str, values: list[Any]) -> Any:
    """A total from the groups' values (count and sum add up; min and max of the groups)."""
    present = [v for v in values if v is not None]
    if not present:
        return 0 if aggregate == "count" else None
    if aggregate in ("count", "sum"):
        return sum(present)
    return min(present) if aggregate == "min" else max(present)
