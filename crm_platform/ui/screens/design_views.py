"""The list view editor: an entity's views (the packs' read-only, the layer's editable), and for
one view its columns in order, default sort, filter (a rules-language condition checked while
the admin types, through POST /api/v1/rules/check, and again on saving), page size and whether
it is the default -> views/<entity>.yaml -> propose.

The pack format lets a dependent pack add views to a pack's entity but not replace or remove
the pack's own; the default view is the first one marked default in pack order, so a layer view
of a pack entity whose pack already marks a default is reached with ?view=<name> (or a menu)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from crm_platform.engine import layer_edits as edits
from crm_platform.engine import layer_screen_edits as screen_edits
from crm_platform.engine.site_layer import PACK_NAME
from crm_platform.metadata import field_types as ft
from crm_platform.metadata.model import Entity, ListView
from crm_platform.rules import checked_expression
from crm_platform.ui.screens.common import form_data, site_of
from crm_platform.ui.screens.design_common import layer_of, propose
from crm_platform.ui.screens.design_entities import entity_or_404, not_found, op_of, page, plain
from crm_platform.ui.screens.list_screen import column_field
from crm_platform.ui.templating import render

POOL = "§pool"
COLUMNS = "§cols"


def listable(entity: Entity) -> list[str]:
    return [f.name for f in entity.fields if ft.FIELD_TYPES[f.type].stored] + list(screen_edits.LISTABLE_SYSTEM_COLUMNS)


def _pack_default(request: Request, entity: Entity) -> ListView | None:
    """A pack's view marked default (it wins over any view of the layer)."""
    return next((v for v in site_of(request).registry.list_views_of(entity.name) if v.default and v.pack != PACK_NAME), None)


async def views_page(request: Request) -> Response:
    layer = layer_of(request)
    entity = entity_or_404(request)
    if entity is None or entity.child_of:
        return not_found(request)
    mine = {v["name"] for v in screen_edits.layer_views(layer.current_files(), entity.name)}
    views = site_of(request).registry.list_views_of(entity.name)
    default = site_of(request).registry.default_list_view(entity.name)
    return render(request, "design/entity_views.html", {"entity": entity, "views": views, "mine": mine, "default": default, "error": None})


def _context(request: Request, entity: Entity, values: dict[str, Any], sequence: list[str], editing: str | None,
             errors: dict[str, str] | None = None) -> dict[str, Any]:
    names = listable(entity)
    columns: list[str] = []
    pool: list[str] = []
    target = columns
    for item in sequence:
        if item == POOL:
            target = pool
        elif item in names and item not in columns and item not in pool:
            target.append(item)
    pool += [n for n in names if n not in columns and n not in pool]
    fields = {n: column_field(entity, n) for n in names}
    action = f"/admin/design/entities/{entity.name}/" + (f"views/{editing}" if editing else "new-view")
    return {"entity": entity, "values": values, "columns": columns, "pool": pool, "fields": fields, "editing": editing,
            "errors": errors or {}, "action": action, "pack_default": _pack_default(request, entity), "sortable": names, "error": None}


def _values_of(view: ListView | None, entity: Entity) -> dict[str, Any]:
    if view is None:
        return {"label_en": f"All {entity.plural_label.en.lower()}", "label_zh": f"全部{entity.plural_label.zh_cn}", "page_size": "50",
                "default": "on" if entity.pack == PACK_NAME else "", "name": "all" if entity.pack == PACK_NAME else ""}
    values: dict[str, Any] = {"name": view.name, "label_en": view.label.en, "label_zh": view.label.zh_cn, "page_size": str(view.page_size),
                              "filter": view.filter or "", "default": "on" if view.default else ""}
    for key, sort in zip(("sort", "sort2"), view.sort, strict=False):
        values[f"{key}_field"] = sort.field
        values[f"{key}_desc"] = "on" if sort.descending else ""
    return values


