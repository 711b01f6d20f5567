"""The designer's API (administrators): the site customization layer's files, a preview of the
migration a change needs, applying it as a new version, the versions with diffs, rollback and
export as a pack (a zip download)."""

from __future__ import annotations

import asyncio
import io
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from crm_platform.engine.records.errors import FieldError, NotFound, ValidationFailed
from crm_platform.engine.site_layer import LayerRefused, SiteLayer, diff
from crm_platform.ui.responses import error_response, json_response, read_json


def _layer(request: Request) -> SiteLayer:
    site = request.app.state.site
    site.access.require_administrator(request.state.actor)
    return SiteLayer(site)


async def _files(request: Request) -> tuple[dict[str, str], dict[str, Any]]:
    data = await read_json(request)
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in files.items()):
        raise ValidationFailed([FieldError("files", "send {files: {\"entities/x.yaml\": \"<yaml>\", ...}}", "required")])
    return files, data


def refused(exc: LayerRefused) -> Response:
    details = [{"field": p.file, "line": p.line, "column": p.column, "message": p.message, "code": p.code} for p in exc.problems]
    if exc.plan is not None:
        details += [{"field": s.table, "message": s.description + (f": {s.refusal or s.blocked}" if (s.refusal or s.blocked) else ""), "code": "refused"}
                    for s in exc.plan.refused]
    return error_response(422, "layer_refused", exc.message, details)


def _plan_json(plan: Any) -> dict[str, Any]:
    return {"steps": plan.as_dicts(), "refused": [s.description for s in plan.refused], "text": plan.describe()}


async def layer(request: Request) -> Response:
    current = _layer(request).current()
    return json_response({"version": current.id if current else None, "files": current.files if current else {}})


async def preview(request: Request) -> Response:
    layer = _layer(request)
    files, _ = await _files(request)
    try:
        plan = await asyncio.to_thread(layer.preview, files)
    except LayerRefused as exc:
        return refused(exc)
    return json_response({"ok": not plan.refused, "plan": _plan_json(plan), "diff": diff(layer.current_files(), files)})


async def apply(request: Request) -> Response:
    layer = _layer(request)
    files, data = await _files(request)
    note = data.get("note") if isinstance(data.get("note"), str) else None
    try:
        version = await asyncio.to_thread(layer.apply, files, note, request.state.actor.username)
    except LayerRefused as exc:
        return refused(exc)
    return json_response(version.as_dict(with_files=False), status=201)


async def versions(request: Request) -> Response:
    return json_response({"versions": [v.as_dict(with_files=False) for v in _layer(request).versions()]})


async def version_diff(request: Request) -> Response:
    layer = _layer(request)
    version = layer.version(int(request.path_params["version_id"]))
    if version is None:
        raise NotFound(f"no layer version {request.path_params['version_id']}")
    against = request.query_params.get("against")
    before = {}
    if against:
        other = layer.version(int(against)) if against.isdigit() else None
        if other is None:
            raise NotFound(f"no layer version {against}")
        before = other.files
    else:
        earlier = [v for v in layer.versions() if v.id < version.id]
        before = earlier[0].files if earlier else {}
    return json_response({"version": version.id, "diff": diff(before, version.files)})


async def rollback(request: Request) -> Response:
    layer = _layer(request)
    try:
        version = await asyncio.to_thread(layer.rollback, int(request.path_params["version_id"]), request.state.actor.username)
    except LookupError as exc:
        raise NotFound(str(exc)) from None
    except LayerRefused as exc:
        return refused(exc)
    return json_response(version.as_dict(with_files=False), status=201)


async def export(request: Request) -> Response:
    layer = _layer(request)
    buffer = io.BytesIO()
    with tempfile.TemporaryDirectory() as tmp:
        folder = layer.export(Path(tmp))
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(folder.rglob("*")):
                if path.is_file():
                    archive.write(path, str(path.relative_to(folder.parent)))
    return Response(buffer.getvalue(), media_type="application/zip", headers={"Content-Disposition": 'attachment; filename="site-pack.zip"'})


routes = [
    Route("/design/layer", layer, methods=["GET"]),
    Route("/design/preview", preview, methods=["POST"]),
    Route("/design/apply", apply, methods=["POST"]),
    Route("/design/versions", versions, methods=["GET"]),
    Route("/design/versions/{version_id:int}/diff", version_diff, methods=["GET"]),
    Route("/design/versions/{version_id:int}/rollback", rollback, methods=["POST"]),
    Route("/design/export", export, methods=["GET"]),
]
