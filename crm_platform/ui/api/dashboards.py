"""Dashboards over the API: list the pack dashboards and the built ones the caller sees, create,
change (name, sharing, roles, the ordered widget list) and delete built ones. Reading one also
runs each widget for the caller, within what they may read."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from crm_platform.engine.records.errors import FieldError, RecordError, ValidationFailed
from crm_platform.engine.reports import Reports, ReportSpec
from crm_platform.engine.user_dashboards import UserDashboards
from crm_platform.ui.api.reports import result_json
from crm_platform.ui.responses import json_response, no_content, read_json
from crm_platform.ui.screens.report_routes import visible_dashboards

CREATE_KEYS = ("name", "sharing", "roles", "widgets")


def _board_json(board: dict[str, Any]) -> dict[str, Any]:
    return {"id": board["id"], "name": board["name"], "owner": {"id": board["owner_id"], "name": board["owner_name"]},
            "sharing": board["sharing"], "roles": board["roles"], "widgets": board["widgets"], "can_edit": board["can_edit"],
            "created_at": board["created_at"], "updated_at": board["updated_at"], "url": f"/dashboards/{board['id']}"}


async def _body(request: Request) -> dict[str, Any]:
    data = await read_json(request)
    if not isinstance(data, dict):
        raise ValidationFailed([FieldError("body", "send a JSON object {name, sharing, roles, widgets}", "type")])
    unknown = sorted(set(data) - set(CREATE_KEYS))
    if unknown:
        raise ValidationFailed([FieldError(k, f"unknown property; a dashboard has {', '.join(CREATE_KEYS)}", "unknown") for k in unknown])
    return data


async def listing(request: Request) -> Response:
    site = request.app.state.site
    actor = request.state.actor
    packs = [{"name": d.name, "label": d.label.as_dict(), "pack": d.pack, "widgets": len(d.widgets), "url": f"/dashboards/{d.name}"}
             for d in visible_dashboards(site, actor)]
    return json_response({"dashboards": [_board_json(b) for b in UserDashboards(site).visible(actor)], "pack_dashboards": packs})


async def create(request: Request) -> Response:
    boards = UserDashboards(request.app.state.site)
    data = await _body(request)
    board_id = boards.create(request.state.actor, data.get("name"), data.get("sharing", "private"), data.get("roles", []), data.get("widgets", []))  # type: ignore[arg-type]
    return json_response(_board_json(boards.get(request.state.actor, board_id)), status=201, headers={"Location": f"/api/v1/dashboards/{board_id}"})


async def read(request: Request) -> Response:
    """The dashboard, and each widget's result for the caller (`left_out` when they may not read its records)."""
    site = request.app.state.site
    actor = request.state.actor
    board = UserDashboards(site).get(actor, request.path_params["id"])
    results: list[dict[str, Any]] = []
    for widget in board["widgets"]:
        entity = site.registry.entities.get(widget["spec"]["entity"])
        if entity is None or site.access.scope(actor, entity, "read") is None:
            results.append({"title": widget["title"], "left_out": True})
            continue
        try:
            results.append({"title": widget["title"], "result": result_json(Reports(site).run(actor, ReportSpec.from_dict(widget["spec"])))})
        except RecordError as exc:
            results.append({"title": widget["title"], "error": exc.as_dict()})
    return json_response({**_board_json(board), "results": results})


async def update(request: Request) -> Response:
    boards = UserDashboards(request.app.state.site)
    board = boards.update(request.state.actor, request.path_params["id"], await _body(request))
    return json_response(_board_json(board))


async def delete(request: Request) -> Response:
    UserDashboards(request.app.state.site).delete(request.state.actor, request.path_params["id"])
    return no_content()


routes = [
    Route("/dashboards", listing, methods=["GET"]),
    Route("/dashboards", create, methods=["POST"]),
    Route("/dashboards/{id:int}", read, methods=["GET"]),
    Route("/dashboards/{id:int}", update, methods=["PATCH"]),
    Route("/dashboards/{id:int}", delete, methods=["DELETE"]),
]
