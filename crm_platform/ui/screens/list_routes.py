"""List screen routes: the list (whole page or its results block), CSV export, bulk delete,
saved views and the reference type-ahead."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from crm_platform.engine import system_references
from crm_platform.engine.records.errors import BadRequest
from crm_platform.engine.records.list_query import ListQuery
from crm_platform.engine.saved_views import SavedViews
from crm_platform.ui.display import display_value
from crm_platform.ui.screens.common import form_data, kanban_field_of, site_of
from crm_platform.ui.screens.list_screen import ListScreen
from crm_platform.ui.templating import is_htmx, language_of, render

IGNORED = ("lookup_q",)
PHONE_TEXT = re.compile(r"^\+?[0-9 ()\-./]+$")
EXPORT_BATCH = 500


def _params(request: Request) -> list[tuple[str, str]]:
    return [(k, v) for k, v in request.query_params.multi_items() if k not in IGNORED]


async def list_page(request: Request) -> Response:
    site = site_of(request)
    entity = site.records.entity(request.path_params["entity"])
    if entity.child_of:
        raise BadRequest(f"{entity.name} rows are listed on their {entity.child_of}")
    hidden = site.access.hidden_fields(request.state.actor, entity)
    screen = ListScreen.build(site.registry, entity, _params(request), hidden).load(site.records, request.state.actor)
    sort_param = ",".join(("-" if k.descending else "") + k.field for k in screen.query.sort)
    reference_titles = _filter_titles(site, request.state.actor, screen)
    context = {"screen": screen, "entity": entity, "sort_param": sort_param, "kanban_field": kanban_field_of(entity),
               "saved_views": SavedViews(site).of(request.state.actor.user_id, entity.name) if request.state.actor.user_id else [],
               "reference_titles": reference_titles, "system_choices": _system_choices(site, screen), **list_permissions(site, request.state.actor, entity, screen)}
    block = "results" if is_htmx(request) and request.headers.get("hx-target") == "results" else None
    return render(request, "list.html", context, block=block)


def list_permissions(site: Any, actor: Any, entity: Any, screen: ListScreen) -> dict[str, Any]:
    """What the list offers this user: New and Import (create), Export (export), and the rows
    they may delete (a checkbox each, and Delete selected when there is one)."""
    ids = [r["id"] for r in screen.page.records] if screen.page else []
    return {"can": {action: site.access.can(actor, entity, action) for action in ("create", "export", "delete")},
            "deletable": site.records.permitted_ids(actor, entity.name, ids, "delete")}


def _system_choices(site: Any, screen: ListScreen) -> dict[str, list[system_references.Choice]]:
    """The options of user / org-unit filters (engine/system_references.py), by parameter."""
    controls = [c for c in screen.filters if c.kind == "reference" and c.field.system_target]
    if not controls:
        return {}
    with site.engine.connect() as conn:
        return {c.params[0]: system_references.choices(conn, site.schema.system, c.field.system_target or "",
                                                       [int(v) for v in c.values.values() if v and v.isdigit()])
                for c in controls}


def _filter_titles(site, actor, screen: ListScreen) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Titles for reference filters that are set, so the filter box shows a name, not an id."""
    titles: dict[str, str] = {}
    for control in screen.filters:
        if control.kind != "reference" or control.field.system_target:
            continue
        param = control.params[0]
        value = control.values.get(param)
        if value and value.isdigit() and control.field.entity:
            try:
                record = site.records.get(actor, control.field.entity, int(value))
            except Exception:  # noqa: BLE001 - a stale id just shows the id
                titles[param] = f"#{value}"
                continue
            target = site.registry.entity(control.field.entity)
            titles[param] = str(record.get(target.title_field or "id") or f"#{value}")
    return titles


