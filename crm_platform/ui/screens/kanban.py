"""Kanban: the records of an entity in columns by a picklist (opportunities by stage); moving a
card is an update of that field through the record service, so every rule applies and a refused
move is explained."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from crm_platform.engine.records.errors import (
    BadRequest,
    Conflict,
    FieldError,
    Forbidden,
    NotFound,
    RecordError,
)
from crm_platform.engine.records.list_query import Filter, ListQuery
from crm_platform.metadata.model import Entity, Field, Option, SortKey
from crm_platform.ui.i18n import translate
from crm_platform.ui.screens.common import form_data, kanban_field_of, site_of
from crm_platform.ui.templating import language_of, render

CARDS_PER_COLUMN = 50


@dataclass
class Column:
    option: Option
    records: list[dict[str, Any]]
    total: int


def _board(request: Request, entity: Entity, field: Field, message: str | None = None, status: int = 200) -> Response:
    site = site_of(request)
    search = request.query_params.get("q") or None
    columns = []
    for option in field.options:
        query = ListQuery(filters=(Filter(field.name, "eq", option.value),), search=search, sort=(SortKey("updated_at", True),), page_size=CARDS_PER_COLUMN)
        page = site.records.list(request.state.actor, entity.name, query)
        columns.append(Column(option, page.records, page.total))
    view = site.registry.default_list_view(entity.name)
    card_fields = [entity.field(c) for c in (view.columns if view else ()) if c in entity.field_map and c not in (field.name, entity.title_field)][:3]
    picklists = [f for f in entity.fields if f.type == "picklist"]
    context = {"entity": entity, "field": field, "columns": columns, "card_fields": card_fields, "picklists": picklists, "message": message, "search": search or "",
               "can_create": site.access.can(request.state.actor, entity, "create"), "movable": _movable(site, request.state.actor, entity, field, columns)}
    return render(request, "kanban.html", context, status=status)


def _movable(site: Any, actor: Any, entity: Entity, field: Field, columns: list[Column]) -> set[int]:
    """The cards the user may move: those they may update, and on a workflow's field every card
    when their role is granted one of its transitions by name (the move says why when the
    transition is refused for that card)."""
    ids = [r["id"] for column in columns for r in column.records]
    flow = site.workflows.of(entity.name)
    if flow is not None and flow.field == field.name and any(site.access.can(actor, entity, f"transition:{t.name}") for t in flow.transitions):
        return set(ids)
    return site.records.permitted_ids(actor, entity.name, ids, "update")


def _field(entity: Entity, name: str | None) -> Field:
    field = kanban_field_of(entity, name)
    if field is None:
        raise BadRequest(f"{entity.name} has no picklist field{' named ' + repr(name) if name else ''} to group a kanban by")
    return field


async def board(request: Request) -> Response:
    entity = site_of(request).records.entity(request.path_params["entity"])
    return _board(request, entity, _field(entity, request.query_params.get("field")))


async def move(request: Request) -> Response:
    site = site_of(request)
    entity = site.records.entity(request.path_params["entity"])
    form = await form_data(request)
    name, value, version = form.get("field"), form.get("value"), form.get("version")
    field = _field(entity, name if isinstance(name, str) else None)
    lang = language_of(request)
    payload = {field.name: value, "version": int(version) if isinstance(version, str) and version.isdigit() else None}
    flow = site.workflows.of(entity.name)
    try:
        if flow is not None and flow.field == field.name:
            _move_by_transition(site, request.state.actor, entity, flow, request.path_params["id"], value, lang)
        else:
            site.records.update(request.state.actor, entity.name, request.path_params["id"], payload)
    except Conflict as exc:
        reason = "; ".join(d.message for d in exc.details) or exc.message
        return _board(request, entity, field, translate("move_refused", lang, reason=reason), status=409)
    except NotFound:
        raise
    except Forbidden as exc:
        return _board(request, entity, field, translate("move_refused", lang, reason=exc.message), status=403)
    except RecordError as exc:
        reason = "; ".join(f"{_label(entity, d.field, lang)}: {d.message}" for d in exc.details) or exc.message
        return _board(request, entity, field, translate("move_refused", lang, reason=reason), status=422)
    return _board(request, entity, field)


def _move_by_transition(site: Any, actor: Any, entity: Entity, flow: Any, record_id: int, value: Any, lang: str) -> None:
    """A card moved on a workflow's field fires the transition that leads there."""
    options = [o for o in site.workflows.options(actor, entity.name, record_id) if o.transition.to == value]
    if not options:
        raise Conflict(f"no transition leads from the card's state to '{value}'", [FieldError(flow.field, f"no transition leads to '{value}' from here", "workflow")])
    allowed = [o for o in options if o.allowed]
    if not allowed:
        raise Forbidden(options[0].reason or "you may not move this card")
    site.workflows.fire(actor, entity.name, record_id, allowed[0].transition.name)


def _label(entity: Entity, name: str, lang: str) -> str:
    f = entity.field_map.get(name)
    return f.label.get(lang) if f else name


routes = [
    Route("/app/{entity:str}/kanban", board, methods=["GET"]),
    Route("/app/{entity:str}/{id:int}/move", move, methods=["POST"]),
]
