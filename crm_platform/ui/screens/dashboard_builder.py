"""Dashboards built in the browser: create one (private, shared with everyone or with roles), add
widgets from saved reports or from the report being viewed ("Add to dashboard"), pick each
widget's chart, reorder and remove widgets, rename, reshare and delete the dashboard. Viewing one
runs every widget for the viewer with the pack dashboards' widget code (report_routes.widget_view).
Registered before report_routes, so /dashboards/<number> is a built dashboard.

Every form that changes a dashboard carries the version the page showed (a hidden `version`; on the
"Add to dashboard" page one `version_<id>` per dashboard offered). A change someone else overtook
is a 409 page showing the dashboard as it is now, saying so and offering to reload it."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from starlette.datastructures import FormData, QueryParams
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from crm_platform.engine.records.errors import RecordError
from crm_platform.engine.reports import SavedReports
from crm_platform.engine.user_dashboards import SHARING, UserDashboards, charts_for, default_chart
from crm_platform.metadata.model import Label
from crm_platform.ui.screens.common import form_data, site_of
from crm_platform.ui.screens.report_routes import visible_dashboards, widget_view
from crm_platform.ui.templating import render

REPORT_PARAMS = ("entity", "group", "group2", "aggregate", "field", "filter")


def _error(exc: RecordError, board: dict[str, Any] | None = None) -> dict[str, Any]:
    """The error for a template; a stale change (409) also names the dashboard (`board`: id, name)
    so the notice can say someone else changed it and link to its current state."""
    stale = {"id": board["id"], "name": board["name"]} if board is not None and exc.status == 409 else None
    return {"message": exc.message, "code": exc.code, "details": [d.as_dict() for d in exc.details], "board": stale}


def _version(form: FormData, name: str = "version") -> int | str:
    """The version a form was based on; the text as sent when it is missing or not a number, which
    the engine refuses with 400 (never None, which would delete without a check)."""
    raw = str(form.get(name) or "").strip()
    return int(raw) if raw.isascii() and raw.isdigit() else raw


def _settings(form: FormData) -> dict[str, Any]:
    """Name and sharing from the settings form (roles as repeated checkboxes)."""
    sharing = str(form.get("sharing") or "private")
    return {"name": str(form.get("name") or ""), "sharing": sharing, "roles": [str(r) for r in form.getlist("roles")] if sharing == "roles" else []}


def spec_of(params: FormData | QueryParams) -> dict[str, Any] | None:
    """The report spec of the report builder's parameters, None when they name no records."""
    entity = str(params.get("entity") or "")
    if not entity:
        return None
    aggregate = str(params.get("aggregate") or "count")
    field = str(params.get("field") or "") or None
    group_by = [str(g) for g in (params.get("group"), params.get("group2")) if g]
    expression = str(params.get("filter") or "").strip()
    return {"entity": entity, "group_by": group_by, "measures": [{"aggregate": aggregate, "field": field if aggregate != "count" else None}],
            "filter": expression or None}


def _widget_from(form: FormData) -> dict[str, Any]:
    """A widget from a form: a saved report (`report`) or the report builder's parameters."""
    widget: dict[str, Any] = {}
    report = str(form.get("report") or "")
    if report.isdigit():
        widget["report_id"] = int(report)
    else:
        spec = spec_of(form)
        if spec is not None:
            widget["spec"] = spec
    if str(form.get("title") or "").strip():
        widget["title"] = str(form.get("title"))
    if form.get("chart"):
        widget["chart"] = str(form.get("chart"))
    return widget


async def create(request: Request) -> Response:
    site = site_of(request)
    actor = request.state.actor
    boards = UserDashboards(site)
    values = _settings(await form_data(request))
    try:
        board_id = boards.create(actor, values["name"], values["sharing"], values["roles"])
    except RecordError as exc:
        context = {"dashboards": visible_dashboards(site, actor), "built": boards.visible(actor), "roles": boards.roles(), "error": _error(exc), "form": values}
        return render(request, "dashboards.html", context, status=exc.status)
    return RedirectResponse(f"/dashboards/{board_id}/edit", status_code=303)


async def view(request: Request) -> Response:
    site = site_of(request)
    actor = request.state.actor
    board = UserDashboards(site).get(actor, request.path_params["id"])
    shown = [widget_view(site, actor, w["title"], w["spec"], w["chart"]) for w in board["widgets"]]
    page = SimpleNamespace(label=Label(board["name"], board["name"]), id=board["id"])
    return render(request, "dashboard.html", {"board": page, "widgets": [w for w in shown if w is not None], "error": None,
                                              "edit_url": f"/dashboards/{board['id']}/edit" if board["can_edit"] else None,
                                              "empty": not board["widgets"]})


def _edit_page(request: Request, board: dict[str, Any], error: dict[str, Any] | None = None, status: int = 200) -> Response:
    site = site_of(request)
    actor = request.state.actor
    widgets = [{**w, "index": i, "charts": charts_for(w["spec"]), "entity_label": _entity_label(site, w["spec"]["entity"], actor.language)}
               for i, w in enumerate(board["widgets"])]
    return render(request, "dashboard_edit.html", {"board": board, "widgets": widgets, "saved": SavedReports(site).visible(actor),
                                                   "roles": UserDashboards(site).roles(), "sharings": SHARING, "error": error}, status=status)


