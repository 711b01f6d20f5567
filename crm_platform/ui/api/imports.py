"""Imports over the API.

    POST /api/v1/imports   multipart: file, entity, mapping (JSON: {"column header": "field"} or a list
                           per column; omitted: suggested from the headers), key (a field or "id"; omitted:
                           always create), mode ("all" | "valid"), duplicates ("skip" | "import" | "update": rows
                           that look like an existing record or an earlier row; "update" needs a key; default
                           "skip"), dry_run ("true" | "false")
        dry_run=true  -> 200 {total, created, updated, failed, skipped, valid, written: false,
                              errors: [{row, column, field, value, reason, code}],
                              duplicates: [{row, title, action, matches: [{entity, id, row, title, score, url, reasons}]}], mapping}
        otherwise     -> 202 {id, job_id, status, progress_url}: the import runs as a background job
    GET  /api/v1/imports/<id>  -> {status, total, done, created, updated, failed, skipped, percent, errors, duplicates, ...}
"""

from __future__ import annotations

import json
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from crm_platform.engine.imports import (
    Importer,
    ImportSettings,
    parse_mapping,
    read_table,
    suggest_mapping,
)
from crm_platform.engine.imports_store import ImportStore
from crm_platform.engine.records.errors import BadRequest, FieldError
from crm_platform.ui.api.files import read_upload
from crm_platform.ui.responses import json_response

TRUE = ("1", "true", "yes", "on")


def _text(form: Any, name: str) -> str | None:
    value = form.get(name)
    return value.strip() if isinstance(value, str) and value.strip() else None


async def create(request: Request) -> Response:
    site = request.app.state.site
    actor = request.state.actor
    upload = await read_upload(request)
    if isinstance(upload, Response):
        return upload
    data, file_name, _content_type = upload
    form = request.scope["state"]["form"]
    entity_name = _text(form, "entity")
    if entity_name is None:
        raise BadRequest("name the entity to import into", [FieldError("entity", "required", "required")])
    entity = site.records.entity(entity_name)
    table = await run_in_threadpool(read_table, data, file_name or "")
    raw_mapping = _text(form, "mapping")
    if raw_mapping is None:
        mapping = suggest_mapping(site, actor, entity, table.headers)
    else:
        try:
            mapping = parse_mapping(json.loads(raw_mapping), table.headers)
        except json.JSONDecodeError as exc:
            raise BadRequest(f"mapping is not valid JSON: {exc}", [FieldError("mapping", str(exc), "json")]) from None
    settings = ImportSettings(mapping, _text(form, "key"), _text(form, "mode") or "all", _text(form, "duplicates") or "skip")
    if (_text(form, "dry_run") or "").lower() in TRUE:
        importer = Importer(site, actor, entity.name, table, settings)
        result = await run_in_threadpool(importer.run, True)
        return json_response({**result.as_dict(), "headers": table.headers, "mapping": dict(zip(table.headers, mapping, strict=True))})
    store = ImportStore(site)
    import_id, job_id = await run_in_threadpool(store.submit, actor, entity.name, file_name or "upload", data, settings)
    return json_response({"id": import_id, "job_id": job_id, "status": store.progress(actor, import_id)["status"],
                          "progress_url": f"/api/v1/imports/{import_id}"}, status=202)


async def progress(request: Request) -> Response:
    return json_response(ImportStore(request.app.state.site).progress(request.state.actor, request.path_params["id"]))


routes = [
    Route("/imports", create, methods=["POST"]),
    Route("/imports/{id:int}", progress, methods=["GET"]),
]
