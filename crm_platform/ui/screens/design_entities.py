"""The object designer: new objects, an object's page (its fields, which pack each comes from),
its labels, adding a field of any type, editing, reordering and archiving the fields the layer
added. Every action computes the layer's new files (crm_platform.engine.layer_entity_edits) and ends in
design_common.propose: the admin reviews the diff and the migration, then applies it.
Administrators only. The form layout editor is in design_forms.py, list views in design_views.py."""

from __future__ import annotations

from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from crm_platform.engine import layer_edits as edits
from crm_platform.engine import layer_entity_edits as entity_edits
from crm_platform.engine import layer_field_input as field_input
from crm_platform.engine import layer_screen_edits as screen_edits
from crm_platform.engine.site_layer import PACK_NAME, SiteLayer
from crm_platform.metadata import field_types as ft
from crm_platform.metadata.model import Entity, Field
from crm_platform.ui.screens.common import form_data, site_of
from crm_platform.ui.screens.design_common import layer_of, propose
from crm_platform.ui.templating import is_htmx, render

# The field types in the order the designer offers them.
TYPE_GROUPS = (
    ("design_types_text", ("text", "long_text", "email", "phone", "url")),
    ("design_types_numbers", ("integer", "decimal", "money", "percent")),
    ("design_types_choices", ("boolean", "picklist", "multi_picklist")),
    ("design_types_dates", ("date", "datetime")),
    ("design_types_links", ("reference", "many_to_many", "child_table", "file")),
    ("design_types_computed", ("auto_number", "formula")),
)
OPTION_ROWS = 3  # blank option rows offered at the end of a picklist's options


# -- shared by the designer's editors -------------------------------------------------------------

def entity_or_404(request: Request) -> Entity | None:
    return site_of(request).registry.entities.get(request.path_params["name"])  # type: ignore[no-any-return]


def not_found(request: Request) -> Response:
    return render(request, "not_found.html", {}, status=404)


def plain(form: FormData, *lists: str) -> dict[str, Any]:
    """The submitted form as a dict of strings; the names in `lists` as lists (document order)."""
    data: dict[str, Any] = {k: str(v) for k, v in form.items() if isinstance(v, str)}
    for name in lists:
        data[name] = [str(v) for v in form.getlist(name)]
    return data


def op_of(form: FormData) -> tuple[str, str]:
    """The editor button pressed without JavaScript (or through htmx): ("up", "name"), ("", "")."""
    op = str(form.get("op") or "")
    action, _, arg = op.partition(":")
    return action, arg


def page(request: Request, template: str, context: dict[str, Any], status: int = 200) -> Response:
    """An editor page, or only its `editor` block for htmx (the editor's own buttons)."""
    return render(request, template, context, status=status, block="editor" if is_htmx(request) else None)


def label_dict(lbl: Any) -> dict[str, str]:
    return {"en": lbl.en, "zh-CN": lbl.zh_cn}


def layer_owns(entity: Entity) -> bool:
    return entity.pack == PACK_NAME


def field_rows(entity: Entity, files: dict[str, str]) -> list[dict[str, Any]]:
    """The entity's fields in their order, with where each comes from and what the layer may do."""
    mine = set(entity_edits.layer_fields(files, entity.name))
    return [{"field": f, "pack": f.pack, "editable": f.pack == PACK_NAME and f.name in mine, "details": _details(f)} for f in entity.fields]


def _details(f: Field) -> str:
    parts: list[str] = []
    if f.entity:
        parts.append(f"→ {f.entity}")
    if f.type == "reference" and f.on_delete != "restrict":
        parts.append(f.on_delete)
    if f.options:
        parts.append(", ".join(o.value for o in f.options[:6]) + (" …" if len(f.options) > 6 else ""))
    if f.max_length:
        parts.append(f"≤ {f.max_length}")
    if f.min is not None or f.max is not None:
        parts.append(f"{'' if f.min is None else f.min} … {'' if f.max is None else f.max}")
    if f.currency and f.type == "money":
        parts.append(f.currency)
    if f.format:
        parts.append(f.format)
    if f.expression:
        parts.append(f"= {f.expression}" + (f" ({f.result_type})" if f.result_type else ""))
    return " · ".join(parts)


def form_mode(registry: Any, entity: Entity) -> str:
    """How the layer may lay out the entity's form: 'extends' (a pack declares the form main:
    the layer adds sections to it) or 'full' (the layer declares main)."""
    main = registry.forms.get(f"{entity.name}.{screen_edits.MAIN_FORM}")
    return "extends" if main is not None and main.pack != PACK_NAME else "full"


