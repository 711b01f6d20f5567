"""Login, logout and the home page with personal access tokens."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from crm_platform.engine.records.errors import RecordError
from crm_platform.ui.templating import render
from crm_platform.engine.login_throttle import TooManyAttempts


async def _form(request: Request) -> Any:
    stashed = request.scope.get("state", {}).get("form")
    return stashed if stashed is not None else await request.form()


def _safe_next(target: str | None) -> str:
    """Only same-site paths: never redirect a user to another host after login."""
    if not target:
        return "/"
    parsed = urlparse(target)
    if parsed.scheme or parsed.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


async def login_page(request: Request) -> Response:
    if request.state.actor is not None:
        return RedirectResponse(_safe_next(request.query_params.get("next")), status_code=303)
    return render(request, "login.html", {"next": request.query_params.get("next", "/"), "error": None, "username": ""})


async def login_submit(request: Request) -> Response:
    form = await _form(request)
    username = str(form.get("username", "")).strip()
    password = str(form.get("password", ""))
    target = _safe_next(str(form.get("next", "/")))
    try:
        actor = request.app.state.site.users.authenticate(username, password, _address(request)) if username and password else None
    except TooManyAttempts as exc:
        return render(request, "login.html", {"next": target, "error": "too_many_attempts", "username": username}, status=429,
                      headers={"Retry-After": str(exc.retry_after)})
    if actor is None:
        return render(request, "login.html", {"next": target, "error": "bad_credentials", "username": username}, status=401)
    request.session.clear()  # a new session on login: no fixation
    request.session["user_id"] = actor.user_id
    return RedirectResponse(target, status_code=303)


def _address(request: Request) -> str | None:
    return request.client.host if request.client else None


async def logout(request: Request) -> Response:
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


async def home(request: Request) -> Response:
    return render(request, "home.html", {})


async def profile(request: Request) -> Response:
    tokens = request.app.state.site.users.list_tokens(request.state.actor.user_id)
    return render(request, "profile.html", {"tokens": tokens, "new_token": None, "error": None})


async def set_language(request: Request) -> Response:
    form = await _form(request)
    language = str(form.get("language", "en"))
    request.app.state.site.users.set_language(request.state.actor.user_id, language)
    return RedirectResponse(_safe_next(str(form.get("next", "/"))), status_code=303)


async def create_token(request: Request) -> Response:
    site = request.app.state.site
    form = await _form(request)
    name = str(form.get("name", "")).strip() or "api"
    error = None
    new_token = None
    try:
        new_token, _ = site.users.create_token(request.state.actor.user_id, name, None)
    except RecordError as exc:
        error = exc.message
    tokens = site.users.list_tokens(request.state.actor.user_id)
    return render(request, "profile.html", {"tokens": tokens, "new_token": new_token, "error": error}, status=201 if new_token else 422)


routes = [
    Route("/login", login_page, methods=["GET"]),
    Route("/login", login_submit, methods=["POST"]),
    Route("/logout", logout, methods=["POST"]),
    Route("/", home, methods=["GET"]),
    Route("/me", profile, methods=["GET"]),
    Route("/me/language", set_language, methods=["POST"]),
    Route("/me/tokens", create_token, methods=["POST"]),
]
