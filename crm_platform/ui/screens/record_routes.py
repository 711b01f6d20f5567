"""Record screens: the detail (360) view, create and edit forms with inline errors and conflicts,
delete/restore, and attachments."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import Route

from crm_platform.engine.files import Attachments, FileStore
from crm_platform.engine.records.errors import (
    Conflict,
    FieldError,
    Forbidden,
    NotFound,
    ValidationFailed,
)
from crm_platform.metadata.model import Entity
from crm_platform.ui.i18n import translate
from crm_platform.ui.screens.common import form_data, kanban_field_of, site_of
from crm_platform.ui.screens.form_input import (
    ORIGINAL_PREFIX,
    initial_values,
    layout,
    read_submission,
    row_indexes,
    system_reference_options,
    visible_sections,
    widget_of,
)
from crm_platform.ui.screens.prefill import prefill_from_parents, reference_titles
from crm_platform.ui.screens.related import related_lists, timeline
from crm_platform.ui.templating import is_htmx, language_of, render


def _entity(request: Request) -> Entity:
    entity = site_of(request).records.entity(request.path_params["entity"])
    if entity.child_of:
        raise NotFound(f"{entity.name} rows are shown on their {entity.child_of}")
    return entity


def _form_meta(request: Request, entity: Entity):  # type: ignore[no-untyped-def]
    forms = site_of(request).registry.forms_of(entity.name)
    return next((f for f in forms if f.name == "main"), forms[0] if forms else None)


async def detail(request: Request) -> Response:
    entity = _entity(request)
    try:
        context = _detail_context(request, entity, request.path_params["id"])
    except NotFound:
        return render(request, "not_found.html", {}, status=404)
    return render(request, "detail.html", context)


def _detail_context(request: Request, entity: Entity, record_id: int, error: str | None = None) -> dict[str, Any]:
    site = site_of(request)
    actor = request.state.actor
    record = site.records.get(actor, entity.name, record_id, include_deleted=True)
    form = _form_meta(request, entity)
    return {
        "entity": entity, "record": record, "sections": visible_sections(layout(entity, form), site.access.field_access(actor, entity)),
        "related": related_lists(site, actor, entity, form, record["id"]),
        "timeline": timeline(site, actor, entity, record["id"], language_of(request)),
        "attachments": Attachments(site).of(entity.name, record["id"]),
        "children": [(f, site.registry.entity(f.entity)) for f in entity.fields if f.type == "child_table" and f.entity],
        "kanban_field": kanban_field_of(entity), "max_upload_mb": site.settings.max_upload_mb, "error": error,
        "workflow": site.workflows.of(entity.name), "transitions": site.workflows.options(actor, entity.name, record["id"]) if not record["deleted_at"] else [],
        "allowed": {action for action in ("update", "delete") if site.records.permitted_ids(actor, entity.name, [record["id"]], action)},
    }


async def fire_transition(request: Request) -> Response:
    """A workflow button: fire the transition, or show the detail again with why it was refused."""
    site = site_of(request)
    entity = _entity(request)
    record_id = request.path_params["id"]
    form = await form_data(request)
    values = {k[len("value:"):]: v for k, v in form.items() if k.startswith("value:") and isinstance(v, str) and v.strip()}
    comment = form.get("comment")
    try:
        site.workflows.fire(request.state.actor, entity.name, record_id, request.path_params["name"], values, comment if isinstance(comment, str) else None)
    except (ValidationFailed, Conflict, Forbidden) as exc:
        message = "; ".join(d.message for d in exc.details) or exc.message
        return render(request, "detail.html", _detail_context(request, entity, record_id, message), status=exc.status)
    return RedirectResponse(f"/app/{entity.name}/{record_id}", status_code=303)


def _form_context(request: Request, entity: Entity, record: dict[str, Any] | None, values: dict[str, Any], errors: dict[str, str], conflict: list[dict[str, Any]] | None = None, originals: dict[str, Any] | None = None) -> dict[str, Any]:
    site = site_of(request)
    form = _form_meta(request, entity)
    link_options = {}
    for f in entity.fields:
        if f.type == "many_to_many" and f.entity:
            from crm_platform.engine.records.list_query import ListQuery

            target = site.registry.entity(f.entity)
            page = site.records.list(request.state.actor, f.entity, ListQuery(page_size=200))
            link_options[f.name] = [(str(r["id"]), str(r.get(target.title_field or "id") or r["id"])) for r in page.records]
    link_options.update(system_reference_options(site, entity, values))  # user / org-unit selects
    child_entities = {f.name: site.registry.entity(f.entity) for f in entity.fields if f.type == "child_table" and f.entity}
    child_rows = {name: row_indexes(values, name) for name in child_entities}
    restricted = site.access.field_access(request.state.actor, entity)
    conditions = form_conditions(site, request.state.actor, entity, record, values)

    computed = {rule.field for rule in site.rules.of(entity.name, "formula") if rule.field}
    flow = site.workflows.of(entity.name)
    if flow is not None:
        computed.add(flow.field)  # the workflow's state: its initial state, then only transitions change it

    def widget_for(f: Any) -> str:
        return "readonly" if restricted.get(f.name) == "read_only" or f.name in computed else widget_of(f)

    return {"entity": entity, "record": record, "editing": record is not None, "sections": visible_sections(layout(entity, form), restricted), "values": values, "errors": errors,
            "child_entities": child_entities, "child_rows": child_rows, "conditions": conditions,
            "has_conditions": any(site.rules.of(entity.name, kind) for kind in ("hide", "require")),
            "originals": originals if originals is not None else values, "conflict": conflict or [], "widget_of": widget_for,
            "orig_prefix": ORIGINAL_PREFIX, "link_options": link_options, "titles": reference_titles(site, request.state.actor, entity, values)}


def _refused(request: Request, entity: Entity, action: str, reason: str) -> Response:
    """The 403 page for a form the user may not open: what is missing, in their language."""
    lang = language_of(request)
    key = "may_not_create" if action == "create" else "may_not_update"
    message = translate(key, lang, entity=entity.label.get(lang))
    details = [{"field": f"{entity.name}.{action}", "message": reason if lang == "en" else translate(f"role_lacks_{action}", lang, entity=entity.label.get(lang))}]
    return render(request, "error.html", {"status": 403, "heading": translate("not_allowed", lang), "message": message, "details": details}, status=403)


async def new_form(request: Request) -> Response:
    site = site_of(request)
    entity = _entity(request)
    actor = request.state.actor
    try:
        site.access.require(actor, entity, "create")
    except Forbidden as exc:
        return _refused(request, entity, "create", exc.message)
    values = initial_values(entity, None, site.registry)
    given = set()
    for key, value in request.query_params.items():  # prefill, e.g. ?account=5 from a related list
        if key in entity.field_map:
            values[key] = value
            given.add(key)
    flow = site.workflows.of(entity.name)
    if flow is not None:
        values[flow.field] = flow.initial
    prefill_from_parents(site, actor, entity, values, given)
    return render(request, "form.html", _form_context(request, entity, None, values, {}))


async def create(request: Request) -> Response:
    """The new-record form's save: a possible duplicate comes back as the form with a warning (409)."""
    return await _save(request, None, check_duplicates=True)


