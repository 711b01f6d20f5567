"""The global search screen: /search?q=... lists the matches of every entity with search fields
the user may read, grouped by entity, a few each with a link to the entity's list searching the
same text (engine/global_search.py)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from crm_platform.engine.global_search import PER_ENTITY, global_search
from crm_platform.ui.screens.common import site_of
from crm_platform.ui.templating import render


async def search_page(request: Request) -> Response:
    q = request.query_params.get("q", "").strip()
    groups = global_search(site_of(request), request.state.actor, q, PER_ENTITY) if q else []
    return render(request, "search.html", {"q": q, "groups": groups})


routes = [
    Route("/search", search_page, methods=["GET"]),
]
