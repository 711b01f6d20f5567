"""Building blocks the parts of the OpenAPI document share: the error response, references to
component schemas, JSON request bodies and answers, and the path parameters that name an entity
or an id (the entity names of the serving Registry as an enum)."""

from __future__ import annotations

from typing import Any

from crm_platform.metadata.model import Registry

ERROR: dict[str, str] = {"$ref": "#/components/responses/Error"}


def ref(name: str) -> dict[str, str]:
    """A reference to a component schema."""
    return {"$ref": f"#/components/schemas/{name}"}


def ok(schema: dict[str, Any] | None = None, description: str = "OK") -> dict[str, Any]:
    """A JSON answer with `schema` (or only a description)."""
    if schema is None:
        return {"description": description}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def json_body(schema: dict[str, Any], required: bool = True) -> dict[str, Any]:
    """A JSON request body."""
    return {"required": required, "content": {"application/json": {"schema": schema}}}


def errors(*codes: int) -> dict[str, Any]:
    """The error answers a handler can give, by status."""
    return {str(code): ERROR for code in codes}


def int_param(name: str, description: str | None = None) -> dict[str, Any]:
    """A path parameter holding a positive id."""
    param: dict[str, Any] = {"name": name, "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1}}
    if description:
        param["description"] = description
    return param


def entity_names(registry: Registry, top_level_only: bool = False) -> list[str]:
    """The entity names of the site, sorted; child tables left out with `top_level_only`."""
    return sorted(e.name for e in registry.entities.values() if not (top_level_only and e.child_of))


def entity_schema(registry: Registry, top_level_only: bool = False) -> dict[str, Any]:
    """A string that is one of the site's entity names."""
    names = entity_names(registry, top_level_only)
    return {"type": "string", "enum": names} if names else {"type": "string"}


def entity_param(registry: Registry, top_level_only: bool = False) -> dict[str, Any]:
    return {"name": "entity", "in": "path", "required": True, "schema": entity_schema(registry, top_level_only), "description": "an entity of the site"}


ID_OBJECT: dict[str, Any] = {"type": "object", "required": ["id"], "properties": {"id": {"type": "integer"}}}
LIST_OF_OBJECTS: dict[str, Any] = {"type": "object", "required": ["data"], "properties": {"data": {"type": "array", "items": {"type": "object"}}}}

__all__ = ["ERROR", "ID_OBJECT", "LIST_OF_OBJECTS", "entity_names", "entity_param", "entity_schema", "errors", "int_param", "json_body", "ok", "ref"]
