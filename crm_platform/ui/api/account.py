"""Credentials over the API: exchange a password for a token, list and revoke one's tokens, who am I."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from crm_platform.engine.records.errors import FieldError, ValidationFailed
from crm_platform.ui.responses import error_response, json_response, no_content, read_json
from crm_platform.engine.login_throttle import TooManyAttempts


async def token_for_password(request: Request) -> Response:
    """POST {username, password, name?, days?} -> 201 {token, ...}: log in and get a token."""
    site = request.app.state.site
    data = await read_json(request)
    if not isinstance(data, dict):
        raise ValidationFailed([FieldError("body", "expected a JSON object with username and password")])
    username, password = data.get("username"), data.get("password")
    missing = [FieldError(k, f"{k} is required", "required") for k in ("username", "password") if not isinstance(data.get(k), str) or not data.get(k)]
    if missing:
        raise ValidationFailed(missing)
    try:
        actor = site.users.authenticate(username, password, request.client.host if request.client else None)
    except TooManyAttempts as exc:
        return error_response(429, "too_many_attempts", str(exc), headers={"Retry-After": str(exc.retry_after)})
    if actor is None:
        return error_response(401, "bad_credentials", "wrong username or password")
    name = data.get("name") or "api"
    days = data.get("days")
    token, info = site.users.create_token(actor.user_id, str(name), days if isinstance(days, int) else None)
    return json_response({"token": token, **info}, status=201)


async def me(request: Request) -> Response:
    actor = request.state.actor
    return json_response({"id": actor.user_id, "username": actor.username, "display_name": actor.display_name,
                          "is_admin": actor.is_admin, "language": actor.language, "unit_id": actor.unit_id})


async def list_tokens(request: Request) -> Response:
    return json_response({"data": request.app.state.site.users.list_tokens(request.state.actor.user_id)})


async def create_token(request: Request) -> Response:
    data = await read_json(request)
    if not isinstance(data, dict):
        raise ValidationFailed([FieldError("body", "expected a JSON object with a name")])
    days = data.get("days")
    if days is not None and (isinstance(days, bool) or not isinstance(days, int)):
        raise ValidationFailed([FieldError("days", "a whole number of days")])
    token, info = request.app.state.site.users.create_token(request.state.actor.user_id, str(data.get("name") or ""), days)
    return json_response({"token": token, **info}, status=201)


async def revoke_token(request: Request) -> Response:
    request.app.state.site.users.revoke_token(request.state.actor.user_id, request.path_params["id"])
    return no_content()


routes = [
    Route("/auth/token", token_for_password, methods=["POST"]),
    Route("/auth/me", me, methods=["GET"]),
    Route("/tokens", list_tokens, methods=["GET"]),
    Route("/tokens", create_token, methods=["POST"]),
    Route("/tokens/{id:int}", revoke_token, methods=["DELETE"]),
]