# -- new object -------------------------------------------------------------------------------

def _new_context(request: Request, values: dict[str, Any], errors: dict[str, str]) -> dict[str, Any]:
    registry = site_of(request).registry
    parents = sorted((e for e in registry.entities.values() if not e.child_of), key=lambda e: e.name)
    return {"values": values, "errors": errors, "parents": parents, "error": None}


async def new_entity_page(request: Request) -> Response:
    layer_of(request)
    values = {"title_name": "name", "title_en": "Name", "title_zh": "名称"}
    return render(request, "design/entity_new.html", _new_context(request, values, {}))


async def create_entity(request: Request) -> Response:
    layer = layer_of(request)
    data = plain(await form_data(request))
    registry = site_of(request).registry
    try:
        doc = field_input.entity_from_input(data, taken=registry.entities, entities=[e.name for e in registry.entities.values() if not e.child_of])
    except edits.EditRefused as exc:
        return render(request, "design/entity_new.html", _new_context(request, data, exc.errors), status=422)
    files = entity_edits.new_entity(layer.current_files(), doc)
    return await propose(request, files, f"new object {doc['name']}", "/admin/design/entities/new")


# -- the object page ---------------------------------------------------------------------------

def _entity_context(request: Request, layer: SiteLayer, entity: Entity, values: dict[str, Any] | None = None,
                    errors: dict[str, str] | None = None) -> dict[str, Any]:
    registry = site_of(request).registry
    files = layer.current_files()
    if values is None:
        values = {"label_en": entity.label.en, "label_zh": entity.label.zh_cn, "plural_en": entity.plural_label.en,
                  "plural_zh": entity.plural_label.zh_cn, "icon": entity.icon or "", "title_field": entity.title_field or ""}
    main = registry.forms.get(f"{entity.name}.{screen_edits.MAIN_FORM}")
    return {"entity": entity, "rows": field_rows(entity, files), "own": layer_owns(entity), "values": values, "errors": errors or {},
            "stored": [f for f in entity.stored_fields], "type_groups": TYPE_GROUPS, "layer_fields": entity_edits.layer_fields(files, entity.name),
            "views": registry.list_views_of(entity.name), "form": main, "form_mode": form_mode(registry, entity),
            "children": registry.children_of(entity.name), "error": None}


async def entity_page(request: Request) -> Response:
    layer = layer_of(request)
    entity = entity_or_404(request)
    if entity is None:
        return not_found(request)
    return render(request, "design/entity.html", _entity_context(request, layer, entity))


async def update_entity(request: Request) -> Response:
    layer = layer_of(request)
    entity = entity_or_404(request)
    if entity is None:
        return not_found(request)
    data = plain(await form_data(request))
    try:
        changes = field_input.entity_properties_from_input(data, [f.name for f in entity.stored_fields])
    except edits.EditRefused as exc:
        return render(request, "design/entity.html", _entity_context(request, layer, entity, data, exc.errors), status=422)
    current = {"label": label_dict(entity.label), "plural_label": label_dict(entity.plural_label), "icon": entity.icon, "title_field": entity.title_field}
    if changes["plural_label"] is None:
        changes["plural_label"] = None if layer_owns(entity) else current["plural_label"]
    files = entity_edits.set_entity_properties(layer.current_files(), entity.name, changes, None if layer_owns(entity) else current)
    return await propose(request, files, f"{entity.name}: labels", f"/admin/design/entities/{entity.name}")


# -- fields ------------------------------------------------------------------------------------

def _field_values(f: Field) -> dict[str, Any]:
    """The editor's inputs for an existing field."""
    values: dict[str, Any] = {"name": f.name, "label_en": f.label.en, "label_zh": f.label.zh_cn,
                              "help_en": f.help.en if f.help else "", "help_zh": f.help.zh_cn if f.help else ""}
    for flag in ("required", "indexed", "read_only", "unique"):
        values[flag] = "on" if getattr(f, flag) else ""
    for key in ("max_length", "min", "max", "precision", "scale", "currency", "entity", "on_delete", "format", "expression", "result_type", "max_size_mb"):
        value = getattr(f, key)
        values[key] = "" if value is None else str(value)
    values["accept"] = ", ".join(f.accept)
    default = f.default
    if isinstance(default, (tuple, list)):
        default = ", ".join(str(v) for v in default)
    elif isinstance(default, bool):
        default = "true" if default else "false"
    values["default"] = "" if default is None else str(default)
    values["options"] = [{"value": o.value, "en": o.label.en, "zh": o.label.zh_cn, "color": o.color or ""} for o in f.options]
    return values


