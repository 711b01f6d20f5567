"""Dashboards over the API: list the pack dashboards and the built ones the caller sees, create,
change (name, sharing, roles, the ordered widget list) and delete built ones. Reading one also
runs each widget for the caller, within what they may read.

Stale edits follow the record API: a dashboard's JSON carries its `version`; a PATCH must send the
version it is based on in its body (400 without one) and is refused with 409 `conflict` when the
dashboard changed since. A DELETE may name it as `?version=N` (checked the same way); without one
it deletes whatever the dashboard holds, as a record's DELETE does. No ETag, as for records."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from crm_platform.engine.records.errors import BadRequest, FieldError, RecordError, ValidationFailed
from crm_platform.engine.reports import Reports, ReportSpec
from crm_platform.engine.user_dashboards import UserDashboards
from crm_platform.ui.api.reports import result_json
from crm_platform.ui.responses import json_response, no_content, read_json
from crm_platform.ui.screens.report_routes import visible_dashboards

CREATE_KEYS = ("name", "sharing", "roles", "widgets")
PATCH_KEYS = (*CREATE_KEYS, "version")


def _board_json(board: dict[str, Any]) -> dict[str, Any]:
    return {"id": board["id"], "name": board["name"], "version": board["version"], "owner": {"id": board["owner_id"], "name": board["owner_name"]},
            "sharing": board["sharing"], "roles": board["roles"], "widgets": board["widgets"], "can_edit": board["can_edit"],
            "created_at": board["created_at"], "updated_at": board["updated_at"], "url": f"/dashboards/{board['id']}"}


async def _body(request: Request, keys: tuple[str, ...] = CREATE_KEYS) -> dict[str, Any]:
    data = await read_json(request)
    if not isinstance(data, dict):
        raise ValidationFailed([FieldError("body", f"send a JSON object {{{', '.join(keys)}}}", "type")])
    unknown = sorted(set(data) - set(keys))
    if unknown:
        raise ValidationFailed([FieldError(k, f"unknown property; a dashboard has {', '.join(keys)}", "unknown") for k in unknown])
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
    """Apply the changes if the dashboard is still at the body's `version` (400 without it, 409 when stale)."""
    boards = UserDashboards(request.app.state.site)
    changes = await _body(request, PATCH_KEYS)
    version = changes.pop("version", None)
    board = boards.update(request.state.actor, request.path_params["id"], changes, version=version)
    return json_response(_board_json(board))


async def delete(request: Request) -> Response:
    """Delete; with `?version=N` only while the dashboard is still at that version (409 otherwise)."""
    raw = request.query_params.get("version")
    version: int | None = None
    if raw is not None:
        if not raw.strip().isdigit() or not raw.isascii():
            raise BadRequest(f"'version' must be a whole number, not {raw!r}", [FieldError("version", "expected the version your change is based on", "type")])
        version = int(raw)
    UserDashboards(request.app.state.site).delete(request.state.actor, request.path_params["id"], version=version)
    return no_content()


routes = [
    Route("/dashboards", listing, methods=["GET"]),
    Route("/dashboards", create, methods=["POST"]),
    Route("/dashboards/{id:int}", read, methods=["GET"]),
    Route("/dashboards/{id:int}", update, methods=["PATCH"]),
    Route("/dashboards/{id:int}", delete, methods=["DELETE"]),
]
