"""The workflow designer (/admin/design/workflows): the site's workflows (packs' and the layer's),
a new workflow for an entity over one of its picklists, and the editor of one workflow (states:
final, work list roles, timers, fields set on entering, an approval; transitions: labels, from,
to, who, guard checked as the admin types, required fields, comment) with its diagram.

The editor works on a draft carried by the page (the layer file's data as JSON in each form), so
several changes are reviewed together; saving proposes the layer's new files. A workflow of the
layer is a full file `workflows/<name>.yaml`; a pack's workflow is changed by an extension file
(`extends: <name>`) whose states and transitions add to or replace the pack's by name. A state
that is not yet a value of the picklist becomes one through the layer's entity file."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from crm_platform.metadata.model import Registry
from crm_platform.ui.screens.common import form_data, site_of
from crm_platform.ui.screens.design_common import layer_of, propose
from crm_platform.ui.screens.design_flows import NAME, add_picklist_values, plain_yaml, to_yaml
from crm_platform.ui.screens.workflow_draft import (
    Draft,
    EditRefused,
    apply_edit,
    merge_flow,
    new_workflow,
)
from crm_platform.ui.templating import render
from crm_platform.ui.workflow_diagram import Edge, Node, render_svg


@functools.lru_cache(maxsize=8)
def _pack_flows(packs: tuple[tuple[str, str], ...], _version: str) -> dict[str, dict[str, Any]]:
    flows: dict[str, dict[str, Any]] = {}
    extensions: list[dict[str, Any]] = []
    for name, folder in packs:
        for path in sorted([*Path(folder, "workflows").glob("*.yaml"), *Path(folder, "workflows").glob("*.yml")]):
            data = plain_yaml(path.read_text(encoding="utf-8"), str(path))
            if not isinstance(data, dict):
                continue
            if "extends" in data:
                extensions.append(data)
            elif "name" in data:
                flows[data["name"]] = {**data, "_pack": name}
    for ext in extensions:  # dependencies come first in registry.packs, so in load order
        if ext["extends"] in flows:
            flows[ext["extends"]] = merge_flow(flows[ext["extends"]], ext)
    return flows


def pack_flows(registry: Registry) -> dict[str, dict[str, Any]]:
    """The packs' workflows as their files define them (pack extensions merged), without the layer."""
    packs = tuple((p.name, p.path) for p in registry.packs if p.name != "site")
    return _pack_flows(packs, registry.content_hash)


def layer_flows(files: dict[str, str]) -> dict[str, tuple[str, dict[str, Any]]]:
    """workflow name -> (layer file, its data) for the layer's workflow files, full or extending."""
    found: dict[str, tuple[str, dict[str, Any]]] = {}
    for name in sorted(files):
        if name.startswith("workflows/"):
            data = plain_yaml(files[name], name)
            if isinstance(data, dict) and isinstance(data.get("name") or data.get("extends"), str):
                found[data.get("name") or data["extends"]] = (name, data)
    return found


def _draft_for(request: Request, name: str) -> Draft | None:
    """The draft of workflow `name` as the layer has it (an empty extension for a pack's workflow)."""
    layer = layer_of(request)
    mine = layer_flows(layer.current_files())
    if name in mine:
        file, data = mine[name]
        return Draft(name, file, data)
    if name in pack_flows(layer.site.registry):
        return Draft(name, _free_file(layer.current_files(), name), {"extends": name})
    return None


def _free_file(files: dict[str, str], name: str) -> str:
    file, n = f"workflows/{name}.yaml", 2
    while file in files:
        file, n = f"workflows/{name}_{n}.yaml", n + 1
    return file


