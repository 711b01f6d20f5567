"""The part of the OpenAPI document that describes /api/v1/dashboards (crm_platform/ui/api/dashboards.py):
the dashboards users build, their widgets and report specs, and the version every change names."""

from __future__ import annotations

from typing import Any

from crm_platform.engine.reports import AGGREGATES
from crm_platform.engine.user_dashboards import CHARTS, MAX_NAME, MAX_WIDGETS, SHARING
from crm_platform.metadata.model import Registry

_ERROR = {"$ref": "#/components/responses/Error"}
_TAG = ["dashboards"]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def dashboard_schemas(registry: Registry) -> dict[str, Any]:
    """Component schemas: the report spec a widget copies, widgets in and out, a dashboard in and out."""
    entities = sorted(e.name for e in registry.entities.values() if not e.child_of)
    name = {"type": "string", "minLength": 1, "maxLength": MAX_NAME}
    spec = {
        "type": "object", "required": ["entity"], "title": "A report: the records of one entity, grouped and measured",
        "properties": {
            "entity": {"type": "string", "enum": entities} if entities else {"type": "string"},
            "group_by": {"type": "array", "maxItems": 2, "items": {"type": "string"}, "description": "fields or date buckets, e.g. stage, expected_close:month"},
            "measures": {"type": "array", "minItems": 1, "maxItems": 3, "items": {
                "type": "object", "properties": {"aggregate": {"type": "string", "enum": list(AGGREGATES)}, "field": {"type": ["string", "null"]}}}},
            "filter": {"type": ["string", "null"], "description": "a condition in the rules language"},
            "limit": {"type": "integer", "minimum": 1, "maximum": 1000},
        },
    }
    widget_in = {
        "type": "object", "additionalProperties": False, "description": "report_id (a saved report, copied) or spec",
        "properties": {"title": name, "chart": {"type": "string", "enum": list(CHARTS)}, "report_id": {"type": "integer", "minimum": 1}, "spec": _ref("DashboardReportSpec")},
    }
    widget_out = {"type": "object", "properties": {"title": {"type": "string"}, "chart": {"type": "string", "enum": list(CHARTS)},
                                                   "report_id": {"type": "integer"}, "spec": _ref("DashboardReportSpec")}}
    writable = {"name": name, "sharing": {"type": "string", "enum": list(SHARING)}, "roles": {"type": "array", "items": {"type": "string"}, "description": "role names, when shared with roles"},
                "widgets": {"type": "array", "maxItems": MAX_WIDGETS, "items": _ref("DashboardWidgetInput"), "description": "the whole widget list, in order"}}
    dashboard = {
        "type": "object", "title": "A dashboard built in the browser",
        "properties": {
            "id": {"type": "integer"}, "name": {"type": "string"},
            "version": {"type": "integer", "description": "one more on every change; send it with a change (PATCH body, DELETE ?version=)"},
            "owner": {"type": "object", "properties": {"id": {"type": "integer"}, "name": {"type": "string"}}},
            "sharing": {"type": "string", "enum": list(SHARING)}, "roles": {"type": "array", "items": {"type": "string"}},
            "widgets": {"type": "array", "items": _ref("DashboardWidget")}, "can_edit": {"type": "boolean"},
            "created_at": {"type": "string", "format": "date-time"}, "updated_at": {"type": "string", "format": "date-time"}, "url": {"type": "string"},
        },
    }
    result = {"type": "object", "properties": {"title": {"type": "string"}, "left_out": {"type": "boolean", "description": "the caller may not read these records"},
                                               "result": {"type": "object"}, "error": {"type": "object"}}}
    return {
        "DashboardReportSpec": spec,
        "DashboardWidgetInput": widget_in,
        "DashboardWidget": widget_out,
        "Dashboard": dashboard,
        "DashboardWithResults": {"allOf": [_ref("Dashboard"), {"type": "object", "properties": {"results": {"type": "array", "items": result}}}]},
        "DashboardInput": {"type": "object", "required": ["name"], "additionalProperties": False, "properties": writable},
        "DashboardPatch": {"type": "object", "required": ["version"], "additionalProperties": False,
                           "properties": {**writable, "version": {"type": "integer", "description": "the version this change is based on (409 when the dashboard changed since)"}}},
        "DashboardList": {"type": "object", "properties": {"dashboards": {"type": "array", "items": _ref("Dashboard")}, "pack_dashboards": {"type": "array", "items": {
            "type": "object", "properties": {"name": {"type": "string"}, "label": {"type": "object"}, "pack": {"type": "string"}, "widgets": {"type": "integer"}, "url": {"type": "string"}}}}}},
    }


def dashboard_paths() -> dict[str, Any]:
    def ok(schema: str, description: str = "OK") -> dict[str, Any]:
        return {"description": description, "content": {"application/json": {"schema": _ref(schema)}}}

    def body(schema: str) -> dict[str, Any]:
        return {"required": True, "content": {"application/json": {"schema": _ref(schema)}}}

    id_param = {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}
    version_param = {"name": "version", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 1},
                     "description": "delete only while the dashboard is at this version (409 otherwise); without it, delete as it is"}
    errors = {"400": _ERROR, "401": _ERROR, "403": _ERROR}
    return {
        "/api/v1/dashboards": {
            "get": {"tags": _TAG, "operationId": "list_dashboards", "summary": "The built dashboards the caller sees and the pack dashboards for their roles",
                    "responses": {"200": ok("DashboardList"), "401": _ERROR}},
            "post": {"tags": _TAG, "operationId": "create_dashboard", "summary": "Build a dashboard (owned by the caller)", "requestBody": body("DashboardInput"),
                     "responses": {"201": ok("Dashboard", "created"), **errors, "415": _ERROR, "422": _ERROR}},
        },
        "/api/v1/dashboards/{id}": {
            "parameters": [id_param],
            "get": {"tags": _TAG, "operationId": "get_dashboard", "summary": "A dashboard and each widget's result for the caller",
                    "responses": {"200": ok("DashboardWithResults"), **errors, "404": _ERROR}},
            "patch": {"tags": _TAG, "operationId": "update_dashboard", "summary": "Change name, sharing, roles or widgets, based on a version",
                      "requestBody": body("DashboardPatch"), "responses": {"200": ok("Dashboard"), **errors, "404": _ERROR, "409": _ERROR, "415": _ERROR, "422": _ERROR}},
            "delete": {"tags": _TAG, "operationId": "delete_dashboard", "summary": "Delete a dashboard (owner or administrator)", "parameters": [version_param],
                       "responses": {"204": {"description": "deleted"}, **errors, "404": _ERROR, "409": _ERROR}},
        },
    }


__all__ = ["dashboard_paths", "dashboard_schemas"]
