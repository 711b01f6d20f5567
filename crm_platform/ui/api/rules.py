"""Checking one rules-language expression against an entity: errors with positions, as the
designer shows them while the admin types."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from crm_platform.engine.records.errors import FieldError, NotFound, ValidationFailed
from crm_platform.rules import PURPOSES, checked_expression
from crm_platform.ui.responses import json_response, read_json


async def check(request: Request) -> Response:
    """POST {entity, expression, purpose?, field?} -> {ok, type, errors: [{line, column, message, rendered}]}."""
    registry = request.app.state.site.registry
    data = await read_json(request)
    if not isinstance(data, dict) or not isinstance(data.get("expression"), str) or not isinstance(data.get("entity"), str):
        raise ValidationFailed([FieldError("expression", "send {entity, expression, purpose}", "required")])
    entity = data["entity"]
    if entity not in registry.entities:
        raise NotFound(f"unknown entity '{entity}'")
    purpose = data.get("purpose") or "condition"
    if purpose not in PURPOSES:
        raise ValidationFailed([FieldError("purpose", f"expected one of {', '.join(PURPOSES)}")])
    target = data.get("field") if isinstance(data.get("field"), str) else None
    if target is not None and target not in registry.entity(entity).field_map:
        raise ValidationFailed([FieldError("field", f"unknown field '{target}' on {entity}")])
    checked = checked_expression(data["expression"], registry, entity, purpose, target_field=target)
    errors = [{**e.as_dict(), "rendered": e.render()} for e in checked.errors]
    result_type = str(checked.result) if checked.result is not None and not errors else None
    return json_response({"ok": not errors, "type": result_type, "errors": errors})


routes = [Route("/rules/check", check, methods=["POST"])]
