"""The part of the OpenAPI document that describes the administration API
(crm_platform/ui/api/access_admin.py): roles, their grants and field access, org units, users and
reassigning a leaver's records (administrators only), and sharing one record (whoever may update it)."""

from __future__ import annotations

from typing import Any

from crm_platform.engine.layer_edits import NAME_RE
from crm_platform.metadata.access import ACTIONS, FIELD_ACCESS, SCOPES, UNIT_KINDS
from crm_platform.metadata.model import Registry
from crm_platform.ui.api.access_admin import MAX_LABEL, MAX_UNIT_NAME
from crm_platform.ui.api.openapi_common import (
    ID_OBJECT,
    entity_names,
    entity_param,
    errors,
    int_param,
    json_body,
    ok,
    ref,
)

_TAG = ["administration"]
_UNIT_ID = {"type": ["integer", "null"], "minimum": 1, "description": "id of an org unit (null: none)"}
_USER_ID = {"type": ["integer", "null"], "minimum": 1, "description": "id of a user (null: none)"}
_ROLE_NAMES = {"type": "array", "items": {"type": "string"}, "description": "role names"}


def admin_schemas(registry: Registry) -> dict[str, Any]:
    """Component schemas: a role, a grant, a unit and a user, in and out."""
    action = {"type": "string", "description": f"one of {', '.join(ACTIONS)}, * (every action) or transition:<name>",
              "anyOf": [{"enum": [*ACTIONS, "*"]}, {"pattern": "^transition:[a-z][a-z0-9_]*$"}]}
    grant_entity = {"type": "string", "enum": [*entity_names(registry), "*"], "description": "an entity, or * for every entity"}
    label = {"type": ["string", "null"], "maxLength": MAX_LABEL}
    unit_name = {"type": ["string", "null"], "maxLength": MAX_UNIT_NAME}
    role_name = {"type": "string", "pattern": NAME_RE.pattern, "description": "lowercase letters, digits and underscores, starting with a letter"}
    return {
        "Role": {"type": "object", "properties": {
            "name": {"type": "string"}, "label_en": {"type": "string"}, "label_zh": {"type": "string"}, "source": {"type": "string", "description": "pack:<name> or site"},
            "grants": {"type": "array", "items": {"type": "object", "properties": {"entity": {"type": "string"}, "action": {"type": "string"},
                                                                                  "scope": {"type": "string", "enum": list(SCOPES)}, "source": {"type": ["string", "null"]}}}},
            "includes": _ROLE_NAMES,
            "fields": {"type": "array", "items": {"type": "object", "properties": {"entity": {"type": "string"}, "field": {"type": "string"},
                                                                                  "access": {"type": "string", "enum": list(FIELD_ACCESS)}}}}}},
        "RoleInput": {"type": "object", "required": ["name", "label_en"], "properties": {
            "name": role_name, "label_en": {"type": "string", "minLength": 1, "maxLength": MAX_LABEL}, "label_zh": label, "includes": _ROLE_NAMES}},
        "RolePatch": {"type": "object", "properties": {"label_en": label, "label_zh": label, "includes": _ROLE_NAMES}},
        "RoleChanged": {"type": "object", "properties": {"name": {"type": "string"}, "layer_version": {"type": "integer", "description": "the site layer version the change made"}}},
        "GrantInput": {"type": "object", "required": ["entity", "action", "scope"], "properties": {
            "entity": grant_entity, "action": action, "scope": {"type": "string", "enum": list(SCOPES)}}},
        "Grant": {"type": "object", "properties": {"role": {"type": "string"}, "entity": {"type": "string"}, "action": {"type": "string"},
                                                   "scope": {"type": "string", "enum": list(SCOPES)},
                                                   "layer_version": {"type": ["integer", "null"], "description": "null when the role already had this grant"}}},
        "FieldAccessInput": {"type": "object", "required": ["entity", "field"], "properties": {
            "entity": {"type": "string", "enum": entity_names(registry)} if registry.entities else {"type": "string"}, "field": {"type": "string"},
            "access": {"type": ["string", "null"], "enum": [*FIELD_ACCESS, None], "description": "null: visible and editable again"}}},
        "OrgUnit": {"type": "object", "properties": {
            "id": {"type": "integer"}, "key": {"type": ["string", "null"]}, "name": {"type": "string"},
            "label": {"type": "object", "properties": {"en": {"type": "string"}, "zh-CN": {"type": "string"}}},
            "kind": {"type": "string", "enum": list(UNIT_KINDS)}, "parent_id": {"type": ["integer", "null"]}, "path": {"type": "string"}, "archived": {"type": "boolean"}}},
        "OrgUnitInput": {"type": "object", "required": ["name", "kind"], "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": MAX_UNIT_NAME}, "kind": {"type": "string", "enum": list(UNIT_KINDS)},
            "name_zh": unit_name, "parent_id": {**_UNIT_ID, "description": "the unit above (null: at the top)"}}},
        "OrgUnitPatch": {"type": "object", "properties": {
            "name": unit_name, "name_zh": unit_name, "kind": {"type": ["string", "null"], "enum": [*UNIT_KINDS, None]},
            "parent_id": {**_UNIT_ID, "description": "move below this unit (null: to the top; leave out to keep)"}, "archived": {"type": ["boolean", "null"]}}},
        "User": {"type": "object", "properties": {
            "id": {"type": "integer"}, "username": {"type": "string"}, "display_name": {"type": "string"}, "email": {"type": ["string", "null"]},
            "unit_id": {"type": ["integer", "null"]}, "manager_id": {"type": ["integer", "null"]}, "active": {"type": "boolean"}, "is_admin": {"type": "boolean"}, "roles": _ROLE_NAMES}},
        "UserInput": {"type": "object", "required": ["username", "password"], "properties": {
            "username": {"type": "string", "minLength": 2, "maxLength": 150, "description": "letters, digits and _ . @ -, starting with a letter or digit"},
            "password": {"type": "string", "minLength": 8}, "display_name": {"type": ["string", "null"], "maxLength": 200}, "email": {"type": ["string", "null"], "maxLength": 254},
            "language": {"type": ["string", "null"], "enum": ["en", "zh-CN", None]}, "unit_id": _UNIT_ID, "manager_id": _USER_ID, "roles": _ROLE_NAMES}},
        "UserPatch": {"type": "object", "properties": {"unit_id": _UNIT_ID, "manager_id": _USER_ID,
                                                       "roles": {**_ROLE_NAMES, "type": ["array", "null"], "description": "the user's whole list of roles"}}},
        "Share": {"type": "object", "properties": {
            "id": {"type": "integer"}, "entity": {"type": "string"}, "record_id": {"type": "integer"}, "user_id": {"type": ["integer", "null"]}, "unit_id": {"type": ["integer", "null"]},
            "access": {"type": "string", "enum": ["read", "edit"]}, "created_by": {"type": ["integer", "null"]}, "created_at": {"type": "string", "format": "date-time"}}},
        "ShareInput": {"type": "object", "required": ["access"], "description": "one of user_id and unit_id", "properties": {
            "access": {"type": "string", "enum": ["read", "edit"]}, "user_id": _USER_ID, "unit_id": _UNIT_ID}},
    }


