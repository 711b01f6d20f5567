"""Helpers shared by the screen routes: the site, the parsed form, the kanban field of an entity."""

from __future__ import annotations

from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request

from crm_platform.metadata.model import Entity, Field


def site_of(request: Request) -> Any:
    return request.app.state.site


async def form_data(request: Request) -> FormData:
    """The submitted form (already parsed by the CSRF check when it ran)."""
    stashed = request.scope.get("state", {}).get("form")
    if stashed is not None:
        return stashed
    limit = request.app.state.site.settings.max_upload_mb * 1024 * 1024
    form = await request.form(max_part_size=limit + 1)
    request.scope.setdefault("state", {})["form"] = form
    return form


def kanban_field_of(entity: Entity, name: str | None = None) -> Field | None:
    """The picklist a kanban groups by: the one asked for, else the first of stage/status, else any."""
    picklists = [f for f in entity.fields if f.type == "picklist"]
    if name:
        return next((f for f in picklists if f.name == name), None)
    for preferred in ("stage", "status"):
        for f in picklists:
            if f.name == preferred:
                return f
    return picklists[0] if picklists else None
