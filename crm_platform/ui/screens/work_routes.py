"""The work list: the approvals waiting for me, and my records still open in a workflow."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from crm_platform.engine.notifications import Notifications
from crm_platform.engine.records.errors import RecordError
from crm_platform.engine.records.list_query import Filter, ListQuery
from crm_platform.metadata.model import SortKey
from crm_platform.ui.screens.common import form_data, site_of
from crm_platform.ui.templating import render

OPEN_ROWS = 20


def _my_open(site: Any, actor: Any) -> list[dict[str, Any]]:
    groups = []
    for flow in site.registry.extra.get("workflows", ()):
        entity = site.registry.entity(flow.entity)
        if actor.user_id is None or not site.access.can(actor, entity, "read"):
            continue
        final = [s.name for s in flow.states if s.final]
        filters = [Filter("owner_id", "eq", actor.user_id)]
        if final:
            filters.append(Filter(flow.field, "in", final))
        query = ListQuery(filters=(filters[0],), sort=(SortKey("updated_at", True),), page_size=OPEN_ROWS,
                          expressions=(f"{flow.field} not in [{', '.join(repr(s).replace(chr(39), chr(34)) for s in final)}]",) if final else ())
        page = site.records.list(actor, entity.name, query)
        if page.total:
            groups.append({"entity": entity, "flow": flow, "records": page.records, "total": page.total})
    return groups


def _for_my_roles(site: Any, actor: Any) -> list[dict[str, Any]]:
    """Records waiting in a state whose `work_list` names one of my roles (e.g. escalated requests)."""
    if actor.user_id is None:
        return []
    roles = set(site.access.store.grants(actor.user_id).roles)
    groups = []
    for flow in site.registry.extra.get("workflows", ()):
        entity = site.registry.entity(flow.entity)
        states = [s.name for s in flow.states if roles & set(s.work_list)]
        if not states or not site.access.can(actor, entity, "read"):
            continue
        query = ListQuery(filters=(Filter(flow.field, "in", states),), sort=(SortKey("updated_at", False),), page_size=OPEN_ROWS)
        page = site.records.list(actor, entity.name, query)
        if page.total:
            groups.append({"entity": entity, "flow": flow, "records": page.records, "total": page.total})
    return groups


async def work_list(request: Request, error: str | None = None, status: int = 200) -> Response:
    site = site_of(request)
    actor = request.state.actor
    context = {"approvals": site.approvals.pending_for(actor), "waiting_groups": _for_my_roles(site, actor),
               "notifications": Notifications(site).unread(actor.user_id),
               "open_groups": _my_open(site, actor), "error": error}
    return render(request, "work.html", context, status=status)


async def decide(request: Request) -> Response:
    site = site_of(request)
    form = await form_data(request)
    decision = form.get("decision")
    comment = form.get("comment")
    try:
        site.approvals.decide(request.state.actor, request.path_params["id"], decision == "approve", comment if isinstance(comment, str) else None)
    except RecordError as exc:
        message = "; ".join(d.message for d in exc.details) or exc.message
        return await work_list(request, message, status=exc.status)
    return RedirectResponse("/work", status_code=303)


async def read_notifications(request: Request) -> Response:
    Notifications(site_of(request)).mark_read(request.state.actor.user_id)
    return RedirectResponse("/work", status_code=303)


routes = [
    Route("/work", work_list, methods=["GET"]),
    Route("/work/notifications/read", read_notifications, methods=["POST"]),
    Route("/work/approvals/{id:int}", decide, methods=["POST"]),
]
