"""The part of the OpenAPI document that describes imports over the API
(crm_platform/ui/api/imports.py): uploading a CSV or Excel file into an entity (a dry run, or a
background job) and following an import's progress."""

from __future__ import annotations

from typing import Any

from crm_platform.engine.imports import DUPLICATE_CHOICES, MODES
from crm_platform.metadata.model import Registry
from crm_platform.ui.api.openapi_common import entity_schema, errors, int_param, ok

_TAG = ["imports"]


def import_paths(registry: Registry) -> dict[str, Any]:
    form = {"type": "object", "required": ["file", "entity"], "properties": {
        "file": {"type": "string", "format": "binary", "description": "a CSV or Excel file, a header row first"},
        "entity": entity_schema(registry, top_level_only=True),
        "mapping": {"type": "string", "description": "JSON: {\"column header\": \"field\"} or a list per column; left out: suggested from the headers"},
        "key": {"type": "string", "description": "a field (or id) that finds the record a row updates; left out: every row creates"},
        "mode": {"type": "string", "enum": list(MODES), "description": "all: all rows or none; valid: the valid rows"},
        "duplicates": {"type": "string", "enum": list(DUPLICATE_CHOICES), "description": "rows that look like an existing record (update needs a key)"},
        "dry_run": {"type": "string", "enum": ["true", "false"], "description": "true: check and count, write nothing"}}}
    counts = {k: {"type": "integer"} for k in ("total", "created", "updated", "failed", "skipped")}
    dry_run = {"type": "object", "properties": {**counts, "valid": {"type": "integer"}, "written": {"type": "boolean"}, "errors": {"type": "array", "items": {"type": "object"}},
                                                "duplicates": {"type": "array", "items": {"type": "object"}}, "headers": {"type": "array", "items": {"type": "string"}},
                                                "mapping": {"type": "object"}}}
    started = {"type": "object", "properties": {"id": {"type": "integer"}, "job_id": {"type": ["integer", "string", "null"]}, "status": {"type": "string"},
                                                "progress_url": {"type": "string"}}}
    progress = {"type": "object", "properties": {**counts, "status": {"type": "string"}, "done": {"type": "integer"}, "percent": {"type": "number"},
                                                 "errors": {"type": "array", "items": {"type": "object"}}, "duplicates": {"type": "array", "items": {"type": "object"}}}}
    return {
        "/api/v1/imports": {
            "post": {"tags": _TAG, "operationId": "start_import", "summary": "Import a file into an entity: a dry run (200) or a background job (202)",
                     "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": form}}},
                     "responses": {"200": ok(dry_run, "dry run: what the import would do"), "202": ok(started, "started as a background job"),
                                   **errors(400, 401, 403, 404, 413, 422)}},
        },
        "/api/v1/imports/{id}": {
            "parameters": [int_param("id", "an import's id")],
            "get": {"tags": _TAG, "operationId": "import_progress", "summary": "An import's status, counts and row errors",
                    "responses": {"200": ok(progress), **errors(401, 403, 404)}},
        },
    }


__all__ = ["import_paths"]