def admin_paths(registry: Registry) -> dict[str, Any]:
    def listing(schema: str) -> dict[str, Any]:
        return ok({"type": "object", "required": ["data"], "properties": {"data": {"type": "array", "items": ref(schema)}}})

    role = {"name": "role", "in": "path", "required": True, "schema": {"type": "string"}, "description": "a role's name"}
    admin = errors(401, 403)
    write = {**errors(400, 401, 403, 415, 422)}
    return {
        "/api/v1/admin/roles": {
            "get": {"tags": _TAG, "operationId": "list_roles", "summary": "Roles with their grants, includes and field access", "responses": {"200": listing("Role"), **admin}},
            "post": {"tags": _TAG, "operationId": "create_role", "summary": "Add a role (a new version of the site layer)", "requestBody": json_body(ref("RoleInput")),
                     "responses": {"201": ok(ref("RoleChanged"), "created"), **write}},
        },
        "/api/v1/admin/roles/{role}": {
            "parameters": [role],
            "patch": {"tags": _TAG, "operationId": "update_role", "summary": "Change a role's labels and the roles it includes", "requestBody": json_body(ref("RolePatch")),
                      "responses": {"200": ok(ref("RoleChanged")), **write, **errors(404)}},
        },
        "/api/v1/admin/roles/{role}/grants": {
            "parameters": [role],
            "post": {"tags": _TAG, "operationId": "grant", "summary": "Let the role do an action on an entity within a scope", "requestBody": json_body(ref("GrantInput")),
                     "responses": {"201": ok(ref("Grant"), "granted"), **write, **errors(404)}},
            "delete": {"tags": _TAG, "operationId": "revoke", "summary": "Take an action on an entity away from the role",
                       "parameters": [{"name": "entity", "in": "query", "required": True, "schema": {"type": "string"}},
                                      {"name": "action", "in": "query", "required": True, "schema": {"type": "string"}}],
                       "responses": {"204": {"description": "revoked"}, **errors(401, 403, 404, 422)}},
        },
        "/api/v1/admin/roles/{role}/fields": {
            "parameters": [role],
            "put": {"tags": _TAG, "operationId": "set_field_access", "summary": "Hide a field from the role, make it read-only, or neither",
                    "requestBody": json_body(ref("FieldAccessInput")), "responses": {"204": {"description": "set"}, **write, **errors(404)}},
        },
        "/api/v1/admin/units": {
            "get": {"tags": _TAG, "operationId": "list_units", "summary": "The org tree's units", "responses": {"200": listing("OrgUnit"), **admin}},
            "post": {"tags": _TAG, "operationId": "create_unit", "summary": "Add an org unit (a new version of the site layer)", "requestBody": json_body(ref("OrgUnitInput")),
                     "responses": {"201": ok(ID_OBJECT, "created"), **write, **errors(404)}},
        },
        "/api/v1/admin/units/{id}": {
            "parameters": [int_param("id", "an org unit's id")],
            "patch": {"tags": _TAG, "operationId": "update_unit", "summary": "Rename, change the kind, move or archive an org unit", "requestBody": json_body(ref("OrgUnitPatch")),
                      "responses": {"200": ok({"type": "object", "properties": {"id": {"type": "integer"}, "layer_version": {"type": "integer"}}}), **write, **errors(404)}},
        },
        "/api/v1/admin/users": {
            "get": {"tags": _TAG, "operationId": "list_users", "summary": "Users with their unit, manager and roles", "responses": {"200": listing("User"), **admin}},
            "post": {"tags": _TAG, "operationId": "create_user", "summary": "Add a user", "requestBody": json_body(ref("UserInput")),
                     "responses": {"201": ok(ID_OBJECT, "created"), **write}},
        },
        "/api/v1/admin/users/{id}": {
            "parameters": [int_param("id", "a user's id")],
            "patch": {"tags": _TAG, "operationId": "update_user", "summary": "Change a user's unit, manager and roles", "requestBody": json_body(ref("UserPatch")),
                      "responses": {"200": ok(ID_OBJECT), **write, **errors(404)}},
        },
        "/api/v1/admin/users/{id}/reassign": {
            "parameters": [int_param("id", "the user whose records move")],
            "post": {"tags": _TAG, "operationId": "reassign_records", "summary": "Give every record a user owns to another user",
                     "requestBody": json_body({"type": "object", "required": ["to_user_id"], "properties": {"to_user_id": {"type": "integer", "minimum": 1}}}),
                     "responses": {"200": ok({"type": "object", "properties": {"moved": {"type": "object", "additionalProperties": {"type": "integer"}, "description": "records moved per entity"}}}),
                                   **write, **errors(404)}},
        },
        "/api/v1/records/{entity}/{id}/shares": {
            "parameters": [entity_param(registry), int_param("id", "the record's id")],
            "get": {"tags": ["sharing"], "operationId": "list_shares", "summary": "Who a record is shared with", "responses": {"200": listing("Share"), **errors(401, 403, 404)}},
            "post": {"tags": ["sharing"], "operationId": "share_record", "summary": "Share a record with one user or one unit (whoever may update it)",
                     "requestBody": json_body(ref("ShareInput")), "responses": {"201": ok(ID_OBJECT, "shared"), **write, **errors(404)}},
        },
    }


__all__ = ["admin_paths", "admin_schemas"]
