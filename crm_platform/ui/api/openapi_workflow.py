"""The part of the OpenAPI document that describes workflow over the API
(crm_platform/ui/api/workflow.py): the transitions a user may fire on a record, firing one (with
the values and comment it asks for), the caller's pending approvals and deciding one."""

from __future__ import annotations

from typing import Any

from crm_platform.metadata.model import Registry
from crm_platform.ui.api.openapi_common import entity_param, errors, int_param, json_body, ok, ref

_TAG = ["workflow"]


def workflow_schemas(registry: Registry) -> dict[str, Any]:
    """Component schemas: a transition option, the transitions of a record, firing and deciding."""
    label = {"type": "object", "properties": {"en": {"type": "string"}, "zh-CN": {"type": "string"}}}
    option = {"type": "object", "properties": {
        "name": {"type": "string"}, "label": label, "to": {"type": "string"}, "allowed": {"type": "boolean"},
        "reason": {"type": ["string", "null"], "description": "why the caller may not fire it now"},
        "required": {"type": "array", "items": {"type": "string"}, "description": "fields the transition needs filled"},
        "comment": {"type": "string", "description": "optional or required"}}}
    return {
        "TransitionOption": option,
        "Transitions": {"type": "object", "properties": {
            "workflow": {"type": ["string", "null"], "description": "null when the entity has no workflow"}, "state": {"type": ["string", "null"]},
            "data": {"type": "array", "items": ref("TransitionOption")}, "history": {"type": "array", "items": {"type": "object"}}}},
        "FireTransition": {"type": "object", "properties": {
            "values": {"type": "object", "description": "field values the transition needs, by field name"},
            "comment": {"type": ["string", "null"]}}},
        "Approval": {"type": "object", "properties": {
            "id": {"type": "integer"}, "entity": {"type": "string"}, "record_id": {"type": "integer"}, "state": {"type": "string"}, "name": {"type": "string"},
            "step": {"type": "integer"}, "steps": {"type": "integer"}, "status": {"type": "string"}, "title": {"type": "string"},
            "entity_label": label, "label": label, "created_at": {"type": "string", "format": "date-time"}}},
        "ApprovalDecision": {"type": "object", "required": ["approve"], "properties": {
            "approve": {"type": "boolean", "description": "true to approve, false to reject"}, "comment": {"type": ["string", "null"]}}},
    }


def _transition_names(registry: Registry) -> list[str]:
    return sorted({t.name for flow in registry.extra.get("workflows", ()) for t in flow.transitions})


def workflow_paths(registry: Registry) -> dict[str, Any]:
    names = _transition_names(registry)
    name_param = {"name": "name", "in": "path", "required": True, "description": "a transition of the entity's workflow",
                  "schema": {"type": "string", "enum": names} if names else {"type": "string"}}
    record = [entity_param(registry), int_param("id", "the record's id")]
    return {
        "/api/v1/records/{entity}/{id}/transitions": {
            "parameters": record,
            "get": {"tags": _TAG, "operationId": "list_transitions", "summary": "The record's workflow state, the transitions leaving it (and whether the caller may fire each) and its history",
                    "responses": {"200": ok(ref("Transitions")), **errors(401, 403, 404)}},
        },
        "/api/v1/records/{entity}/{id}/transitions/{name}": {
            "parameters": [*record, name_param],
            "post": {"tags": _TAG, "operationId": "fire_transition", "summary": "Fire a transition: the record in its new state",
                     "requestBody": json_body(ref("FireTransition"), required=False),
                     "responses": {"200": ok({"type": "object", "description": "the record"}), **errors(400, 401, 403, 404, 409, 415, 422)}},
        },
        "/api/v1/approvals": {
            "get": {"tags": _TAG, "operationId": "my_approvals", "summary": "The pending approval steps the caller may decide, oldest first",
                    "responses": {"200": ok({"type": "object", "properties": {"data": {"type": "array", "items": ref("Approval")}}}), **errors(401)}},
        },
        "/api/v1/approvals/{id}/decision": {
            "parameters": [int_param("id", "an approval step's id")],
            "post": {"tags": _TAG, "operationId": "decide_approval", "summary": "Approve or reject a pending step", "requestBody": json_body(ref("ApprovalDecision")),
                     "responses": {"200": ok({"type": "object", "description": "the next step, or the record after the outcome"}), **errors(400, 401, 403, 404, 409, 415, 422)}},
        },
    }


__all__ = ["workflow_paths", "workflow_schemas"]