def _entity_label(site: Any, name: str, language: str) -> str:
    entity = site.registry.entities.get(name)
    return entity.plural_label.get(language) if entity is not None else name


async def edit(request: Request) -> Response:
    board = UserDashboards(site_of(request)).editable(request.state.actor, request.path_params["id"])
    return _edit_page(request, board)


async def _change(request: Request, change: Any, done: str | None = None) -> Response:
    """Run `change(boards, actor, board_id, form, version)`; then to `done` (default: the edit page),
    or the edit page with the error and the dashboard as it is now (409 when someone else changed it)."""
    boards = UserDashboards(site_of(request))
    actor = request.state.actor
    board_id = request.path_params["id"]
    form = await form_data(request)
    try:
        change(boards, actor, board_id, form, _version(form))
    except RecordError as exc:
        if exc.status in (403, 404):
            raise
        current = boards.editable(actor, board_id)
        return _edit_page(request, current, _error(exc, current), exc.status)
    return RedirectResponse(done or f"/dashboards/{board_id}/edit", status_code=303)


async def settings(request: Request) -> Response:
    return await _change(request, lambda boards, actor, board_id, form, version: boards.update(actor, board_id, _settings(form), version=version))


async def add_widget(request: Request) -> Response:
    return await _change(request, lambda boards, actor, board_id, form, version: boards.add_widget(actor, board_id, _widget_from(form), version=version))


async def change_widget(request: Request) -> Response:
    index = request.path_params["index"]

    def apply(boards: UserDashboards, actor: Any, board_id: int, form: FormData, version: int | str) -> None:
        action = str(form.get("action") or "")
        if action in ("up", "down"):
            boards.move_widget(actor, board_id, index, -1 if action == "up" else 1, version=version)
        elif action == "remove":
            boards.remove_widget(actor, board_id, index, version=version)
        else:
            boards.set_widget(actor, board_id, index, chart=str(form.get("chart") or "") or None, title=str(form["title"]) if "title" in form else None,
                              version=version)

    return await _change(request, apply)


async def delete(request: Request) -> Response:
    """Delete the dashboard if nobody changed it since the page was shown."""
    return await _change(request, lambda boards, actor, board_id, form, version: boards.delete(actor, board_id, version=version), "/dashboards")


def _add_page(request: Request, params: FormData | QueryParams, error: dict[str, Any] | None = None, status: int = 200) -> Response:
    """Choose the dashboard (or name a new one) for a saved report or the report being viewed."""
    site = site_of(request)
    actor = request.state.actor
    report = str(params.get("report") or "")
    spec = SavedReports(site).get(actor, int(report))["spec"] if report.isdigit() else spec_of(params)
    if spec is None:
        return render(request, "error.html", {"status": 400, "message": "name a saved report or the report's records to add to a dashboard", "details": []}, status=400)
    context = {"boards": [b for b in UserDashboards(site).visible(actor) if b["can_edit"]], "spec": spec, "charts": charts_for(spec),
               "chart": str(params.get("chart") or "") if params.get("chart") in charts_for(spec) else default_chart(spec),
               "hidden": {k: str(params.get(k) or "") for k in ("report", *REPORT_PARAMS)}, "title": str(params.get("title") or ""),
               "entity_label": _entity_label(site, spec["entity"], actor.language), "error": error}
    return render(request, "dashboard_add.html", context, status=status)


async def add_form(request: Request) -> Response:
    return _add_page(request, request.query_params)


async def add(request: Request) -> Response:
    """Add the widget to the chosen dashboard, or to a new private one named here."""
    boards = UserDashboards(site_of(request))
    actor = request.state.actor
    form = await form_data(request)
    target = str(form.get("dashboard") or "")
    board_id = 0
    try:
        widget = _widget_from(form)
        if target.isdigit():
            board_id = int(target)
            boards.add_widget(actor, board_id, widget, version=_version(form, f"version_{board_id}"))
        else:
            board_id = boards.create(actor, str(form.get("new_name") or ""), widgets=[widget])
    except RecordError as exc:
        board = next((b for b in boards.visible(actor) if b["id"] == board_id), None) if exc.status == 409 else None
        return _add_page(request, form, _error(exc, board), exc.status)
    return RedirectResponse(f"/dashboards/{board_id}", status_code=303)


routes = [
    Route("/dashboards/new", create, methods=["POST"]),
    Route("/dashboards/add-widget", add_form, methods=["GET"]),
    Route("/dashboards/add-widget", add, methods=["POST"]),
    Route("/dashboards/{id:int}", view, methods=["GET"]),
    Route("/dashboards/{id:int}/edit", edit, methods=["GET"]),
    Route("/dashboards/{id:int}/settings", settings, methods=["POST"]),
    Route("/dashboards/{id:int}/delete", delete, methods=["POST"]),
    Route("/dashboards/{id:int}/widgets", add_widget, methods=["POST"]),
    Route("/dashboards/{id:int}/widgets/{index:int}", change_widget, methods=["POST"]),
]

__all__ = ["routes", "spec_of"]