def diagram(registry: Registry, flow: dict[str, Any], values: list[dict[str, Any]], lang: str, per_row: int = 4, ident: str = "wf") -> str:
    labels = state_labels(registry, flow, values, lang)
    nodes = [Node(s["name"], labels.get(s["name"], s["name"]), bool(s.get("final"))) for s in flow.get("states", [])]
    edges = [Edge(t["name"], _label(t.get("label"), lang, t["name"]), tuple(t.get("from") or ()), t.get("to", "")) for t in flow.get("transitions", [])]
    title = f"{_label(flow.get('label'), lang, flow.get('name', ''))}: {len(nodes)} / {len(edges)}"
    return render_svg(nodes, edges, flow.get("initial"), title, "任意状态" if lang.startswith("zh") else "any state", ident, per_row)


def _label(label: Any, lang: str, fallback: str) -> str:
    if isinstance(label, dict):
        return str(label.get("zh-CN" if lang.startswith("zh") else "en") or label.get("en") or fallback)
    return str(label) if label else fallback


def state_labels(registry: Registry, flow: dict[str, Any], values: list[dict[str, Any]], lang: str) -> dict[str, str]:
    labels: dict[str, str] = {}
    entity = registry.entities.get(flow.get("entity", ""))
    field = entity.field_map.get(flow.get("field", "")) if entity else None
    for option in field.options if field else ():
        labels[option.value] = option.label.get(lang)
    for value in values:
        labels[value["value"]] = _label(value.get("label"), lang, value["value"])
    return labels


def transition_form(t: dict[str, Any]) -> dict[str, Any]:
    """A transition as its form shows it."""
    raw, raw_message = t.get("label"), t.get("guard_message")
    label: dict[str, Any] = raw if isinstance(raw, dict) else {"en": raw or "", "zh-CN": raw or ""}
    message: dict[str, Any] = raw_message if isinstance(raw_message, dict) else {}
    return {"name": t.get("name", ""), "label_en": label.get("en", ""), "label_zh": label.get("zh-CN", ""), "from": list(t.get("from") or []),
            "to": t.get("to", ""), "roles": list(t.get("roles") or []), "relations": list(t.get("relations") or []), "guard": t.get("guard") or "",
            "gm_en": message.get("en", ""), "gm_zh": message.get("zh-CN", ""), "required": ", ".join(t.get("required") or []),
            "comment": t.get("comment") or "optional"}


async def list_page(request: Request, error: str | None = None, status: int = 200, form: dict[str, Any] | None = None) -> Response:
    layer = layer_of(request)
    registry = layer.site.registry
    lang = request.state.actor.language
    mine = layer_flows(layer.current_files())
    flows = [{"name": f.name, "label": f.label.get(lang), "entity": registry.entity(f.entity).label.get(lang), "entity_name": f.entity,
              "pack": f.pack, "states": len(f.states), "transitions": len(f.transitions),
              "layer": "own" if f.pack == "site" else ("extends" if f.name in mine else None)} for f in registry.extra.get("workflows", ())]
    taken = {f.entity for f in registry.extra.get("workflows", ())}
    targets = [(f"{e.name}.{f.name}", f"{e.label.get(lang)} · {f.label.get(lang)}") for e in registry.entities.values()
               if e.name not in taken and not e.child_of for f in e.fields if f.type == "picklist"]
    target = (form or {}).get("target") or request.query_params.get("target") or ""
    options: list[tuple[str, str]] = []
    if target in dict(targets):
        entity, field = target.split(".")
        options = [(o.value, o.label.get(lang)) for o in registry.entity(entity).field(field).options]
    context = {"flows": flows, "targets": targets, "target": target, "options": options, "form": form or {}, "error": error}
    return render(request, "design/workflows.html", context, status=status)


async def create(request: Request) -> Response:
    """Step two of a new workflow: a draft with the chosen states, shown in the editor (nothing saved yet)."""
    layer = layer_of(request)
    form = await form_data(request)
    values = {"target": str(form.get("target") or ""), "name": str(form.get("name") or "").strip(), "label_en": str(form.get("label_en") or ""),
              "label_zh": str(form.get("label_zh") or ""), "states": [str(s) for s in form.getlist("states")], "initial": str(form.get("initial") or "")}
    try:
        draft = new_workflow(layer.site.registry, set(pack_flows(layer.site.registry)) | set(layer_flows(layer.current_files())), values)
    except EditRefused as exc:
        return await list_page(request, exc.message, 422, values)
    draft.file = _free_file(layer.current_files(), draft.name)
    return await editor(request, draft, notice="design_wf_draft_notice")


