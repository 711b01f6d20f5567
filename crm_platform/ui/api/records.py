"""Record endpoints: /api/v1/records/{entity}[/{id}[/history|/restore]], the same for every entity."""

from __future__ import annotations

import dataclasses

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from crm_platform.engine import system_references
from crm_platform.engine.records.errors import BadRequest, FieldError
from crm_platform.engine.records.list_query import parse_list_params
from crm_platform.ui.responses import json_response, no_content, read_json


def _site(request: Request):  # type: ignore[no-untyped-def]
    return request.app.state.site


def _names_to_ids(site, entity_name: str, data: object) -> object:  # type: ignore[no-untyped-def]
    """A username or org-unit name given for a user / org-unit field becomes its id (422 when none matches)."""
    return system_references.names_to_ids(site.engine, site.schema.system, site.records.entity(entity_name), data)


async def list_records(request: Request) -> Response:
    site = _site(request)
    entity = site.records.entity(request.path_params["entity"])
    name = request.query_params.get("view")
    view = next((v for v in site.registry.list_views_of(entity.name) if v.name == name), None) if name else site.registry.default_list_view(entity.name)
    if name and view is None:
        raise BadRequest(f"{entity.name} has no list view '{name}'", [FieldError("view", "unknown view", "unknown_view")])
    query = parse_list_params(
        entity,
        list(request.query_params.multi_items()),
        default_sort=view.sort if view else (),
        default_page_size=view.page_size if view else 50,
    )
    if view is not None and view.filter:
        query = dataclasses.replace(query, expressions=(view.filter, *query.expressions))
    page = site.records.list(request.state.actor, entity.name, query)
    return json_response({"data": page.records, "total": page.total, "page": page.page, "page_size": page.page_size, "pages": page.pages})


async def create_record(request: Request) -> Response:
    site = _site(request)
    data = _names_to_ids(site, request.path_params["entity"], await read_json(request))
    record = site.records.create(request.state.actor, request.path_params["entity"], data, check_duplicates=True)  # 409 possible_duplicate
    location = f"/api/v1/records/{request.path_params['entity']}/{record['id']}"
    return json_response(record, status=201, headers={"Location": location})


async def get_record(request: Request) -> Response:
    site = _site(request)
    include = request.query_params.get("deleted") == "include"
    record = site.records.get(request.state.actor, request.path_params["entity"], request.path_params["id"], include_deleted=include)
    return json_response(record)


async def update_record(request: Request) -> Response:
    site = _site(request)
    data = _names_to_ids(site, request.path_params["entity"], await read_json(request))
    record = site.records.update(request.state.actor, request.path_params["entity"], request.path_params["id"], data)
    return json_response(record)


async def delete_record(request: Request) -> Response:
    _site(request).records.delete(request.state.actor, request.path_params["entity"], request.path_params["id"])
    return no_content()


async def restore_record(request: Request) -> Response:
    record = _site(request).records.restore(request.state.actor, request.path_params["entity"], request.path_params["id"])
    return json_response(record)


async def record_history(request: Request) -> Response:
    rows = _site(request).records.history(request.state.actor, request.path_params["entity"], request.path_params["id"])
    return json_response({"data": rows})


routes = [
    Route("/records/{entity:str}", list_records, methods=["GET"]),
    Route("/records/{entity:str}", create_record, methods=["POST"]),
    Route("/records/{entity:str}/{id:int}", get_record, methods=["GET"]),
    Route("/records/{entity:str}/{id:int}", update_record, methods=["PATCH"]),
    Route("/records/{entity:str}/{id:int}", delete_record, methods=["DELETE"]),
    Route("/records/{entity:str}/{id:int}/restore", restore_record, methods=["POST"]),
    Route("/records/{entity:str}/{id:int}/history", record_history, methods=["GET"]),
]
