"""Jinja2 templates (autoescaped, strict), rendered whole or as one block for htmx requests.

Every page gets the user, the language, a translation function `t`, the CSRF token, the
Registry and the navigation; a template never queries anything itself.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import jinja2
from jinja2_fragments.starlette import Jinja2Blocks
from starlette.requests import Request
from starlette.responses import Response

from crm_platform.ui.display import display_value, form_value, number_text, option_color
from crm_platform.ui.i18n import translate
from crm_platform.ui.security import csrf_token

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(str(Path(__file__).parent / "templates")),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.globals.update(display_value=display_value, form_value=form_value, option_color=option_color, number_text=number_text)
templates = Jinja2Blocks(env=_env)


def language_of(request: Request) -> str:
    actor = getattr(request.state, "actor", None)
    if actor is not None:
        return str(actor.language)
    accept = request.headers.get("accept-language", "")
    return "zh-CN" if accept.lower().startswith("zh") else "en"


def _work_count(site: Any, actor: Any) -> int:
    """Approvals waiting for the user plus their unread notifications (the navigation badge)."""
    if actor is None:
        return 0
    from crm_platform.engine.notifications import Notifications

    return len(site.approvals.pending_for(actor)) + len(Notifications(site).unread(actor.user_id))


def _visible_menus(site: Any, actor: Any) -> list[Any]:
    """The packs' menus without the items the user may not read (and without emptied groups)."""
    if actor is None:
        return []
    result = []
    for menu in site.registry.menus:
        items = tuple(i for i in menu.items if site.access.can(actor, site.registry.entity(i.entity), "read"))
        if items:
            result.append(dataclasses.replace(menu, items=items))
    return result


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def render(request: Request, name: str, context: dict[str, Any] | None = None, status: int = 200,
           block: str | None = None, headers: dict[str, str] | None = None) -> Response:
    lang = language_of(request)
    site = request.app.state.site

    def t(key: str, **values: object) -> str:
        return translate(key, lang, **values)

    actor = getattr(request.state, "actor", None)
    base = {
        "actor": actor,
        "is_admin": actor is not None and site.access.is_administrator(actor),
        "work_count": _work_count(site, actor),
        "lang": lang,
        "zh": lang == "zh-CN",
        "t": t,
        "csrf_token": csrf_token(request),
        "registry": site.registry,
        "menus": _visible_menus(site, actor),
        "path": request.url.path,
    }
    ctx = {**base, **(context or {})}
    if block:
        return templates.TemplateResponse(request, name, ctx, status_code=status, block_name=block, headers=headers)
    return templates.TemplateResponse(request, name, ctx, status_code=status, headers=headers)
