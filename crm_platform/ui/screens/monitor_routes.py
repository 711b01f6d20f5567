"""Monitoring for administrators: workflow instances per state, timers waiting and overdue, failed
jobs (with retry) and the email outbox."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from crm_platform.engine import jobs
from crm_platform.engine.clock import now
from crm_platform.engine.jobs.outbox import list_outbox
from crm_platform.ui.screens.common import site_of
from crm_platform.ui.templating import render


def _states(site: Any) -> list[dict[str, Any]]:
    result = []
    for flow in site.registry.extra.get("workflows", ()):
        table = site.schema.tables[flow.entity]
        column = table.c[flow.field]
        with site.engine.connect() as conn:
            counts = dict(conn.execute(sa.select(column, sa.func.count()).where(table.c.deleted_at.is_(None)).group_by(column)).all())
        entity = site.registry.entity(flow.entity)
        state_field = entity.field(flow.field)
        rows = [{"state": s.name, "label": next((o.label for o in state_field.options if o.value == s.name), None), "count": counts.get(s.name, 0)} for s in flow.states]
        result.append({"flow": flow, "entity": entity, "rows": rows})
    return result


async def monitor(request: Request) -> Response:
    site = site_of(request)
    site.access.require_administrator(request.state.actor)
    pending = jobs.list_jobs(site, "pending")
    moment = now()
    timers = [j for j in pending if j["run_at"] is not None and j["run_at"] > moment]
    overdue = [j for j in pending if j["run_at"] is not None and j["run_at"] <= moment]
    context = {"states": _states(site), "counts": jobs.job_counts(site), "failed": jobs.list_jobs(site, "failed"),
               "timers": timers[:50], "overdue": overdue[:50], "outbox": list_outbox(site)[:50], "redis": bool(site.settings.redis_url), "error": None}
    return render(request, "admin/monitor.html", context)


async def retry(request: Request) -> Response:
    site = site_of(request)
    site.access.require_administrator(request.state.actor)
    jobs.retry(site, request.path_params["id"])
    return RedirectResponse("/admin/monitor", status_code=303)


routes = [
    Route("/admin/monitor", monitor, methods=["GET"]),
    Route("/admin/monitor/jobs/{id:int}/retry", retry, methods=["POST"]),
]
