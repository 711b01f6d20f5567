"""The designer's shared screens: its home (what the site layer holds, versions with diffs,
rollback, export), and the preview-then-apply step every editor ends with. An editor computes
the layer's new files and calls `propose(...)`: the admin sees the diff and the migration plan
(columns added, archived; refusals and why) and applies it as a new version, or goes back."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from crm_platform.engine.site_layer import LayerRefused, SiteLayer, diff
from crm_platform.ui.screens.common import form_data, site_of
from crm_platform.ui.templating import render


def layer_of(request: Request) -> SiteLayer:
    """The site layer, for administrators only (403 otherwise)."""
    site = site_of(request)
    site.access.require_administrator(request.state.actor)
    return SiteLayer(site)


def _problems(exc: LayerRefused) -> list[dict[str, Any]]:
    rows = [{"where": f"{p.file}:{p.line}:{p.column}" if p.line else p.file, "message": p.message} for p in exc.problems]
    if exc.plan is not None:
        rows += [{"where": s.table, "message": f"{s.description}: {s.refusal or s.blocked}"} for s in exc.plan.refused]
    return rows


async def propose(request: Request, files: dict[str, str], note: str, back: str) -> Response:
    """The preview page for a change: the diff, the migration plan or the problems, and Apply."""
    layer = layer_of(request)
    context: dict[str, Any] = {"files_json": json.dumps(files, ensure_ascii=False), "note": note, "back": back,
                               "diff": diff(layer.current_files(), files), "plan": None, "problems": [], "error": None}
    try:
        context["plan"] = await asyncio.to_thread(layer.preview, files)
    except LayerRefused as exc:
        context["problems"] = _problems(exc)
        context["error"] = exc.message
    return render(request, "design/preview.html", context, status=422 if context["problems"] else 200)


async def apply(request: Request) -> Response:
    layer = layer_of(request)
    form = await form_data(request)
    note = str(form.get("note") or "")[:500] or None
    back = str(form.get("back") or "/admin/design")
    try:
        files = json.loads(str(form.get("files") or "{}"))
        assert isinstance(files, dict)
    except (ValueError, AssertionError):
        return render(request, "error.html", {"status": 400, "message": "the change was not readable; start again from the editor", "details": []}, status=400)
    try:
        version = await asyncio.to_thread(layer.apply, files, note, request.state.actor.username)
    except LayerRefused as exc:
        context = {"files_json": json.dumps(files, ensure_ascii=False), "note": note or "", "back": back, "diff": diff(layer.current_files(), files),
                   "plan": exc.plan, "problems": _problems(exc), "error": exc.message}
        return render(request, "design/preview.html", context, status=422)
    return RedirectResponse(f"/admin/design?applied={version.id}", status_code=303)


async def home(request: Request) -> Response:
    layer = layer_of(request)
    site = site_of(request)
    current = layer.current()
    files = current.files if current else {}
    layer_entities = {e.name for e in site.registry.entities.values() if e.pack == "site"}
    context = {"versions": layer.versions(50), "current": current, "files": sorted(files),
               "entities": sorted(site.registry.entities.values(), key=lambda e: (e.pack != "site", e.label.get(request.state.actor.language))),
               "layer_entities": layer_entities, "applied": request.query_params.get("applied"), "error": None}
    return render(request, "design/home.html", context)


async def version_page(request: Request) -> Response:
    layer = layer_of(request)
    version = layer.version(request.path_params["id"])
    if version is None:
        return render(request, "not_found.html", {}, status=404)
    earlier = [v for v in layer.versions() if v.id < version.id]
    return render(request, "design/version.html", {"version": version, "diff": diff(earlier[0].files if earlier else {}, version.files), "error": None})


async def rollback(request: Request) -> Response:
    layer = layer_of(request)
    try:
        version = await asyncio.to_thread(layer.rollback, request.path_params["id"], request.state.actor.username)
    except LookupError:
        return render(request, "not_found.html", {}, status=404)
    except LayerRefused as exc:
        old = layer.version(request.path_params["id"])
        files = old.files if old else {}
        context = {"files_json": json.dumps(files, ensure_ascii=False), "note": f"rollback to version {request.path_params['id']}", "back": "/admin/design",
                   "diff": diff(layer.current_files(), files), "plan": exc.plan, "problems": _problems(exc), "error": exc.message}
        return render(request, "design/preview.html", context, status=422)
    return RedirectResponse(f"/admin/design?applied={version.id}", status_code=303)


routes = [
    Route("/admin/design", home, methods=["GET"]),
    Route("/admin/design/apply", apply, methods=["POST"]),
    Route("/admin/design/versions/{id:int}", version_page, methods=["GET"]),
    Route("/admin/design/versions/{id:int}/rollback", rollback, methods=["POST"]),
]
