"""Report and dashboard screens: the report builder (entity, up to two groupings, an aggregate, a
rules-language filter, bar/funnel/table/number), saved and shared reports, and the dashboards
packs declare. Every number links to the list of the records it counts."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from crm_platform.engine.records.errors import RecordError
from crm_platform.engine.reports import AGGREGATES, BUCKETS, GROUPABLE, NUMERIC, SYSTEM_GROUPS, Measure, ReportResult, Reports, ReportSpec, SavedReports
from crm_platform.engine.user_dashboards import UserDashboards
from crm_platform.ui import charts
from crm_platform.ui.screens.common import form_data, site_of
from crm_platform.ui.templating import render


def _options(entity: Any, lang: str) -> dict[str, list[tuple[str, str]]]:
    groups = [(f.name, f.label.get(lang)) for f in entity.fields if f.value_type in GROUPABLE and f.type != "long_text"]
    groups += [("owner_id", "Owner" if lang == "en" else "负责人"), ("unit_id", "Unit" if lang == "en" else "部门")]
    dates = [(f.name, f.label.get(lang)) for f in entity.fields if f.value_type in ("date", "datetime")]
    groups += [(f"{name}:{b}", f"{label} ({b})") for name, label in dates for b in BUCKETS]
    numbers = [(f.name, f.label.get(lang)) for f in entity.fields if f.value_type in NUMERIC]
    return {"groups": groups, "numbers": numbers}


def _ordered(entity: Any, result: ReportResult, exclude: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Rows in picklist order when grouped by a picklist (stages read top to bottom), else as computed."""
    rows = [r for r in result.rows if not (r["keys"] and str(r["keys"][0]) in exclude)]
    if result.groups and result.groups[0]["kind"] == "picklist" and not result.groups[0]["bucket"]:
        order = {o.value: i for i, o in enumerate(entity.field(result.groups[0]["field"]).options)}
        rows.sort(key=lambda r: order.get(r["keys"][0], len(order)))
    return rows


def chart_of(site: Any, result: ReportResult, kind: str, lang: str, title: str, cumulative: bool = False, exclude: tuple[str, ...] = ()) -> str:
    """The SVG of a report: bars or a funnel over its first grouping (two groupings show as a table)."""
    entity = site.registry.entity(result.spec.entity)
    key = result.measures[0]["key"]
    rows = _ordered(entity, result, exclude)
    values = [float(r["values"][key] or 0) for r in rows]
    if cumulative:
        values = [sum(values[i:]) for i in range(len(values))]
    language = "zh-CN" if lang.startswith("zh") else "en"
    if kind == "target" and len(result.measures) > 1:
        goal = result.measures[1]["key"]
        items = []
        for r, v in zip(rows, values, strict=True):
            aim = float(r["values"][goal] or 0)
            items.append(charts.TargetBar(r["labels"][0][language] if r["labels"] else "", v, aim,
                                          f"{charts.shown(v)} / {charts.shown(aim)} · {charts.share(v, aim)}",
                                          f"/app/{entity.name}?{urlencode(r['drill'])}"))
        return charts.targets(items, title)
    bars = [charts.Bar(r["labels"][0][language] if r["labels"] else "", v, charts.shown(v),
                       f"/app/{entity.name}?{urlencode(r['drill'])}") for r, v in zip(rows, values, strict=True)]
    return charts.funnel(bars, title) if kind == "funnel" else charts.bars(bars, title)


def _spec_from(params: Any) -> ReportSpec:
    group_by = tuple(g for g in (params.get("group"), params.get("group2")) if g)
    aggregate = params.get("aggregate") or "count"
    measure = Measure(aggregate, params.get("field") or None if aggregate != "count" else None)
    expression = (params.get("filter") or "").strip()
    return ReportSpec(str(params.get("entity") or ""), group_by, (measure,), (), (expression,) if expression else ())


async def builder(request: Request) -> Response:
    site = site_of(request)
    actor = request.state.actor
    lang = actor.language
    readable = [e for e in site.registry.entities.values() if not e.child_of and site.access.scope(actor, e, "read") is not None]
    params = request.query_params
    context: dict[str, Any] = {"entities": sorted(readable, key=lambda e: e.label.get(lang)), "saved": SavedReports(site).visible(actor), "params": params,
                               "aggregates": AGGREGATES, "result": None, "svg": None, "rows": [], "error": None, "options": None, "chart": params.get("chart") or "bar"}
    name = params.get("entity")
    if name and name in site.registry.entities:
        entity = site.registry.entity(name)
        context["entity"] = entity
        context["options"] = _options(entity, lang)
        if "run" in params:
            try:
                result = Reports(site).run(actor, _spec_from(params))
            except RecordError as exc:
                context["error"] = exc.message
                return render(request, "reports.html", context, status=exc.status)
            context.update(_shown(site, result, context["chart"], lang, entity.plural_label.get(lang)))
    return render(request, "reports.html", context)