async def edit_page(request: Request) -> Response:
    draft = _draft_for(request, request.path_params["name"])
    if draft is None:
        return render(request, "not_found.html", {}, status=404)
    return await editor(request, draft)


def _read_draft(form: Any, name: str) -> Draft | None:
    try:
        data = json.loads(str(form.get("draft") or ""))
        draft = Draft(str(data["name"]), str(data["file"]), dict(data["data"]), list(data.get("values") or []))
    except (ValueError, KeyError, TypeError):
        return None
    if draft.name != name or not draft.file.startswith("workflows/") or not NAME.match(draft.file[10:].removesuffix(".yaml")):
        return None
    return draft


async def edit(request: Request) -> Response:
    """One change to the draft (op=...): the editor again with the changed draft, or the reason it
    was refused (422) with the draft as it was."""
    layer = layer_of(request)
    form = await form_data(request)
    draft = _read_draft(form, request.path_params["name"])
    if draft is None:
        return render(request, "error.html", {"status": 400, "message": "the draft was not readable; open the workflow again", "details": []}, status=400)
    base = pack_flows(layer.site.registry)
    try:
        changed = apply_edit(layer.site.registry, draft, base, str(form.get("op") or ""), form)
    except EditRefused as exc:
        return await editor(request, draft, error=exc.message, status=422, pending=exc.pending)
    return await editor(request, changed, notice="design_wf_changed")


async def save(request: Request) -> Response:
    layer = layer_of(request)
    form = await form_data(request)
    draft = _read_draft(form, request.path_params["name"])
    if draft is None:
        return render(request, "error.html", {"status": 400, "message": "the draft was not readable; open the workflow again", "details": []}, status=400)
    files = layer.current_files()
    owner = next((name for name, (file, _) in layer_flows(files).items() if file == draft.file), draft.name)
    if owner != draft.name:
        return render(request, "error.html", {"status": 400, "message": f"{draft.file} holds the workflow '{owner}'; open the workflow again", "details": []}, status=400)
    if set(draft.data) - {"extends"}:
        files[draft.file] = to_yaml(draft.data)
    else:
        files.pop(draft.file, None)  # an extension that changes nothing
    flow = draft.merged(pack_flows(layer.site.registry))
    entity = layer.site.registry.entities.get(flow.get("entity", ""))
    field = entity.field_map.get(flow.get("field", "")) if entity else None
    known = set(field.option_values) if field else set()
    states = {s["name"] for s in flow.get("states", [])}
    missing = [v for v in draft.values if v["value"] not in known and v["value"] in states]
    files = add_picklist_values(files, flow.get("entity", ""), flow.get("field", ""), missing)
    known = draft.name in layer_flows(layer.current_files()) or draft.name in pack_flows(layer.site.registry)
    return await propose(request, files, f"workflow {draft.name}", f"/admin/design/workflows/{draft.name}" if known else "/admin/design/workflows")


async def remove(request: Request) -> Response:
    """Propose the layer without its file for this workflow (its own workflow, or its changes to a pack's)."""
    layer = layer_of(request)
    files = layer.current_files()
    mine = layer_flows(files)
    name = request.path_params["name"]
    if name not in mine:
        return render(request, "not_found.html", {}, status=404)
    files.pop(mine[name][0])
    return await propose(request, files, f"workflow {name}: removed from the layer", "/admin/design/workflows")


