"""Workflow over the API: the transitions a user may fire on a record, and firing one."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from crm_platform.engine.records.errors import FieldError, ValidationFailed
from crm_platform.ui.responses import json_response, read_json


async def options(request: Request) -> Response:
    site = request.app.state.site
    entity, record_id = request.path_params["entity"], request.path_params["id"]
    flow = site.workflows.of(entity)
    record = site.records.get(request.state.actor, entity, record_id)
    data = [o.as_dict() for o in site.workflows.options(request.state.actor, entity, record_id)]
    return json_response({"workflow": flow.name if flow else None, "state": record.get(flow.field) if flow else None, "data": data,
                          "history": site.workflows.history(entity, record_id) if flow else []})


async def fire(request: Request) -> Response:
    """POST {values?: {field: value}, comment?} -> the record in its new state."""
    site = request.app.state.site
    data = await read_json(request) if request.headers.get("content-length") not in (None, "0") else {}
    if data is None:
        data = {}
    if not isinstance(data, dict) or not isinstance(data.get("values", {}), dict):
        raise ValidationFailed([FieldError("body", "expected {values: {...}, comment: ...}")])
    comment = data.get("comment")
    record = site.workflows.fire(request.state.actor, request.path_params["entity"], request.path_params["id"], request.path_params["name"],
                                 data.get("values") or {}, comment if isinstance(comment, str) else None)
    return json_response(record)


routes = [
    Route("/records/{entity:str}/{id:int}/transitions", options, methods=["GET"]),
    Route("/records/{entity:str}/{id:int}/transitions/{name:str}", fire, methods=["POST"]),
]


async def my_approvals(request: Request) -> Response:
    return json_response({"data": request.app.state.site.approvals.pending_for(request.state.actor)})


async def decide(request: Request) -> Response:
    """POST {approve: true|false, comment?}."""
    data = await read_json(request)
    if not isinstance(data, dict) or not isinstance(data.get("approve"), bool):
        raise ValidationFailed([FieldError("approve", "true to approve, false to reject", "required")])
    comment = data.get("comment")
    result = request.app.state.site.approvals.decide(request.state.actor, request.path_params["id"], data["approve"], comment if isinstance(comment, str) else None)
    return json_response(result)


routes += [
    Route("/approvals", my_approvals, methods=["GET"]),
    Route("/approvals/{id:int}/decision", decide, methods=["POST"]),
]