async def create_anyway(request: Request) -> Response:
    """The form's "save anyway" after a duplicate warning: the same save, without the check."""
    return await _save(request, None, check_duplicates=False)


async def edit_form(request: Request) -> Response:
    site = site_of(request)
    entity = _entity(request)
    try:
        record = site.records.get(request.state.actor, entity.name, request.path_params["id"])
        site.records.check(request.state.actor, entity.name, record["id"], "update")
    except NotFound:
        return render(request, "not_found.html", {}, status=404)
    except Forbidden as exc:
        return _refused(request, entity, "update", exc.message)
    return render(request, "form.html", _form_context(request, entity, record, initial_values(entity, record, site.registry), {}))


async def update(request: Request) -> Response:
    return await _save(request, request.path_params["id"])


async def _save(request: Request, record_id: int | None, check_duplicates: bool = False) -> Response:
    site = site_of(request)
    entity = _entity(request)
    actor = request.state.actor
    form = await form_data(request)
    sections = visible_sections(layout(entity, _form_meta(request, entity)), site.access.field_access(actor, entity), editable_only=True)
    submission = read_submission(entity, sections, form, creating=record_id is None, registry=site.registry)
    flow = site.workflows.of(entity.name)
    posted_state = form.get(flow.field) if flow is not None else None
    if flow is not None and isinstance(posted_state, str) and posted_state.strip():
        submission.payload[flow.field] = posted_state.strip()  # the record service refuses any but the initial state
    if flow is not None and record_id is None:
        submission.values[flow.field] = flow.initial  # what the read-only field shows again
    lang = language_of(request)
    record = None
    if record_id is not None:
        try:
            record = site.records.get(actor, entity.name, record_id)
        except NotFound:
            return render(request, "not_found.html", {}, status=404)
    originals = {k[len(ORIGINAL_PREFIX):]: (form.getlist(k) if len(form.getlist(k)) > 1 else form.get(k)) for k in form if k.startswith(ORIGINAL_PREFIX)}
    try:
        _store_uploads(site, entity, submission, actor, lang)
        if record_id is None:
            saved = site.records.create(actor, entity.name, submission.payload, check_duplicates=check_duplicates)
        else:
            version = form.get("version")
            payload = {**submission.payload, "version": int(version) if isinstance(version, str) and version.isdigit() else None}
            saved = site.records.update(actor, entity.name, record_id, payload)
    except Conflict as exc:
        current = site.records.get(actor, entity.name, record_id) if record_id else None
        conflict = [_conflict_line(entity, d.as_dict(), lang) for d in exc.details]
        new_originals = initial_values(entity, current, site.registry)
        context = _form_context(request, entity, current, submission.values, {d.field: translate("conflict_title", lang) for d in exc.details}, conflict, new_originals)
        return render(request, "form.html", context, status=409, block="form" if is_htmx(request) else None)
    except ValidationFailed as exc:
        errors = {submission.form_key(d.field): d.message for d in exc.details}
        context = _form_context(request, entity, record, submission.values, errors, originals=originals or None)
        return render(request, "form.html", context, status=422, block="form" if is_htmx(request) else None)
    target = f"/app/{entity.name}/{saved['id']}"
    if is_htmx(request):
        return Response(status_code=204, headers={"HX-Redirect": target})
    return RedirectResponse(target, status_code=303)


