"""Authentication and CSRF for every request: bearer tokens for the API, session cookies for both.

The middleware puts the acting user in `request.state.actor`. Only the paths in PUBLIC answer
without one. A request authenticated by the session cookie that changes state must carry the
session's CSRF token (form field `csrf_token` or header `X-CSRF-Token`).
"""

from __future__ import annotations

import secrets
from typing import Any

from starlette.datastructures import URL
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from crm_platform.ui.responses import error_response

PUBLIC_PATHS = ("/login", "/api/v1/health", "/api/v1/auth/token")
PUBLIC_PREFIXES = ("/static/",)
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


class AuthMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        site = scope["app"].state.site
        path = scope["path"]
        actor = None
        via_session = False
        header = request.headers.get("authorization", "")
        if header:
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                await _deny(request, "use 'Authorization: Bearer <token>'")(scope, receive, send)
                return
            actor = site.users.actor_for_token(token.strip())
            if actor is None:
                await _deny(request, "the token is invalid, expired or revoked")(scope, receive, send)
                return
        elif "user_id" in request.session:
            actor = site.users.actor(request.session["user_id"])
            if actor is None:
                request.session.clear()
            via_session = actor is not None
        scope.setdefault("state", {})["actor"] = actor
        public = path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)
        if actor is None and not public:
            await _deny(request, "log in or send a bearer token")(scope, receive, send)
            return
        if (via_session or path == "/login") and scope["method"] not in SAFE_METHODS:
            if not await _csrf_ok(request, scope):
                response = error_response(403, "csrf_failed", "missing or wrong CSRF token: reload the page and try again")
                await response(scope, receive, send)
                return
        try:
            await self.app(scope, receive, send)
        finally:
            form = scope.get("state", {}).get("form")
            if form is not None:
                await form.close()


async def _csrf_ok(request: Request, scope: Scope) -> bool:
    expected = request.session.get("csrf")
    if not expected:
        return False
    sent = request.headers.get("x-csrf-token")
    if sent is None and request.headers.get("content-type", "").startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        limit = scope["app"].state.site.settings.max_upload_mb * 1024 * 1024
        form = await request.form(max_part_size=limit + 1)
        value: Any = form.get("csrf_token")
        sent = value if isinstance(value, str) else None
        scope["state"]["form"] = form  # the body is consumed: keep the parsed form for the endpoint
    return sent is not None and secrets.compare_digest(sent, expected)


def _deny(request: Request, message: str) -> Response:
    if request.url.path.startswith("/api/"):
        return error_response(401, "unauthenticated", message, headers={"WWW-Authenticate": 'Bearer realm="crm"'})
    target = URL("/login").include_query_params(next=request.url.path)
    return RedirectResponse(str(target), status_code=303)
