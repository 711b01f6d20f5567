"""The part of the OpenAPI document that describes search over the API
(crm_platform/ui/api/search.py): global search across entities, and the possible duplicates of a
record before it is created."""

from __future__ import annotations

from typing import Any

from crm_platform.engine.global_search import PER_ENTITY
from crm_platform.metadata.model import Registry
from crm_platform.ui.api.openapi_common import (
    entity_param,
    entity_schema,
    errors,
    json_body,
    ok,
    ref,
)

_TAG = ["search"]


def search_schemas() -> dict[str, Any]:
    """Component schemas: a group of search results, a possible duplicate."""
    label = {"type": "object", "properties": {"en": {"type": "string"}, "zh-CN": {"type": "string"}}}
    return {
        "SearchGroup": {"type": "object", "properties": {
            "entity": {"type": "string"}, "label": label, "more": {"type": "boolean", "description": "more records match than are listed"},
            "list_url": {"type": "string"}, "api_url": {"type": "string"}, "data": {"type": "array", "items": {"type": "object"}}}},
        "DuplicateMatch": {"type": "object", "properties": {
            "entity": {"type": "string"}, "id": {"type": "integer"}, "title": {"type": "string"}, "score": {"type": "number"}, "url": {"type": "string"},
            "reasons": {"type": "array", "items": {"type": "string"}}}},
    }


def search_paths(registry: Registry) -> dict[str, Any]:
    return {
        "/api/v1/search": {
            "get": {"tags": _TAG, "operationId": "global_search", "summary": "Search every entity the caller may read",
                    "parameters": [
                        {"name": "q", "in": "query", "required": True, "schema": {"type": "string", "minLength": 1}, "description": "the text to search for"},
                        {"name": "limit", "in": "query", "required": False, "schema": {"type": "integer", "minimum": 1}, "description": f"records per entity (default {PER_ENTITY})"},
                        {"name": "entity", "in": "query", "required": False, "schema": {"type": "array", "items": entity_schema(registry)},
                         "style": "form", "explode": True, "description": "only these entities (repeat the parameter)"},
                    ],
                    "responses": {"200": ok({"type": "object", "properties": {"query": {"type": "string"}, "groups": {"type": "array", "items": ref("SearchGroup")}}}),
                                  **errors(400, 401)}},
        },
        "/api/v1/duplicates/{entity}": {
            "parameters": [entity_param(registry)],
            "post": {"tags": _TAG, "operationId": "find_duplicates", "summary": "Records the caller may read that look like the one about to be created",
                     "requestBody": json_body({"type": "object", "description": "field values of the record to be created, by field name (other keys are ignored)"}),
                     "responses": {"200": ok({"type": "object", "properties": {"matches": {"type": "array", "items": ref("DuplicateMatch")}}}),
                                   **errors(400, 401, 403, 404, 415, 422)}},
        },
    }


__all__ = ["search_paths", "search_schemas"]
