"""Metadata endpoints: the entities, fields, views, forms and menus of the serving Registry."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from crm_platform.engine.records.errors import NotFound
from crm_platform.metadata.model import Entity, Field
from crm_platform.ui.responses import json_response


def field_json(f: Field) -> dict[str, Any]:
    out: dict[str, Any] = {"name": f.name, "type": f.type, "label": f.label.as_dict(), "required": f.required, "read_only": f.read_only}
    for key in ("max_length", "precision", "scale", "min", "max", "currency", "entity", "format", "result_type", "default"):
        value = getattr(f, key)
        if value is not None:
            out[key] = value
    if f.options:
        out["options"] = [{"value": o.value, "label": o.label.as_dict(), "color": o.color} for o in f.options]
    return out


def entity_json(entity: Entity, detail: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": entity.name, "label": entity.label.as_dict(), "plural_label": entity.plural_label.as_dict(),
        "title_field": entity.title_field, "owned": entity.owned, "child_of": entity.child_of, "pack": entity.pack,
    }
    if detail:
        out["search_fields"] = list(entity.search_fields)
        out["fields"] = [field_json(f) for f in entity.fields]
    return out


async def list_entities(request: Request) -> Response:
    registry = request.app.state.site.registry
    return json_response({"registry": registry.content_hash, "data": [entity_json(e, detail=False) for e in registry.entities.values()]})


async def get_entity(request: Request) -> Response:
    registry = request.app.state.site.registry
    entity = registry.entities.get(request.path_params["entity"])
    if entity is None:
        raise NotFound(f"unknown entity '{request.path_params['entity']}'")
    out = entity_json(entity)
    out["views"] = [{"name": v.name, "label": v.label.as_dict(), "columns": list(v.columns), "sort": [("-" if k.descending else "") + k.field for k in v.sort], "page_size": v.page_size, "default": v.default} for v in registry.list_views_of(entity.name)]
    out["forms"] = [{"name": f.name, "label": f.label.as_dict(), "sections": [{"label": s.label.as_dict(), "columns": s.columns, "fields": list(s.fields)} for s in f.sections], "related": list(f.related)} for f in registry.forms_of(entity.name)]
    return json_response(out)


async def list_packs(request: Request) -> Response:
    registry = request.app.state.site.registry
    return json_response({"registry": registry.content_hash, "data": [{"name": p.name, "version": p.version, "title": p.title.as_dict(), "depends": list(p.depends)} for p in registry.packs]})


routes = [
    Route("/meta/entities", list_entities, methods=["GET"]),
    Route("/meta/entities/{entity:str}", get_entity, methods=["GET"]),
    Route("/meta/packs", list_packs, methods=["GET"]),
]
