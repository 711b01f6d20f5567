"""The Starlette application: routes, sessions, authentication and error handling for one Site."""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from crm_platform.engine.records.errors import RecordError
from crm_platform.engine.site import Site
from crm_platform.engine.site_reload import RegistryWatcher
from crm_platform.ui import pages
from crm_platform.ui.api import (
    access_admin,
    account,
    design,
    files,
    meta,
    openapi,
    records,
    reports,
    rules,
    workflow,
)
from crm_platform.ui.api import dashboards as dashboard_api
from crm_platform.ui.api import imports as import_api
from crm_platform.ui.responses import error_response, json_response, record_error_response
from crm_platform.ui.screens import admin_routes, design_common, design_entities, design_forms, design_views, kanban, report_routes, list_routes, monitor_routes, record_routes, work_routes
from crm_platform.ui.screens import dashboard_builder, import_routes
from crm_platform.ui.screens import design_menus, design_rules, design_workflows
from crm_platform.ui.screens import merge_routes, search_routes
from crm_platform.ui.api import search as search_api
from crm_platform.ui.security import AuthMiddleware
from crm_platform.ui.templating import render

SESSION_COOKIE = "crm_session"



async def health(request: Request) -> Response:
    site: Site = request.app.state.site
    return json_response({"status": "ok", "registry": site.registry.content_hash})


async def _record_error(request: Request, exc: Exception) -> Response:
    """JSON for the API; an error page (same status) for the screens."""
    assert isinstance(exc, RecordError)
    if request.url.path.startswith("/api/") or getattr(request.state, "actor", None) is None:
        return record_error_response(exc)
    return render(request, "error.html", {"status": exc.status, "message": exc.message, "details": [d.as_dict() for d in exc.details]}, status=exc.status)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if not request.url.path.startswith("/api/") and getattr(request.state, "actor", None) is not None and exc.status_code == 404:
        return render(request, "not_found.html", {}, status=404)
    codes = {404: "not_found", 405: "method_not_allowed", 400: "bad_request", 413: "too_large"}
    message = {404: "no such endpoint", 405: "method not allowed on this endpoint"}.get(exc.status_code, str(exc.detail))
    return error_response(exc.status_code, codes.get(exc.status_code, "error"), message, headers=getattr(exc, "headers", None))


def create_app(site: Site, background_jobs: bool = False) -> Starlette:
    """The app for `site`; with `background_jobs`, a sweeper thread runs due jobs and timers
    in-process while the app runs (the default without Redis; `crm-platform serve` turns it on)."""
    api_routes = [Route("/health", health, methods=["GET"]), *account.routes, *meta.routes, *search_api.routes, *records.routes, *access_admin.routes, *rules.routes, *workflow.routes, *files.routes, *design.routes, *reports.routes, *dashboard_api.routes, *import_api.routes, *openapi.routes]
    routes = [
        Mount("/api/v1", routes=api_routes),
        Mount("/static", app=StaticFiles(directory=str(Path(__file__).parent / "static")), name="static"),
        *pages.routes,
        *admin_routes.routes,
        *work_routes.routes,
        *monitor_routes.routes,
        *design_common.routes,
        *design_rules.routes,
        *design_workflows.routes,
        *design_menus.routes,
        *design_entities.routes,
        *design_forms.routes,
        *design_views.routes,
        *dashboard_builder.routes,  # before report_routes: /dashboards/<number> is a built dashboard
        *report_routes.routes,
        *kanban.routes,
        *import_routes.routes,
        *merge_routes.routes,
        *search_routes.routes,
        *list_routes.routes,
        *record_routes.routes,
    ]
    watcher = RegistryWatcher(site)
    middleware = [
        Middleware(RegistryReloadMiddleware, watcher=watcher),
        Middleware(SessionMiddleware, secret_key=site.settings.secret_key, session_cookie=SESSION_COOKIE,
                   same_site="lax", https_only=site.settings.secure_cookies, max_age=14 * 24 * 3600),
        Middleware(AuthMiddleware),
    ]
    lifespan = None
    if background_jobs and not site.settings.redis_url:
        from crm_platform.engine.jobs.sweeper import sweeping

        def lifespan(app: Starlette):  # type: ignore[no-untyped-def]
            return sweeping(site)

    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan,
                    exception_handlers={RecordError: _record_error, HTTPException: _http_error})
    app.state.site = site
    app.state.registry_watcher = watcher
    return app


class RegistryReloadMiddleware:
    """Before a request, switch to the metadata the database now has (checked once a second), so a
    change applied by another process (pack install, db sync, the designer) is served at once."""

    def __init__(self, app: ASGIApp, watcher: RegistryWatcher) -> None:
        self.app = app
        self.watcher = watcher

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            self.watcher.check()
        await self.app(scope, receive, send)