def _options_of(data: dict[str, Any]) -> list[dict[str, str]]:
    columns = [data.get(f"opt_{k}") or [] for k in ("value", "en", "zh", "color")]
    width = max((len(c) for c in columns), default=0)
    return [{k: (c[i] if i < len(c) else "") for k, c in zip(("value", "en", "zh", "color"), columns, strict=True)} for i in range(width)]


def _field_context(request: Request, entity: Entity, ftype: str, values: dict[str, Any], errors: dict[str, str], editing: str | None) -> dict[str, Any]:
    registry = site_of(request).registry
    options = list(values.get("options") or [])
    if ftype in ("picklist", "multi_picklist") and all(any(o.values()) for o in options):
        options += [{"value": "", "en": "", "zh": "", "color": ""} for _ in range(OPTION_ROWS if not options else 1)]
    values = {**values, "options": options}
    props = ft.FIELD_TYPES[ftype].properties if ftype in ft.FIELD_TYPES else frozenset()
    targets = sorted((e for e in registry.entities.values() if not e.child_of), key=lambda e: e.name)
    action = f"/admin/design/entities/{entity.name}/" + (f"fields/{editing}" if editing else "new-field")
    return {"entity": entity, "ftype": ftype, "values": values, "errors": errors, "editing": editing, "props": props,
            "targets": targets, "system_targets": tuple(ft.SYSTEM_TARGETS), "children": registry.children_of(entity.name), "on_delete": ft.ON_DELETE, "action": action,
            "result_types": ft.FORMULA_RESULT_TYPES, "type_groups": TYPE_GROUPS, "form_mode": form_mode(registry, entity),
            "has_form": registry.forms.get(f"{entity.name}.{screen_edits.MAIN_FORM}") is not None, "error": None}


def _option_op(values: dict[str, Any], action: str, arg: str) -> bool:
    """Apply an options button (move, remove, more rows); False when `action` is not one."""
    options = values["options"]
    if action == "opt_more":
        options += [{"value": "", "en": "", "zh": "", "color": ""} for _ in range(OPTION_ROWS)]
        return True
    if action in ("opt_up", "opt_down", "opt_remove") and arg.isdigit() and int(arg) < len(options):
        i = int(arg)
        if action == "opt_remove":
            del options[i]
        else:
            j = i - 1 if action == "opt_up" else i + 1
            if 0 <= j < len(options):
                options[i], options[j] = options[j], options[i]
        return True
    return False


async def new_field_page(request: Request) -> Response:
    layer_of(request)
    entity = entity_or_404(request)
    if entity is None:
        return not_found(request)
    ftype = request.query_params.get("type", "")
    if ftype not in ft.FIELD_TYPES:
        return render(request, "design/entity_field.html", _field_context(request, entity, "", {}, {}, None))
    values: dict[str, Any] = {"on_form": "on"}
    if ftype == "formula":
        values["result_type"] = "decimal"
    if ftype == "reference":
        values["on_delete"] = "restrict"
    return render(request, "design/entity_field.html", _field_context(request, entity, ftype, values, {}, None))


async def save_field(request: Request) -> Response:
    """Add a field (new-field) or change a layer field (fields/<name>); its options' buttons re-render."""
    layer = layer_of(request)
    entity = entity_or_404(request)
    if entity is None:
        return not_found(request)
    editing = request.path_params.get("field")
    files = layer.current_files()
    if editing is not None and editing not in entity_edits.layer_fields(files, entity.name):
        return not_found(request)
    form = await form_data(request)
    data = plain(form, "opt_value", "opt_en", "opt_zh", "opt_color")
    data["options"] = _options_of(data)
    ftype = entity.field(editing).type if editing else data.get("type", "")
    action, arg = op_of(form)
    if action and _option_op(data, action, arg):
        return page(request, "design/entity_field.html", _field_context(request, entity, ftype, data, {}, editing))
    registry = site_of(request).registry
    taken = set(entity.field_map) | set(entity_edits.layer_fields(files, entity.name))
    try:
        field = field_input.field_from_input(data, ftype, taken=taken, entities=[e.name for e in registry.entities.values() if not e.child_of],
                                             children=[e.name for e in registry.children_of(entity.name)], editing=editing)
        if editing:
            new = entity_edits.replace_field(files, entity.name, editing, field)
            note = f"{entity.name}: change field {editing}"
        else:
            new = entity_edits.add_field(files, entity.name, field)
            if data.get("on_form"):
                has_form = registry.forms.get(f"{entity.name}.{screen_edits.MAIN_FORM}") is not None
                new = screen_edits.place_on_form(new, entity.name, field["name"], extends=(form_mode(registry, entity) == "extends") if has_form else None)
            note = f"{entity.name}: add field {field['name']}"
    except edits.EditRefused as exc:
        return render(request, "design/entity_field.html", _field_context(request, entity, ftype, data, exc.errors, editing), status=422)
    back = f"/admin/design/entities/{entity.name}/" + (f"fields/{editing}" if editing else f"new-field?type={ftype}")
    return await propose(request, new, note, back)


