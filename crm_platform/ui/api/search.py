"""Search over the API: global search across entities and the possible duplicates of a record
before it is created.

GET  /api/v1/search?q=text[&limit=5][&entity=account&entity=contact]
     -> {"query": ..., "groups": [{"entity", "label", "more", "list_url", "api_url", "data": [records]}]}
POST /api/v1/duplicates/{entity} {"name": ..., "phone": ...}
     -> {"matches": [{"entity", "id", "title", "score", "url", "reasons": [...]}]}
Both answer only with records the caller may read. (The create, POST /api/v1/records/{entity},
asks the record service for the duplicate check itself: 409 `possible_duplicate` unless
"ignore_duplicates": true.)
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from crm_platform.engine.duplicates import DuplicateFinder
from crm_platform.engine.global_search import PER_ENTITY, global_search
from crm_platform.engine.records.errors import BadRequest, FieldError
from crm_platform.engine.records.payload import parse_payload
from crm_platform.ui.responses import json_response, read_json


async def search(request: Request) -> Response:
    site = request.app.state.site
    text = request.query_params.get("q", "").strip()
    if not text:
        raise BadRequest("'q' is required: the text to search for", [FieldError("q", "required", "required")])
    raw_limit = request.query_params.get("limit", str(PER_ENTITY))
    if not raw_limit.isdigit() or int(raw_limit) < 1:
        raise BadRequest("'limit' must be a positive whole number", [FieldError("limit", "a positive whole number", "bad_parameter")])
    only = request.query_params.getlist("entity") or None
    if only:
        unknown = [name for name in only if name not in site.registry.entities]
        if unknown:
            raise BadRequest(f"unknown entity {', '.join(unknown)}", [FieldError("entity", f"unknown entity '{name}'", "unknown_entity") for name in unknown])
    groups = global_search(site, request.state.actor, text, int(raw_limit), only)
    return json_response({"query": text, "groups": [g.as_dict() for g in groups]})


async def duplicates(request: Request) -> Response:
    site = request.app.state.site
    entity = site.records.entity(request.path_params["entity"])
    data = await read_json(request)
    if not isinstance(data, dict):
        raise BadRequest("send the record's values as a JSON object", [FieldError("body", "expected a JSON object", "type")])
    payload = parse_payload(site.registry, entity, {k: v for k, v in data.items() if k in entity.field_map})
    matches = DuplicateFinder(site).find(request.state.actor, entity.name, payload.values)
    return json_response({"matches": [m.as_dict() for m in matches]})


routes = [
    Route("/search", search, methods=["GET"]),
    Route("/duplicates/{entity:str}", duplicates, methods=["POST"]),
]
