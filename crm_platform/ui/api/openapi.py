"""The OpenAPI 3.1 document of the API, generated from the Registry: a schema and paths per entity,
accounts, metadata, files and the designer here; the other groups of endpoints from their own
modules (openapi_admin, openapi_workflow, openapi_reports, openapi_search, openapi_rules,
openapi_imports, openapi_dashboards). tests/ui/test_openapi.py fails when a route under /api/v1
is missing from the document."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from crm_platform import __version__
from crm_platform.engine.records.list_query import OPERATORS
from crm_platform.metadata.model import Entity, Field, Registry
from crm_platform.ui.api.openapi_admin import admin_paths, admin_schemas
from crm_platform.ui.api.openapi_dashboards import dashboard_paths, dashboard_schemas
from crm_platform.ui.api.openapi_imports import import_paths
from crm_platform.ui.api.openapi_reports import report_paths, report_schemas
from crm_platform.ui.api.openapi_rules import rules_paths
from crm_platform.ui.api.openapi_search import search_paths, search_schemas
from crm_platform.ui.api.openapi_workflow import workflow_paths, workflow_schemas
from crm_platform.ui.responses import json_response

_ERROR = {"$ref": "#/components/responses/Error"}


def _value_schema(f: Field) -> dict[str, Any]:
    kind = f.value_type
    if kind in ("text", "long_text", "phone", "auto_number"):
        schema: dict[str, Any] = {"type": "string"}
        if f.max_length:
            schema["maxLength"] = f.max_length
    elif kind == "email":
        schema = {"type": "string", "format": "email"}
    elif kind == "url":
        schema = {"type": "string", "format": "uri"}
    elif kind == "integer":
        schema = {"type": "integer"}
    elif kind in ("decimal", "money", "percent"):
        schema = {"type": "string", "pattern": r"^-?\d+(\.\d+)?$", "description": "a decimal number as a string (exact)"}
    elif kind == "boolean":
        schema = {"type": "boolean"}
    elif kind == "date":
        schema = {"type": "string", "format": "date"}
    elif kind == "datetime":
        schema = {"type": "string", "format": "date-time"}
    elif kind == "picklist":
        schema = {"type": "string", "enum": list(f.option_values)}
    elif kind == "multi_picklist":
        schema = {"type": "array", "items": {"type": "string", "enum": list(f.option_values)}}
    elif f.system_target:  # a user / org unit: the API also takes a username / unit name or path
        schema = {"type": ["integer", "string"], "description": "id or username of a user" if f.system_target == "user" else "id, name or path (Group / Sales) of an org unit"}
    elif kind in ("reference", "file"):
        schema = {"type": "integer", "minimum": 1, "description": f"id of a {f.entity or 'file'} record"}
    elif kind == "many_to_many":
        schema = {"type": "array", "items": {"type": "integer", "minimum": 1}}
    elif kind == "child_table":
        schema = {"type": "array", "items": {"$ref": f"#/components/schemas/{f.entity}_input"}}
    else:
        schema = {}
    schema["title"] = f.label.en
    return {"anyOf": [schema, {"type": "null"}]} if not f.required and kind not in ("child_table", "many_to_many") else schema


def _entity_schemas(entity: Entity) -> dict[str, Any]:
    writable = {}
    output = {
        "id": {"type": "integer"}, "version": {"type": "integer"},
        "created_at": {"type": "string", "format": "date-time"}, "updated_at": {"type": "string", "format": "date-time"},
        "created_by": {"type": ["integer", "null"]}, "updated_by": {"type": ["integer", "null"]},
        "deleted_at": {"type": ["string", "null"], "format": "date-time"},
    }
    for f in entity.fields:
        schema = _value_schema(f)
        output[f.name] = schema
        if f.type == "child_table":
            output[f.name] = {"type": "array", "items": {"$ref": f"#/components/schemas/{f.entity}"}}
        if f.type not in ("auto_number", "formula"):
            writable[f.name] = schema
        if f.type == "money":
            currency = {"type": ["string", "null"], "pattern": "^[A-Z]{3}$"}
            writable[f"{f.name}_currency"] = currency
            output[f"{f.name}_currency"] = currency
    required = [f.name for f in entity.fields if f.required and f.type not in ("auto_number", "formula")]
    base_in = {"type": "object", "properties": writable, "additionalProperties": False}
    if entity.child_of:
        base_in["properties"] = {**writable, "id": {"type": "integer", "description": "id of an existing row to keep"}}
    create = {**base_in, "required": required} if required else base_in
    patch = {"type": "object", "properties": {**writable, "version": {"type": "integer", "description": "the version this change is based on"}}, "required": ["version"], "additionalProperties": False}
    return {
        entity.name: {"type": "object", "properties": output, "title": entity.label.en},
        f"{entity.name}_input": create,
        f"{entity.name}_patch": patch,
    }


def _record_paths(entity: Entity) -> dict[str, Any]:
    name = entity.name
    ref = {"$ref": f"#/components/schemas/{name}"}
    tag = [name]
    id_param = {"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}
    filters = [
        {"name": f.name, "in": "query", "required": False, "schema": {"type": "string"},
         "description": f"filter: {f.name}=value, or {f.name}__<op>=value with op in {', '.join(OPERATORS)}"}
        for f in entity.stored_fields
    ]
    list_params = [
        {"name": "q", "in": "query", "schema": {"type": "string"}, "description": "search text"},
        {"name": "sort", "in": "query", "schema": {"type": "string"}, "description": "comma-separated fields, '-' for descending"},
        {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1}},
        {"name": "page_size", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 200}},
        {"name": "deleted", "in": "query", "schema": {"type": "string", "enum": ["exclude", "include", "only"]}},
        *filters,
    ]
    ok = lambda schema, desc="OK": {"description": desc, "content": {"application/json": {"schema": schema}}}  # noqa: E731
    errors = {"400": _ERROR, "401": _ERROR, "403": _ERROR, "404": _ERROR}
    paths: dict[str, Any] = {
        f"/api/v1/records/{name}/{{id}}": {
            "parameters": [id_param],
            "get": {"tags": tag, "operationId": f"get_{name}", "summary": f"Get one {entity.label.en}", "responses": {"200": ok(ref), **errors}},
            "patch": {"tags": tag, "operationId": f"update_{name}", "summary": f"Update a {entity.label.en} (merge by version)",
                      "requestBody": {"required": True, "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}_patch"}}}},
                      "responses": {"200": ok(ref), **errors, "409": _ERROR, "422": _ERROR}},
            "delete": {"tags": tag, "operationId": f"delete_{name}", "summary": f"Move a {entity.label.en} to the recycle bin", "responses": {"204": {"description": "deleted"}, **errors}},
        },
        f"/api/v1/records/{name}/{{id}}/restore": {
            "parameters": [id_param],
            "post": {"tags": tag, "operationId": f"restore_{name}", "summary": "Restore from the recycle bin", "responses": {"200": ok(ref), **errors}},
        },
        f"/api/v1/records/{name}/{{id}}/history": {
            "parameters": [id_param],
            "get": {"tags": tag, "operationId": f"history_{name}", "summary": "Field-level change history", "responses": {"200": ok({"$ref": "#/components/schemas/History"}), **errors}},
        },
    }
    if not entity.child_of:
        paths[f"/api/v1/records/{name}"] = {
            "get": {"tags": tag, "operationId": f"list_{name}", "summary": f"List {entity.plural_label.en}", "parameters": list_params,
                    "responses": {"200": ok({"type": "object", "properties": {"data": {"type": "array", "items": ref}, "total": {"type": "integer"}, "page": {"type": "integer"}, "page_size": {"type": "integer"}, "pages": {"type": "integer"}}}), **errors}},
            "post": {"tags": tag, "operationId": f"create_{name}", "summary": f"Create a {entity.label.en}",
                     "requestBody": {"required": True, "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}_input"}}}},
                     "responses": {"201": ok(ref, "created"), **errors, "415": _ERROR, "422": _ERROR}},
        }
    return paths


def _design_paths() -> dict[str, Any]:
    """The designer's layer endpoints (administrators)."""
    tag = ["design"]
    files = {"type": "object", "additionalProperties": {"type": "string"}, "description": "layer files by path, e.g. entities/exhibition.yaml"}
    body = {"required": True, "content": {"application/json": {"schema": {"type": "object", "required": ["files"], "properties": {"files": files, "note": {"type": "string"}}}}}}
    version_param = {"name": "version_id", "in": "path", "required": True, "schema": {"type": "integer"}}
    ok = {"description": "OK"}
    return {
        "/api/v1/design/layer": {"get": {"tags": tag, "operationId": "design_layer", "summary": "The current layer's files", "responses": {"200": ok, "403": _ERROR}}},
        "/api/v1/design/preview": {"post": {"tags": tag, "operationId": "design_preview", "summary": "The migration plan a layer needs", "requestBody": body,
                                            "responses": {"200": ok, "403": _ERROR, "422": _ERROR}}},
        "/api/v1/design/apply": {"post": {"tags": tag, "operationId": "design_apply", "summary": "Apply a layer as a new version", "requestBody": body,
                                          "responses": {"201": ok, "403": _ERROR, "422": _ERROR}}},
        "/api/v1/design/versions": {"get": {"tags": tag, "operationId": "design_versions", "summary": "Layer versions, newest first", "responses": {"200": ok, "403": _ERROR}}},
        "/api/v1/design/versions/{version_id}/diff": {"parameters": [version_param], "get": {
            "tags": tag, "operationId": "design_diff", "summary": "What a version changed (or against ?against=<id>)", "responses": {"200": ok, "403": _ERROR, "404": _ERROR}}},
        "/api/v1/design/versions/{version_id}/rollback": {"parameters": [version_param], "post": {
            "tags": tag, "operationId": "design_rollback", "summary": "Serve an earlier version again, as a new version", "responses": {"201": ok, "403": _ERROR, "404": _ERROR, "422": _ERROR}}},
        "/api/v1/design/export": {"get": {"tags": tag, "operationId": "design_export", "summary": "The layer as a pack (zip)", "responses": {"200": ok, "403": _ERROR}}},
    }


