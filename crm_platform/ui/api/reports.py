"""Reports over the API: run a report spec (grouped aggregates in SQL, scoped to the caller), and
keep reports (private or shared)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from crm_platform.engine.records.errors import BadRequest, FieldError, NotFound, ValidationFailed
from crm_platform.engine.reports import ReportResult, Reports, ReportSpec, SavedReports
from crm_platform.ui.responses import json_response, no_content, read_json


def result_json(result: ReportResult) -> dict[str, Any]:
    def plain(value: Any) -> Any:
        return str(value) if value is not None and not isinstance(value, (int, float, str, bool)) else value

    return {"spec": result.spec.as_dict(), "groups": result.groups, "measures": result.measures, "truncated": result.truncated,
            "rows": [{"keys": [plain(k) for k in r["keys"]], "labels": r["labels"], "values": {k: plain(v) for k, v in r["values"].items()}, "drill": r["drill"]} for r in result.rows],
            "totals": {k: plain(v) for k, v in result.totals.items()}}


def _spec(data: Any) -> ReportSpec:
    """The report spec of a body; 400 naming a measure whose parts are not text (the values are checked when it runs)."""
    if isinstance(data, dict):
        measures = data.get("measures")
        if isinstance(measures, list) and any(isinstance(m, dict) and not all(isinstance(m.get(k), (str, type(None))) for k in ("aggregate", "field")) for m in measures):
            raise BadRequest("a measure is {aggregate, field}, both text", [FieldError("measures", "aggregate and field are text (field may be null)", "type")])
    return ReportSpec.from_dict(data)


async def run(request: Request) -> Response:
    site = request.app.state.site
    spec = _spec(await read_json(request))
    if spec.entity not in site.registry.entities:
        raise NotFound(f"unknown entity '{spec.entity}'")
    return json_response(result_json(Reports(site).run(request.state.actor, spec)))


async def saved(request: Request) -> Response:
    return json_response({"reports": SavedReports(request.app.state.site).visible(request.state.actor)})


async def save(request: Request) -> Response:
    site = request.app.state.site
    data = await read_json(request)
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        raise ValidationFailed([FieldError("name", "send {name, spec, shared}", "required")])
    spec = _spec(data.get("spec"))
    if spec.entity not in site.registry.entities:
        raise NotFound(f"unknown entity '{spec.entity}'")
    report_id = SavedReports(site).save(request.state.actor, data["name"], spec, bool(data.get("shared")))
    return json_response({"id": report_id}, status=201)


async def run_saved(request: Request) -> Response:
    site = request.app.state.site
    report = SavedReports(site).get(request.state.actor, request.path_params["id"])
    return json_response(result_json(Reports(site).run(request.state.actor, ReportSpec.from_dict(report["spec"]))))


async def delete(request: Request) -> Response:
    SavedReports(request.app.state.site).delete(request.state.actor, request.path_params["id"])
    return no_content()


routes = [
    Route("/reports/run", run, methods=["POST"]),
    Route("/reports", saved, methods=["GET"]),
    Route("/reports", save, methods=["POST"]),
    Route("/reports/{id:int}", run_saved, methods=["GET"]),
    Route("/reports/{id:int}", delete, methods=["DELETE"]),
]