async def editor(request: Request, draft: Draft, error: str | None = None, status: int = 200, notice: str | None = None,
                 pending: dict[str, Any] | None = None) -> Response:
    site = site_of(request)
    registry = site.registry
    lang = request.state.actor.language
    base = pack_flows(registry)
    flow = draft.merged(base)
    entity = registry.entities.get(flow.get("entity", ""))
    if entity is None:
        return render(request, "not_found.html", {}, status=404)
    labels = state_labels(registry, flow, draft.values, lang)
    states = [s["name"] for s in flow.get("states", [])]
    picklist = entity.field_map.get(flow.get("field", ""))
    origin_base = base.get(draft.name, {}) if draft.extends else {}

    def origin(section: str, name: str) -> str:
        if not draft.extends:
            return "layer"
        in_ext = any(e.get("name") == name for e in draft.data.get(section, []))
        in_base = any(e.get("name") == name for e in origin_base.get(section, []))
        return ("changed" if in_base else "added") if in_ext else "pack"

    state_rows = []
    for s in flow.get("states", []):
        on_enter = s.get("on_enter") or []
        sets = {k: v for item in on_enter if "set" in item for k, v in item["set"].items()}
        approval = next((item["approval"] for item in on_enter if "approval" in item), None)
        kept = [next(iter(item)) for item in on_enter if "set" not in item and "approval" not in item] + [f"on_exit:{k}" for item in s.get("on_exit") or [] for k in item]
        label = (approval or {}).get("label")
        label = label if isinstance(label, dict) else {"en": label or "", "zh-CN": label or ""}
        steps = [next(iter(step.items())) for step in (approval or {}).get("steps", []) if isinstance(step, dict) and step]
        state_rows.append({"name": s["name"], "label": labels.get(s["name"], s["name"]), "final": bool(s.get("final")), "work_list": s.get("work_list") or [],
                           "timers": s.get("timers") or [], "sets": sets, "approval": approval, "kept": kept, "origin": origin("states", s["name"]),
                           "approval_form": {"name": (approval or {}).get("name", ""), "label_en": label.get("en", ""), "label_zh": label.get("zh-CN", ""),
                                             "steps": [(k, "" if v is True else v) for k, v in steps], "approve": (approval or {}).get("approve", ""),
                                             "reject": (approval or {}).get("reject", "")}})
    pending = pending or {}
    transition_rows = []
    for t in flow.get("transitions", []):
        shown = pending.get("data") if pending.get("kind") == "transition" and pending.get("key") == t["name"] else t
        transition_rows.append({"name": t["name"], "label_text": _label(t.get("label"), lang, t["name"]), "origin": origin("transitions", t["name"]),
                                "summary": t, "form": transition_form(shown or t)})
    blank = pending.get("data") if pending.get("kind") == "transition" and not pending.get("key") else {}
    roles = [(r.name, r.label.get(lang)) for r in registry.extra.get("roles", ())]
    context = {
        "draft": draft, "draft_json": json.dumps(draft.as_json(), ensure_ascii=False), "flow": flow, "entity": entity, "picklist": picklist,
        "states": states, "labels": labels, "state_rows": state_rows, "transitions": transition_rows, "roles": roles,
        "fields": [(f.name, f.label.get(lang)) for f in entity.fields], "free_values": [(o.value, o.label.get(lang)) for o in (picklist.options if picklist else ()) if o.value not in states],
        "diagram_wide": diagram(registry, flow, draft.values, lang, 4, "wfw"), "diagram_narrow": diagram(registry, flow, draft.values, lang, 2, "wfn"),
        "yaml": to_yaml(draft.data), "in_layer": draft.name in layer_flows(layer_of(request).current_files()), "pending": pending,
        "new_transition": transition_form(blank or {}),
        "error": error, "notice": notice, "pack_name": (base.get(draft.name) or {}).get("_pack"),
    }
    return render(request, "design/workflow.html", context, status=status)


routes = [
    Route("/admin/design/workflows", list_page, methods=["GET"]),
    Route("/admin/design/workflows/new", create, methods=["POST"]),
    Route("/admin/design/workflows/{name:str}", edit_page, methods=["GET"]),
    Route("/admin/design/workflows/{name:str}/edit", edit, methods=["POST"]),
    Route("/admin/design/workflows/{name:str}/save", save, methods=["POST"]),
    Route("/admin/design/workflows/{name:str}/remove", remove, methods=["POST"]),
]