async def edit_field_page(request: Request) -> Response:
    layer = layer_of(request)
    entity = entity_or_404(request)
    name = request.path_params["field"]
    if entity is None or name not in entity.field_map or name not in entity_edits.layer_fields(layer.current_files(), entity.name):
        return not_found(request)
    f = entity.field(name)
    return render(request, "design/entity_field.html", _field_context(request, entity, f.type, _field_values(f), {}, name))


async def archive_field(request: Request) -> Response:
    layer = layer_of(request)
    entity = entity_or_404(request)
    if entity is None:
        return not_found(request)
    name = request.path_params["field"]
    try:
        files = entity_edits.archive_field(layer.current_files(), entity.name, name)
    except edits.EditRefused as exc:
        context = _entity_context(request, layer, entity)
        context["error"] = "; ".join(exc.errors.values())
        return render(request, "design/entity.html", context, status=422)
    return await propose(request, files, f"{entity.name}: archive field {name}", f"/admin/design/entities/{entity.name}")


# -- the order of the fields --------------------------------------------------------------------

async def order_page(request: Request) -> Response:
    layer = layer_of(request)
    entity = entity_or_404(request)
    if entity is None:
        return not_found(request)
    files = layer.current_files()
    mine = entity_edits.layer_fields(files, entity.name)
    return render(request, "design/entity_order.html", {"entity": entity, "order": mine, "fixed": [f for f in entity.fields if f.name not in mine], "error": None})


async def save_order(request: Request) -> Response:
    layer = layer_of(request)
    entity = entity_or_404(request)
    if entity is None:
        return not_found(request)
    form = await form_data(request)
    files = layer.current_files()
    mine = entity_edits.layer_fields(files, entity.name)
    order = [str(v) for v in form.getlist("item") if str(v) in mine]
    action, arg = op_of(form)
    context = {"entity": entity, "order": order, "fixed": [f for f in entity.fields if f.name not in mine], "error": None}
    if action in ("up", "down"):
        context["order"] = screen_edits.move(order, arg, -1 if action == "up" else 1, first_fixed=False)
        return page(request, "design/entity_order.html", context)
    try:
        new = entity_edits.reorder_fields(files, entity.name, order)
    except edits.EditRefused as exc:
        context["error"] = "; ".join(exc.errors.values())
        return render(request, "design/entity_order.html", context, status=422)
    return await propose(request, new, f"{entity.name}: reorder fields", f"/admin/design/entities/{entity.name}/order")


routes = [
    Route("/admin/design/entities/new", new_entity_page, methods=["GET"]),
    Route("/admin/design/entities/new", create_entity, methods=["POST"]),
    Route("/admin/design/entities/{name:str}", entity_page, methods=["GET"]),
    Route("/admin/design/entities/{name:str}", update_entity, methods=["POST"]),
    Route("/admin/design/entities/{name:str}/new-field", new_field_page, methods=["GET"]),
    Route("/admin/design/entities/{name:str}/new-field", save_field, methods=["POST"]),
    Route("/admin/design/entities/{name:str}/fields/{field:str}", edit_field_page, methods=["GET"]),
    Route("/admin/design/entities/{name:str}/fields/{field:str}", save_field, methods=["POST"]),
    Route("/admin/design/entities/{name:str}/fields/{field:str}/archive", archive_field, methods=["POST"]),
    Route("/admin/design/entities/{name:str}/order", order_page, methods=["GET"]),
    Route("/admin/design/entities/{name:str}/order", save_order, methods=["POST"]),
]