def _shown(site: Any, result: ReportResult, chart: str, lang: str, title: str, cumulative: bool = False, exclude: tuple[str, ...] = ()) -> dict[str, Any]:
    entity = site.registry.entity(result.spec.entity)
    rows = _ordered(entity, result, exclude)
    svg = chart_of(site, result, chart, lang, title, cumulative, exclude) if chart in ("bar", "funnel", "target") and len(result.groups) == 1 else None
    key = result.measures[0]["key"]
    return {"result": result, "rows": rows, "svg": svg, "measure_key": key, "total": charts.shown(result.totals.get(key))}


async def save(request: Request) -> Response:
    site = site_of(request)
    form = await form_data(request)
    try:
        report_id = SavedReports(site).save(request.state.actor, str(form.get("name") or ""), _spec_from(form), form.get("shared") == "on")
    except RecordError as exc:
        return render(request, "error.html", {"status": exc.status, "message": exc.message, "details": [d.as_dict() for d in exc.details]}, status=exc.status)
    return RedirectResponse(f"/reports/{report_id}", status_code=303)


async def saved_report(request: Request) -> Response:
    site = site_of(request)
    report = SavedReports(site).get(request.state.actor, request.path_params["id"])
    spec = report["spec"]
    params = {"entity": spec["entity"], "aggregate": spec["measures"][0]["aggregate"], "field": spec["measures"][0].get("field") or "",
              "filter": spec.get("filter") or "", "run": "1"}
    for key, value in zip(("group", "group2"), spec["group_by"], strict=False):
        params[key] = value
    return RedirectResponse(f"/reports?{urlencode(params)}", status_code=303)


async def dashboards(request: Request) -> Response:
    """Pack dashboards for the user's roles and the dashboards users built (their own and shared)."""
    site = site_of(request)
    built = UserDashboards(site)
    return render(request, "dashboards.html", {"dashboards": visible_dashboards(site, request.state.actor), "built": built.visible(request.state.actor),
                                               "roles": built.roles(), "error": None})


def visible_dashboards(site: Any, actor: Any) -> list[Any]:
    """Dashboards for the user's roles (administrators see all); each widget is still scoped to them."""
    all_ = list(site.registry.extra.get("dashboards", ()))
    if site.access.is_administrator(actor):
        return all_
    roles = set(site.access.store.grants(actor.user_id).roles) if actor.user_id is not None else set()
    return [d for d in all_ if not d.roles or roles & set(d.roles)]


async def dashboard(request: Request) -> Response:
    site = site_of(request)
    actor = request.state.actor
    lang = actor.language
    board = next((d for d in site.registry.extra.get("dashboards", ()) if d.name == request.path_params["name"]), None)
    if board is None:
        return render(request, "not_found.html", {}, status=404)
    shown = [widget_view(site, actor, w.title.get(lang), w.spec(), w.chart, w.cumulative, w.exclude) for w in board.widgets]
    return render(request, "dashboard.html", {"board": board, "widgets": [w for w in shown if w is not None], "error": None})


def widget_view(site: Any, actor: Any, title: str, spec: dict[str, Any], chart: str, cumulative: bool = False,
                exclude: tuple[str, ...] = ()) -> dict[str, Any] | None:
    """One dashboard widget computed for `actor`: None when they may not read its records (the
    widget is left out), the error when its report cannot run."""
    entity = site.registry.entities.get(spec["entity"])
    if entity is None:
        return {"title": title, "error": f"the records '{spec['entity']}' no longer exist"}
    if site.access.scope(actor, entity, "read") is None:
        return None
    try:
        result = Reports(site).run(actor, ReportSpec.from_dict(spec))
    except RecordError as exc:
        return {"title": title, "error": exc.message}
    shown = _shown(site, result, chart, actor.language, title, cumulative, exclude)
    return {"title": title, "chart": chart, "entity": entity, "list_url": f"/app/{entity.name}", "error": None, **shown}


routes = [
    Route("/reports", builder, methods=["GET"]),
    Route("/reports/save", save, methods=["POST"]),
    Route("/reports/{id:int}", saved_report, methods=["GET"]),
    Route("/dashboards", dashboards, methods=["GET"]),
    Route("/dashboards/{name}", dashboard, methods=["GET"]),
]

__all__ = ["SYSTEM_GROUPS", "chart_of", "routes", "visible_dashboards", "widget_view"]
