"""The form layout editor: an entity's sections (labels, 1 or 2 columns), the fields of each in
order, and the related lists of its detail screen -> forms/<entity>.yaml -> propose.

The pack format decides how much the layer may lay out: the form `main` of an entity of the
layer (or of a pack entity whose packs declare no `main`) is the layer's whole; a pack's `main`
form can only be extended, so its sections are shown read-only and the layer's sections are
appended after them.

The layout travels as one ordered list of `item` inputs: a marker `§s<key>` starts a section,
`§pool` the fields not on the form, every other item is a field in its place. Dragging (with
design_entities.js) or the up/down buttons (without JavaScript, answered by the server) only
change that order, so both ways submit the same thing."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from crm_platform.engine import layer_edits as edits
from crm_platform.engine import layer_screen_edits as screen_edits
from crm_platform.metadata.model import Entity
from crm_platform.ui.screens.common import form_data, site_of
from crm_platform.ui.screens.design_common import layer_of, propose
from crm_platform.ui.screens.design_entities import entity_or_404, form_mode, not_found, op_of, page
from crm_platform.ui.templating import render

POOL = "§pool"


def _new_label(number: int) -> dict[str, str]:
    return {"label_en": f"Section {number}", "label_zh": f"分区 {number}", "columns": "2"}


def _initial(request: Request, entity: Entity, mode: str) -> tuple[list[str], dict[str, dict[str, str]], list[str]]:
    """(sequence, section attributes by key, related lists) of what the layer has now."""
    registry = site_of(request).registry
    files = layer_of(request).current_files()
    mine = screen_edits.layer_form(files, entity.name)
    if mine is not None:
        sections = [{"label_en": s["label"]["en"], "label_zh": s["label"]["zh-CN"], "columns": str(s.get("columns", 2)), "fields": list(s["fields"])}
                    for s in mine.get("sections") or []]
        related = list(mine.get("related") or [])
    elif mode == "full" and registry.forms_of(entity.name):
        form = registry.forms_of(entity.name)[0]  # a pack form of another name: start from its layout
        sections = [{"label_en": s.label.en, "label_zh": s.label.zh_cn, "columns": str(s.columns), "fields": list(s.fields)} for s in form.sections]
        related = list(form.related)
    elif mode == "full":
        sections = [{"label_en": "Details", "label_zh": "详情", "columns": "2", "fields": [f.name for f in entity.fields]}]
        related = []
    else:
        sections, related = [], []
    sequence: list[str] = []
    attrs: dict[str, dict[str, str]] = {}
    for key, sec in enumerate(sections, 1):
        sequence += [f"§s{key}", *sec["fields"]]
        attrs[str(key)] = {k: v for k, v in sec.items() if k != "fields"}
    placed = set(sequence) | _pack_placed(request, entity, mode)
    sequence += [POOL, *[f.name for f in entity.fields if f.name not in placed]]
    return sequence, attrs, related


def _pack_sections(request: Request, entity: Entity, mode: str) -> list[Any]:
    if mode != "extends":
        return []
    registry = site_of(request).registry
    main = registry.forms[f"{entity.name}.{screen_edits.MAIN_FORM}"]
    mine = screen_edits.layer_form(layer_of(request).current_files(), entity.name)
    added = len((mine or {}).get("sections") or [])
    return list(main.sections[: len(main.sections) - added])


def _pack_placed(request: Request, entity: Entity, mode: str) -> set[str]:
    return {f for s in _pack_sections(request, entity, mode) for f in s.fields}


def _pack_related(request: Request, entity: Entity, mode: str) -> list[str]:
    if mode != "extends":
        return []
    main = site_of(request).registry.forms[f"{entity.name}.{screen_edits.MAIN_FORM}"]
    mine = screen_edits.layer_form(layer_of(request).current_files(), entity.name)
    added = len((mine or {}).get("related") or [])
    return list(main.related[: len(main.related) - added])


def _context(request: Request, entity: Entity, mode: str, sequence: list[str], attrs: dict[str, dict[str, str]], related: list[str],
             errors: dict[str, str] | None = None) -> dict[str, Any]:
    registry = site_of(request).registry
    sections: list[dict[str, Any]] = []
    pool: list[str] = []
    target: list[str] | None = None
    for item in sequence:
        if item == POOL:
            target = pool
        elif item.startswith("§s"):
            key = item[2:]
            fields: list[str] = []
            sections.append({"key": key, **_new_label(len(sections) + 1), **attrs.get(key, {}), "fields": fields})
            target = fields
        elif target is not None and item in entity.field_map:
            target.append(item)
    pack_related = _pack_related(request, entity, mode)
    candidates = [f"{e.name}.{f.name}" for e, f in registry.references_to(entity.name) if not e.child_of and f"{e.name}.{f.name}" not in pack_related]
    return {"entity": entity, "mode": mode, "sections": sections, "pool": pool, "related": related, "candidates": candidates,
            "pack_sections": _pack_sections(request, entity, mode), "pack_related": pack_related, "errors": errors or {},
            "action": f"/admin/design/entities/{entity.name}/form", "error": None}


async def form_page(request: Request) -> Response:
    layer_of(request)
    entity = entity_or_404(request)
    if entity is None or entity.child_of:
        return not_found(request)
    mode = form_mode(site_of(request).registry, entity)
    sequence, attrs, related = _initial(request, entity, mode)
    return render(request, "design/form_editor.html", _context(request, entity, mode, sequence, attrs, related))


def _apply_op(sequence: list[str], attrs: dict[str, dict[str, str]], action: str, arg: str) -> list[str]:
    seq = list(sequence)
    if POOL not in seq:
        seq.append(POOL)
    if action in ("up", "down"):
        return screen_edits.move(seq, arg, -1 if action == "up" else 1)
    if action == "unplace" and arg in seq:
        seq.remove(arg)
        return [*seq, arg]
    if action == "place" and arg in seq:
        seq.remove(arg)
        if not any(i.startswith("§s") for i in seq):
            seq.insert(0, "§s1")
        seq.insert(seq.index(POOL), arg)
        return seq
    if action == "add_section":
        keys = [int(i[2:]) for i in seq if i.startswith("§s") and i[2:].isdigit()]
        key = str(max(keys, default=0) + 1)
        attrs[key] = _new_label(len(keys) + 1)
        seq.insert(seq.index(POOL), f"§s{key}")
        return seq
    blocks = _blocks(seq)
    index = next((i for i, b in enumerate(blocks) if b[0] == f"§s{arg}"), None)
    if index is None:
        return seq
    if action == "remove_section":
        removed = blocks.pop(index)
        return [*[i for b in blocks for i in b], *removed[1:]]
    if action in ("section_up", "section_down"):
        other = index - 1 if action == "section_up" else index + 1
        if 0 <= other < len(blocks) and blocks[other][0] != POOL:
            blocks[index], blocks[other] = blocks[other], blocks[index]
        return [i for b in blocks for i in b]
    return seq


def _blocks(sequence: list[str]) -> list[list[str]]:
    blocks: list[list[str]] = []
    for item in sequence:
        if item.startswith("§") or not blocks:
            blocks.append([item])
        else:
            blocks[-1].append(item)
    return blocks


async def save_form(request: Request) -> Response:
    layer = layer_of(request)
    entity = entity_or_404(request)
    if entity is None or entity.child_of:
        return not_found(request)
    registry = site_of(request).registry
    mode = form_mode(registry, entity)
    form = await form_data(request)
    pack_placed = _pack_placed(request, entity, mode)
    sequence = [str(v) for v in form.getlist("item") if str(v).startswith("§") or (str(v) in entity.field_map and str(v) not in pack_placed)]
    keys = {i[2:] for i in sequence if i.startswith("§s")}
    attrs = {k: {a: str(form.get(f"s{k}_{a}") or "") for a in ("label_en", "label_zh", "columns")} for k in keys}
    related = [str(r) for r in form.getlist("related")]
    action, arg = op_of(form)
    if action:
        sequence = _apply_op(sequence, attrs, action, arg)
        return page(request, "design/form_editor.html", _context(request, entity, mode, sequence, attrs, related))
    context = _context(request, entity, mode, sequence, attrs, related)
    allowed = set(context["candidates"])
    try:
        sections = screen_edits.sections_from_input(context["sections"], [f for f in entity.field_map if f not in pack_placed])
        bad = [r for r in related if r not in allowed]
        if bad:
            raise edits.EditRefused({"related": f"'{bad[0]}' is not a reference to {entity.name}"})
        files = screen_edits.set_form(layer.current_files(), entity.name, sections, extends=mode == "extends",
                                      form_label={"en": entity.label.en, "zh-CN": entity.label.zh_cn}, related=related)
    except edits.EditRefused as exc:
        context["errors"] = exc.errors
        return render(request, "design/form_editor.html", context, status=422)
    return await propose(request, files, f"{entity.name}: form layout", f"/admin/design/entities/{entity.name}/form")


routes = [
    Route("/admin/design/entities/{name:str}/form", form_page, methods=["GET"]),
    Route("/admin/design/entities/{name:str}/form", save_form, methods=["POST"]),
]