async def view_page(request: Request) -> Response:
    layer = layer_of(request)
    entity = entity_or_404(request)
    if entity is None or entity.child_of:
        return not_found(request)
    editing = request.path_params.get("view")
    view = None
    if editing is not None:
        if editing not in {v["name"] for v in screen_edits.layer_views(layer.current_files(), entity.name)}:
            return not_found(request)
        view = next((v for v in site_of(request).registry.list_views_of(entity.name) if v.name == editing), None)
    if view is not None:
        sequence = [COLUMNS, *view.columns, POOL]
    else:
        title = entity.title_field or (entity.fields[0].name if entity.fields else "id")
        sequence = [COLUMNS, title, *[f.name for f in entity.stored_fields if f.name != title][:4], POOL]
    return render(request, "design/view_editor.html", _context(request, entity, _values_of(view, entity), sequence, editing))


def filter_errors(request: Request, entity: Entity, text: str) -> list[str]:
    """The problems of a list filter, as "line:column: message" (empty when it checks)."""
    if not text.strip():
        return []
    checked = checked_expression(" ".join(text.split()), site_of(request).registry, entity.name, "filter")
    return [f"{e.line}:{e.column}: {e.message}" for e in checked.errors]


async def save_view(request: Request) -> Response:
    layer = layer_of(request)
    entity = entity_or_404(request)
    if entity is None or entity.child_of:
        return not_found(request)
    editing = request.path_params.get("view")
    files = layer.current_files()
    if editing is not None and editing not in {v["name"] for v in screen_edits.layer_views(files, entity.name)}:
        return not_found(request)
    form = await form_data(request)
    data = plain(form)
    sequence = [str(v) for v in form.getlist("item")]
    action, arg = op_of(form)
    if action in ("up", "down", "unplace", "place"):
        if action in ("up", "down"):
            sequence = screen_edits.move(sequence, arg, -1 if action == "up" else 1)
        elif arg in sequence:
            sequence.remove(arg)
            sequence.insert(len(sequence) if action == "unplace" else (sequence.index(POOL) if POOL in sequence else len(sequence)), arg)
        return page(request, "design/view_editor.html", _context(request, entity, data, sequence, editing))
    context = _context(request, entity, data, sequence, editing)
    data["columns"] = context["columns"]
    taken = {v.name for v in site_of(request).registry.list_views_of(entity.name)}
    errors: dict[str, str] = {}
    try:
        view = screen_edits.view_from_input(data, listable=listable(entity), taken=taken, editing=editing)
    except edits.EditRefused as exc:
        errors.update(exc.errors)
    problems = filter_errors(request, entity, str(data.get("filter") or ""))
    if problems:
        errors["filter"] = "\n".join(problems)
    if context["pack_default"] is not None and data.get("default"):
        errors["default"] = f"the pack's view '{context['pack_default'].name}' is the default; the layer can add views but not replace it"
    if errors:
        context["errors"] = errors
        return render(request, "design/view_editor.html", context, status=422)
    new = screen_edits.set_view(files, entity.name, view)
    return await propose(request, new, f"{entity.name}: list view {view['name']}", context["action"])


async def remove_view(request: Request) -> Response:
    layer = layer_of(request)
    entity = entity_or_404(request)
    if entity is None:
        return not_found(request)
    try:
        files = screen_edits.remove_view(layer.current_files(), entity.name, request.path_params["view"])
    except edits.EditRefused:
        return not_found(request)
    return await propose(request, files, f"{entity.name}: remove list view {request.path_params['view']}", f"/admin/design/entities/{entity.name}/views")


routes = [
    Route("/admin/design/entities/{name:str}/views", views_page, methods=["GET"]),
    Route("/admin/design/entities/{name:str}/new-view", view_page, methods=["GET"]),
    Route("/admin/design/entities/{name:str}/new-view", save_view, methods=["POST"]),
    Route("/admin/design/entities/{name:str}/views/{view:str}", view_page, methods=["GET"]),
    Route("/admin/design/entities/{name:str}/views/{view:str}", save_view, methods=["POST"]),
    Route("/admin/design/entities/{name:str}/views/{view:str}/remove", remove_view, methods=["POST"]),
]