def build_openapi(registry: Registry) -> dict[str, Any]:
    schemas: dict[str, Any] = {
        "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "object", "properties": {
            "status": {"type": "integer"}, "code": {"type": "string"}, "message": {"type": "string"},
            "details": {"type": "array", "items": {"type": "object", "properties": {"field": {"type": "string"}, "message": {"type": "string"}, "code": {"type": "string"}}}}}}}},
        "History": {"type": "object", "properties": {"data": {"type": "array", "items": {"type": "object"}}}},
        "Token": {"type": "object", "properties": {"token": {"type": "string"}, "id": {"type": "integer"}, "name": {"type": "string"}, "expires_at": {"type": ["string", "null"]}}},
    }
    paths: dict[str, Any] = {
        "/api/v1/health": {"get": {"operationId": "health", "summary": "Liveness", "security": [], "responses": {"200": {"description": "OK"}}}},
        "/api/v1/auth/token": {"post": {"operationId": "login_for_token", "summary": "Exchange username and password for a personal access token", "security": [],
                                        "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object", "required": ["username", "password"], "properties": {"username": {"type": "string"}, "password": {"type": "string"}, "name": {"type": "string"}, "days": {"type": "integer"}}}}}},
                                        "responses": {"201": {"description": "token", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Token"}}}}, "401": _ERROR, "422": _ERROR}}},
        "/api/v1/auth/me": {"get": {"operationId": "me", "summary": "The authenticated user", "responses": {"200": {"description": "OK"}, "401": _ERROR}}},
        "/api/v1/tokens": {"get": {"operationId": "list_tokens", "summary": "My tokens", "responses": {"200": {"description": "OK"}, "401": _ERROR}},
                           "post": {"operationId": "create_token", "summary": "Create a token", "requestBody": {"required": True, "content": {"application/json": {"schema": {"type": "object", "properties": {"name": {"type": "string"}, "days": {"type": "integer"}}}}}},
                                    "responses": {"201": {"description": "token", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Token"}}}}, "401": _ERROR, "422": _ERROR}}},
        "/api/v1/tokens/{id}": {"parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}],
                                "delete": {"operationId": "revoke_token", "summary": "Revoke a token", "responses": {"204": {"description": "revoked"}, "401": _ERROR, "404": _ERROR}}},
        "/api/v1/meta/entities": {"get": {"operationId": "list_entities", "summary": "Entities of the site", "responses": {"200": {"description": "OK"}}}},
        "/api/v1/meta/entities/{entity}": {"parameters": [{"name": "entity", "in": "path", "required": True, "schema": {"type": "string"}}],
                                           "get": {"operationId": "get_entity", "summary": "Fields, views and forms of one entity", "responses": {"200": {"description": "OK"}, "404": _ERROR}}},
        "/api/v1/meta/packs": {"get": {"operationId": "list_packs", "summary": "The packs being served, with their versions and dependencies", "responses": {"200": {"description": "OK"}, "401": _ERROR}}},
        "/api/v1/openapi.json": {"get": {"operationId": "openapi", "summary": "This document", "responses": {"200": {"description": "the OpenAPI 3.1 document"}, "401": _ERROR}}},
        "/api/v1/files": {"post": {"operationId": "upload_file", "summary": "Upload a file for a file field",
                                   "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {"type": "object", "properties": {"file": {"type": "string", "format": "binary"}}}}}},
                                   "responses": {"201": {"description": "stored"}, "400": _ERROR, "413": _ERROR}}},
        "/api/v1/files/{id}": {"parameters": [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer"}}],
                               "get": {"operationId": "download_file", "summary": "Download a file", "responses": {"200": {"description": "the file"}, "404": _ERROR}}},
    }
    paths.update(_design_paths())
    paths.update(dashboard_paths())
    schemas.update(dashboard_schemas(registry))
    paths.update(admin_paths(registry))
    schemas.update(admin_schemas(registry))
    paths.update(workflow_paths(registry))
    schemas.update(workflow_schemas(registry))
    paths.update(report_paths())
    schemas.update(report_schemas(registry))
    paths.update(search_paths(registry))
    schemas.update(search_schemas())
    paths.update(rules_paths(registry))
    paths.update(import_paths(registry))
    for entity in registry.entities.values():
        schemas.update(_entity_schemas(entity))
        paths.update(_record_paths(entity))
    return {
        "openapi": "3.1.0",
        "info": {"title": "CRM platform API", "version": __version__, "description": f"Generated from registry {registry.content_hash[:12]} ({', '.join(p.name + ' ' + p.version for p in registry.packs)})."},
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}, {"session": []}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "responses": {"Error": {"description": "error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}, "session": {"type": "apiKey", "in": "cookie", "name": "crm_session"}},
        },
    }


async def openapi(request: Request) -> Response:
    return json_response(build_openapi(request.app.state.site.registry))


routes = [Route("/openapi.json", openapi, methods=["GET"])]
