"""Jinja2 templates with autoescape, and the context every page gets (user, language, CSRF token)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from crm_platform.ui.security import csrf_token

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(Path(__file__).parent / "templates")),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)
templates = Jinja2Templates(env=_env)


def language_of(request: Request) -> str:
    actor = getattr(request.state, "actor", None)
    if actor is not None:
        return actor.language
    accept = request.headers.get("accept-language", "")
    return "zh-CN" if accept.lower().startswith("zh") else "en"


def render(request: Request, name: str, context: dict[str, Any] | None = None, status: int = 200) -> Response:
    lang = language_of(request)
    base = {
        "actor": getattr(request.state, "actor", None),
        "lang": lang,
        "zh": lang == "zh-CN",
        "csrf_token": csrf_token(request),
        "registry": request.app.state.site.registry,
    }
    return templates.TemplateResponse(request, name, {**base, **(context or {})}, status_code=status)
