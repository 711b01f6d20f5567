"""The part of the OpenAPI document that describes reports over the API
(crm_platform/ui/api/reports.py): running a report spec (grouped aggregates, scoped to the caller),
and the saved reports (listed, kept, run and deleted)."""

from __future__ import annotations

from typing import Any

from crm_platform.engine.reports import AGGREGATES, MAX_ROWS
from crm_platform.metadata.model import Registry
from crm_platform.ui.api.openapi_common import (
    ID_OBJECT,
    entity_schema,
    errors,
    int_param,
    json_body,
    ok,
    ref,
)

_TAG = ["reports"]


def report_schemas(registry: Registry) -> dict[str, Any]:
    """Component schemas: a report spec, a saved report in and out, a report's result."""
    spec = {
        "type": "object", "required": ["entity"], "title": "A report: the records of one entity, grouped and measured",
        "properties": {
            "entity": entity_schema(registry),
            "group_by": {"type": "array", "maxItems": 2, "items": {"type": "string"}, "description": "fields or date buckets, e.g. stage, expected_close:month"},
            "measures": {"type": "array", "items": {"type": "object", "properties": {
                "aggregate": {"type": "string", "enum": list(AGGREGATES)}, "field": {"type": ["string", "null"], "description": "a number (or date, for min/max) field; none for count"}}}},
            "filter": {"type": ["string", "null"], "description": "a condition in the rules language"},
            "limit": {"type": "integer", "description": f"at most this many groups (default 200; taken between 1 and {MAX_ROWS})"},
        },
    }
    result = {"type": "object", "properties": {
        "spec": ref("ReportSpec"), "groups": {"type": "array", "items": {"type": "object"}}, "measures": {"type": "array", "items": {"type": "object"}},
        "rows": {"type": "array", "items": {"type": "object", "properties": {
            "keys": {"type": "array"}, "labels": {"type": "array"}, "values": {"type": "object"}, "drill": {"type": "object"}}}},
        "totals": {"type": "object"}, "truncated": {"type": "boolean"}}}
    saved = {"type": "object", "properties": {
        "id": {"type": "integer"}, "name": {"type": "string"}, "spec": ref("ReportSpec"), "owner_id": {"type": ["integer", "null"]},
        "shared": {"type": "boolean"}, "created_at": {"type": "string", "format": "date-time"}}}
    return {
        "ReportSpec": spec,
        "ReportResult": result,
        "SavedReport": saved,
        "SavedReportInput": {"type": "object", "required": ["name", "spec"], "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 200}, "spec": ref("ReportSpec"), "shared": {"type": "boolean", "description": "shared with everyone (each still sees only what they may read)"}}},
    }


def report_paths() -> dict[str, Any]:
    id_param = int_param("id", "a saved report's id")
    return {
        "/api/v1/reports/run": {
            "post": {"tags": _TAG, "operationId": "run_report", "summary": "Run a report spec for the caller", "requestBody": json_body(ref("ReportSpec")),
                     "responses": {"200": ok(ref("ReportResult")), **errors(400, 401, 403, 404, 415, 422)}},
        },
        "/api/v1/reports": {
            "get": {"tags": _TAG, "operationId": "list_reports", "summary": "The caller's saved reports and the shared ones",
                    "responses": {"200": ok({"type": "object", "properties": {"reports": {"type": "array", "items": ref("SavedReport")}}}), **errors(401)}},
            "post": {"tags": _TAG, "operationId": "save_report", "summary": "Keep a report (checked by running it)", "requestBody": json_body(ref("SavedReportInput")),
                     "responses": {"201": ok(ID_OBJECT, "saved"), **errors(400, 401, 403, 404, 415, 422)}},
        },
        "/api/v1/reports/{id}": {
            "parameters": [id_param],
            "get": {"tags": _TAG, "operationId": "run_saved_report", "summary": "Run a saved report for the caller",
                    "responses": {"200": ok(ref("ReportResult")), **errors(400, 401, 403, 404)}},
            "delete": {"tags": _TAG, "operationId": "delete_report", "summary": "Delete a saved report (its owner or an administrator)",
                       "responses": {"204": {"description": "deleted"}, **errors(401, 403, 404)}},
        },
    }


__all__ = ["report_paths", "report_schemas"]