def _store_uploads(site: Any, entity: Entity, submission: Any, actor: Any, lang: str) -> None:
    limit = site.settings.max_upload_mb * 1024 * 1024
    errors = []
    for name, upload in submission.uploads.items():
        data = upload.file.read(limit + 1)
        if len(data) > limit:
            errors.append(FieldError(name, translate("file_too_large", lang, mb=site.settings.max_upload_mb), "too_large"))
            continue
        stored = FileStore(site).save(data, upload.filename, upload.content_type, actor.user_id)
        submission.payload[name] = stored["id"]
    if errors:
        raise ValidationFailed(errors)


def _conflict_line(entity: Entity, detail: dict[str, Any], lang: str) -> dict[str, Any]:
    f = entity.field_map.get(detail["field"].removesuffix("_currency"))
    label = f.label.get(lang) if f else detail["field"]
    return {"field": detail["field"], "label": label, "current": detail.get("current"), "yours": detail.get("yours"),
            "text": translate("conflict_field", lang, field=label, current=_plain(detail.get("current")), yours=_plain(detail.get("yours")))}


def _plain(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


async def delete(request: Request) -> Response:
    entity = _entity(request)
    site_of(request).records.delete(request.state.actor, entity.name, request.path_params["id"])
    return RedirectResponse(f"/app/{entity.name}", status_code=303)


async def restore(request: Request) -> Response:
    entity = _entity(request)
    site_of(request).records.restore(request.state.actor, entity.name, request.path_params["id"])
    return RedirectResponse(f"/app/{entity.name}/{request.path_params['id']}", status_code=303)


async def upload_attachment(request: Request) -> Response:
    from crm_platform.ui.api.files import read_upload

    site = site_of(request)
    entity = _entity(request)
    record_id = request.path_params["id"]
    site.records.get(request.state.actor, entity.name, record_id)
    upload = await read_upload(request)
    if isinstance(upload, Response):
        return upload
    data, name, content_type = upload
    Attachments(site).attach(entity.name, record_id, data, name, content_type, request.state.actor.user_id)
    return RedirectResponse(f"/app/{entity.name}/{record_id}#attachments", status_code=303)


async def download_attachment(request: Request) -> Response:
    site = site_of(request)
    entity = _entity(request)
    record_id = request.path_params["id"]
    site.records.get(request.state.actor, entity.name, record_id, include_deleted=True)
    file_id = Attachments(site).file_of(entity.name, record_id, request.path_params["attachment_id"])
    row, path = FileStore(site).open(file_id)
    return FileResponse(path, media_type=row["content_type"], filename=row["name"], headers={"X-Content-Type-Options": "nosniff"})


def form_conditions(site: Any, actor: Any, entity: Entity, record: dict[str, Any] | None, values: dict[str, Any]) -> Any:
    """hide/require on the record as the form shows it; readonly on the stored record."""
    from crm_platform.engine.records.payload import parse_payload

    typed = {k: v for k, v in values.items() if k in entity.field_map and entity.field(k).type not in ("child_table", "file")}
    parsed = parse_payload(site.registry, entity, {k: (v if v != "" else None) for k, v in typed.items() if ft_writable(entity, k)})
    stored = _stored_record(site, entity, record) if record else None
    merged = {**(stored or {}), **parsed.values}
    with site.engine.connect() as conn:
        return site.records.hooks.conditions(conn, actor, entity, merged, stored)


def ft_writable(entity: Entity, name: str) -> bool:
    from crm_platform.metadata.field_types import FIELD_TYPES

    return FIELD_TYPES[entity.field(name).type].writable


def _stored_record(site: Any, entity: Entity, record: dict[str, Any]) -> dict[str, Any]:
    table = site.schema.tables[entity.name]
    with site.engine.connect() as conn:
        row = conn.execute(sa.select(table).where(table.c.id == record["id"])).mappings().first()
    return dict(row) if row else {}


async def conditions(request: Request) -> Response:
    """Re-evaluate the form's hide/require rules for what the user has typed (htmx, no swap)."""
    import json

    site = site_of(request)
    entity = _entity(request)
    form = await form_data(request)
    sections = layout(entity, _form_meta(request, entity))
    submission = read_submission(entity, sections, form, creating=True, registry=site.registry)
    record = None
    record_id = request.query_params.get("id")
    if record_id and record_id.isdigit():
        record = site.records.get(request.state.actor, entity.name, int(record_id))
    result = form_conditions(site, request.state.actor, entity, record, {k: v for k, v in submission.values.items() if isinstance(v, str) or isinstance(v, list)})
    detail = {"hidden": sorted(result.hidden), "required": sorted(result.required), "readonly": sorted(result.readonly)}
    return Response(status_code=204, headers={"HX-Trigger": json.dumps({"crm:conditions": detail})})


async def new_row(request: Request) -> Response:
    """One empty row of a child table, appended to the form by htmx."""
    site = site_of(request)
    entity = _entity(request)
    f = entity.field_map.get(request.path_params["field"])
    if f is None or f.type != "child_table" or not f.entity:
        raise NotFound(f"{entity.name} has no child table '{request.path_params['field']}'")
    index = request.query_params.get("index", "0")
    index = int(index) if index.isdigit() else 0
    child = site.registry.entity(f.entity)
    prefix = f"{f.name}-{index}-"
    values = {prefix + k: v for k, v in initial_values(child, None).items()}
    context = {"entity": entity, "f": f, "child": child, "index": index, "values": values, "originals": {}, "errors": {}, "titles": {},
               "widget_of": widget_of, "orig_prefix": ORIGINAL_PREFIX}
    return render(request, "widgets/row.html", context)


routes = [
    Route("/app/{entity:str}/{id:int}/transition/{name:str}", fire_transition, methods=["POST"]),
    Route("/app/{entity:str}/rows/{field:str}", new_row, methods=["GET"]),
    Route("/app/{entity:str}/conditions", conditions, methods=["POST"]),
    Route("/app/{entity:str}/new", new_form, methods=["GET"]),
    Route("/app/{entity:str}/new", create, methods=["POST"]),
    Route("/app/{entity:str}/{id:int}", detail, methods=["GET"]),
    Route("/app/{entity:str}/{id:int}/edit", edit_form, methods=["GET"]),
    Route("/app/{entity:str}/{id:int}/edit", update, methods=["POST"]),
    Route("/app/{entity:str}/{id:int}/delete", delete, methods=["POST"]),
    Route("/app/{entity:str}/{id:int}/restore", restore, methods=["POST"]),
    Route("/app/{entity:str}/{id:int}/attachments", upload_attachment, methods=["POST"]),
    Route("/app/{entity:str}/{id:int}/attachments/{attachment_id:int}", download_attachment, methods=["GET"]),
]