async def export_csv(request: Request) -> Response:
    """Every record of the current view (all pages), with the view's columns, as CSV (UTF-8 with BOM for Excel)."""
    site = site_of(request)
    entity = site.records.entity(request.path_params["entity"])
    screen = ListScreen.build(site.registry, entity, _params(request), site.access.hidden_fields(request.state.actor, entity))
    lang = language_of(request)
    actor = request.state.actor
    site.access.require(actor, entity, "export")

    def rows() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        buffer.write("\ufeff")
        writer.writerow([c.label.get(lang) for c in screen.columns])
        page_number = 1
        while True:
            query = ListQuery(screen.query.filters, screen.query.search, screen.query.sort, page_number, EXPORT_BATCH, screen.query.deleted, screen.query.expressions)
            page = site.records.list(actor, entity.name, query)
            for record in page.records:
                writer.writerow([_csv_safe(display_value(c, record, lang), c.value_type) for c in screen.columns])
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            if page_number >= page.pages:
                break
            page_number += 1

    filename = f"{entity.name}.csv"
    return StreamingResponse(rows(), media_type="text/csv; charset=utf-8", headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def _csv_safe(text: str, kind: str) -> str:
    """Neutralise spreadsheet formulas in exported cells (CSV injection); numbers and phone numbers stay as they are."""
    if text[:1] not in ("=", "+", "-", "@", "\t", "\r") or _is_number(text):
        return text
    if kind == "phone" and PHONE_TEXT.match(text):
        return text
    return "'" + text


def _is_number(text: str) -> bool:
    try:
        float(text.replace(",", ""))
    except ValueError:
        return False
    return True


async def bulk_delete(request: Request) -> Response:
    site = site_of(request)
    entity = site.records.entity(request.path_params["entity"])
    form = await form_data(request)
    ids = [int(v) for v in form.getlist("ids") if isinstance(v, str) and v.isdigit()]
    for record_id in ids:
        site.records.delete(request.state.actor, entity.name, record_id)
    back = form.get("back")
    target = back if isinstance(back, str) and back.startswith(f"/app/{entity.name}") else f"/app/{entity.name}"
    return RedirectResponse(target, status_code=303)


async def save_view(request: Request) -> Response:
    site = site_of(request)
    entity = site.records.entity(request.path_params["entity"])
    form = await form_data(request)
    params = form.get("params")
    params = params if isinstance(params, str) else ""
    ListScreen.build(site.registry, entity, parse_qsl(params))  # refuse parameters the list does not know
    clean = urlencode([(k, v) for k, v in parse_qsl(params) if k not in ("page", "csrf_token")])
    name = form.get("name")
    SavedViews(site).save(request.state.actor.user_id, entity.name, name if isinstance(name, str) else "", clean)
    return RedirectResponse(f"/app/{entity.name}?{clean}", status_code=303)


async def delete_view(request: Request) -> Response:
    site = site_of(request)
    entity = site.records.entity(request.path_params["entity"])
    SavedViews(site).delete(request.state.actor.user_id, entity.name, request.path_params["view_id"])
    return RedirectResponse(f"/app/{entity.name}", status_code=303)


async def lookup(request: Request) -> Response:
    """Options for a reference type-ahead: up to 10 records whose search fields match."""
    site = site_of(request)
    entity = site.records.entity(request.path_params["entity"])
    text = (request.query_params.get("lookup_q") or request.query_params.get("q") or "").strip()
    page = site.records.list(request.state.actor, entity.name, ListQuery(search=text or None, page_size=10))
    title = entity.title_field or "id"
    options = [{"id": r["id"], "title": str(r.get(title) or f"#{r['id']}")} for r in page.records]
    return render(request, "widgets/lookup_options.html", {"options": options, "entity": entity})


routes = [
    Route("/app/{entity:str}", list_page, methods=["GET"]),
    Route("/app/{entity:str}/export.csv", export_csv, methods=["GET"]),
    Route("/app/{entity:str}/bulk-delete", bulk_delete, methods=["POST"]),
    Route("/app/{entity:str}/views", save_view, methods=["POST"]),
    Route("/app/{entity:str}/views/{view_id:int}/delete", delete_view, methods=["POST"]),
    Route("/app/{entity:str}/lookup", lookup, methods=["GET"]),
]
