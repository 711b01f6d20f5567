"""Duplicates on the screens: the merge screen, the form's live duplicate warning and the route
of its "save anyway".

GET  /app/<entity>/<id>/merge               the record's possible duplicates and a search, to pick the other record
GET  /app/<entity>/<id>/merge?with=<other>  side by side: pick per field which value survives
POST /app/<entity>/<id>/merge               merge <other> into <id> (engine/merge.py), then show the survivor
POST /app/<entity>/duplicates               the new-record form's warning (htmx, as the user types)
POST /app/<entity>/new/anyway               the form's "save anyway" (record_routes.create_anyway): create without
                                            the duplicate check; the form's save (record_routes.create) asks the
                                            record service for it, and a possible duplicate comes back as the form
                                            with a warning (409)
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from crm_platform.engine.duplicates import DuplicateFinder
from crm_platform.engine.merge import MergeService
from crm_platform.engine.records.errors import Conflict, NotFound, RecordError, ValidationFailed
from crm_platform.engine.records.list_query import ListQuery
from crm_platform.engine.records.payload import parse_payload
from crm_platform.metadata.model import Entity
from crm_platform.ui.screens import record_routes
from crm_platform.ui.screens.common import form_data, site_of
from crm_platform.ui.screens.form_input import layout, read_submission, visible_sections
from crm_platform.ui.templating import render

PICK_PREFIX = "pick:"
PICKER_ROWS = 20


def _entity(request: Request) -> Entity:
    entity = site_of(request).records.entity(request.path_params["entity"])
    if entity.child_of:
        raise NotFound(f"{entity.name} rows are shown on their {entity.child_of}")
    return entity


def _title(entity: Entity, record: dict[str, Any]) -> str:
    value = record.get(entity.title_field) if entity.title_field else None
    return str(value) if value not in (None, "") else f"#{record['id']}"


def _other_id(raw: Any) -> int | None:
    return int(raw) if isinstance(raw, str) and raw.strip().isdigit() else None


async def merge_page(request: Request) -> Response:
    entity = _entity(request)
    record_id = request.path_params["id"]
    other = _other_id(request.query_params.get("with"))
    if other is None:
        return _picker(request, entity, record_id)
    return _merge_screen(request, entity, record_id, other)


def _picker(request: Request, entity: Entity, record_id: int, status: int = 200) -> Response:
    """No other record yet: this record's possible duplicates, and a search of the entity."""
    site = site_of(request)
    actor = request.state.actor
    try:
        site.records.check(actor, entity.name, record_id, "update")
        record = site.records.get(actor, entity.name, record_id)
    except NotFound:
        return render(request, "not_found.html", {}, status=404)
    matches = DuplicateFinder(site).find(actor, entity.name, record, exclude_id=record_id)
    q = request.query_params.get("q", "").strip()
    found: list[dict[str, Any]] = []
    if q:
        page = site.records.list(actor, entity.name, ListQuery(search=q, page_size=PICKER_ROWS))
        found = [{"id": r["id"], "title": _title(entity, r)} for r in page.records if r["id"] != record_id]
    context = {"entity": entity, "record": record, "record_title": _title(entity, record), "preview": None, "matches": matches,
               "q": q, "found": found, "error": None}
    return render(request, "merge.html", context, status=status)


def _merge_screen(request: Request, entity: Entity, record_id: int, other: int, error: str | None = None,
                  picks: dict[str, str] | None = None, status: int = 200) -> Response:
    site = site_of(request)
    try:
        preview = MergeService(site).preview(request.state.actor, entity.name, record_id, other)
    except NotFound:
        return render(request, "not_found.html", {}, status=404)
    context = {"entity": entity, "record": preview.survivor, "record_title": _title(entity, preview.survivor), "preview": preview,
               "other_title": _title(entity, preview.loser), "picks": picks or {}, "error": error, "matches": [], "q": "", "found": []}
    return render(request, "merge.html", context, status=status)


async def merge_submit(request: Request) -> Response:
    site = site_of(request)
    entity = _entity(request)
    record_id = request.path_params["id"]
    form = await form_data(request)
    other = _other_id(form.get("with"))
    if other is None:
        return _picker(request, entity, record_id, status=422)
    picks = {key[len(PICK_PREFIX):]: value for key, value in form.items() if key.startswith(PICK_PREFIX) and isinstance(value, str)}
    take = [name for name, side in picks.items() if side == "loser"]
    try:
        MergeService(site).merge(request.state.actor, entity.name, record_id, other, take,
                                 survivor_version=_other_id(form.get("survivor_version")), loser_version=_other_id(form.get("loser_version")))
    except (ValidationFailed, Conflict) as exc:  # shown on the merge screen; 403/404 are error pages
        message = "; ".join(d.message for d in exc.details) or exc.message
        return _merge_screen(request, entity, record_id, other, message, picks, status=exc.status)
    return RedirectResponse(f"/app/{entity.name}/{record_id}", status_code=303)


async def duplicate_warning(request: Request) -> Response:
    """The new-record form's warning: possible duplicates of what is typed so far (a fragment)."""
    site = site_of(request)
    entity = _entity(request)
    actor = request.state.actor
    form = await form_data(request)
    forms = site.registry.forms_of(entity.name)
    form_meta = next((f for f in forms if f.name == "main"), forms[0] if forms else None)
    sections = visible_sections(layout(entity, form_meta), site.access.field_access(actor, entity), editable_only=True)
    submission = read_submission(entity, sections, form, creating=True, registry=site.registry)
    wanted = {k: v for k, v in submission.payload.items() if k in entity.field_map and entity.field(k).type not in ("child_table", "many_to_many", "file")}
    payload = parse_payload(site.registry, entity, wanted)
    try:
        matches = DuplicateFinder(site).find(actor, entity.name, {**wanted, **payload.values})
    except RecordError:
        matches = []
    return render(request, "merge.html", {"entity": entity, "matches": matches}, block="duplicate_warning")


async def save_anyway(request: Request) -> Response:
    """The form's "save anyway" after a duplicate warning: the same save, without the check."""
    _entity(request)
    return await record_routes.create_anyway(request)


routes = [
    Route("/app/{entity:str}/duplicates", duplicate_warning, methods=["POST"]),
    Route("/app/{entity:str}/new/anyway", save_anyway, methods=["POST"]),
    Route("/app/{entity:str}/{id:int}/merge", merge_page, methods=["GET"]),
    Route("/app/{entity:str}/{id:int}/merge", merge_submit, methods=["POST"]),
]
