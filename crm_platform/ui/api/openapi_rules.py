"""The part of the OpenAPI document that describes checking a rules-language expression over the
API (crm_platform/ui/api/rules.py), as the designer does while an administrator types."""

from __future__ import annotations

from typing import Any

from crm_platform.metadata.model import Registry
from crm_platform.rules import PURPOSES
from crm_platform.ui.api.openapi_common import entity_schema, errors, json_body, ok


def rules_paths(registry: Registry) -> dict[str, Any]:
    body = {"type": "object", "required": ["entity", "expression"], "properties": {
        "entity": entity_schema(registry), "expression": {"type": "string", "description": "an expression in the rules language"},
        "purpose": {"type": ["string", "null"], "enum": [*PURPOSES, None], "description": "what the expression is for (default condition)"},
        "field": {"type": ["string", "null"], "description": "the field a formula or default is for"}}}
    error = {"type": "object", "properties": {"line": {"type": "integer"}, "column": {"type": "integer"}, "message": {"type": "string"}, "rendered": {"type": "string"}}}
    result = {"type": "object", "properties": {"ok": {"type": "boolean"}, "type": {"type": ["string", "null"], "description": "the expression's type when it checks"},
                                               "errors": {"type": "array", "items": error}}}
    return {
        "/api/v1/rules/check": {
            "post": {"tags": ["rules"], "operationId": "check_expression", "summary": "Check an expression against an entity: its type, or errors with positions",
                     "requestBody": json_body(body), "responses": {"200": ok(result), **errors(400, 401, 404, 415, 422)}},
        },
    }


__all__ = ["rules_paths"]
