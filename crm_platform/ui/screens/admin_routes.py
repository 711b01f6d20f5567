"""Administration screens: users (unit, manager, roles, reassignment), roles with a permission
matrix and field access, and the org tree. Administrators only."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from crm_platform.engine.records.errors import NotFound, RecordError
from crm_platform.metadata.access import ACTIONS, SCOPES, UNIT_KINDS
from crm_platform.ui.screens.common import form_data, site_of
from crm_platform.ui.templating import render


def _site(request: Request) -> Any:
    site = site_of(request)
    site.access.require_administrator(request.state.actor)
    return site


def _units(site: Any) -> list[dict[str, Any]]:
    units = site.schema.system["crm_org_unit"]
    with site.engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(sa.select(units).order_by(units.c.path)).mappings()]
    for row in rows:
        row["depth"] = row["path"].count("/") - 2
    return rows


def _users(site: Any) -> list[dict[str, Any]]:
    users = site.schema.system["crm_user"]
    with site.engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(sa.select(users).order_by(users.c.username)).mappings()]
    for row in rows:
        row["roles"] = site.access.store.roles_of(row["id"])
    return rows


async def admin_home(request: Request) -> Response:
    _site(request)
    return RedirectResponse("/admin/users", status_code=303)


async def users_page(request: Request, error: str | None = None, status: int = 200) -> Response:
    site = _site(request)
    roles = site.permissions.list_roles()
    return render(request, "admin/users.html", {"users": _users(site), "units": _units(site), "roles": roles, "error": error}, status=status)


async def create_user(request: Request) -> Response:
    site = _site(request)
    form = await form_data(request)
    try:
        unit, manager = form.get("unit_id"), form.get("manager_id")
        user_id = site.users.create_user(str(form.get("username", "")).strip(), str(form.get("password", "")), str(form.get("display_name") or "") or None,
                                         unit_id=int(unit) if isinstance(unit, str) and unit.isdigit() else None,
                                         manager_id=int(manager) if isinstance(manager, str) and manager.isdigit() else None)
        for role in form.getlist("roles"):
            site.permissions.assign_role(user_id, str(role))
    except RecordError as exc:
        return await users_page(request, "; ".join(d.message for d in exc.details) or exc.message, status=422)
    return RedirectResponse("/admin/users", status_code=303)


async def update_user(request: Request) -> Response:
    site = _site(request)
    user_id = request.path_params["id"]
    if not any(u["id"] == user_id for u in _users(site)):
        raise NotFound(f"user {user_id} not found")
    form = await form_data(request)
    try:
        unit, manager = form.get("unit_id"), form.get("manager_id")
        site.permissions.set_unit(user_id, int(unit) if isinstance(unit, str) and unit.isdigit() else None)
        site.permissions.set_manager(user_id, int(manager) if isinstance(manager, str) and manager.isdigit() else None)
        wanted = {str(r) for r in form.getlist("roles")}
        current = set(site.access.store.roles_of(user_id))
        for role in wanted - current:
            site.permissions.assign_role(user_id, role)
        for role in current - wanted:
            site.permissions.unassign_role(user_id, role)
        target = form.get("reassign_to")
        if isinstance(target, str) and target.isdigit():
            site.permissions.reassign(user_id, int(target))
    except RecordError as exc:
        return await users_page(request, "; ".join(d.message for d in exc.details) or exc.message, status=422)
    return RedirectResponse("/admin/users", status_code=303)


async def roles_page(request: Request, error: str | None = None, status: int = 200) -> Response:
    site = _site(request)
    roles = site.permissions.list_roles()
    selected = request.query_params.get("role") or (roles[0]["name"] if roles else None)
    role = next((r for r in roles if r["name"] == selected), None)
    matrix = {(g["entity"], g["action"]): g["scope"] for g in (role or {}).get("grants", [])}
    entities = ["*", *[e.name for e in site.registry.entities.values() if not e.child_of]]
    return render(request, "admin/roles.html", {"roles": roles, "role": role, "matrix": matrix, "entities": entities,
                                                "actions": ACTIONS, "scopes": SCOPES, "error": error}, status=status)


async def save_matrix(request: Request) -> Response:
    """Apply the matrix of one role: each cell is a scope or empty (no grant)."""
    site = _site(request)
    role = request.path_params["role"]
    form = await form_data(request)
    current = {(g["entity"], g["action"]): g["scope"] for r in site.permissions.list_roles() if r["name"] == role for g in r["grants"]}
    entities = ["*", *site.registry.entities]
    for entity in entities:
        for action in ACTIONS:
            value = form.get(f"cell:{entity}:{action}")
            wanted = value if isinstance(value, str) and value in SCOPES else None
            if wanted != current.get((entity, action)):
                if wanted is None:
                    site.permissions.revoke(role, entity, action)
                else:
                    site.permissions.grant(role, entity, action, wanted)
    return RedirectResponse(f"/admin/roles?role={role}", status_code=303)


async def create_role(request: Request) -> Response:
    site = _site(request)
    form = await form_data(request)
    name = str(form.get("name", "")).strip()
    try:
        site.permissions.create_role(name, str(form.get("label_en") or name), str(form.get("label_zh") or "") or None)
    except RecordError as exc:
        return await roles_page(request, "; ".join(d.message for d in exc.details) or exc.message, status=422)
    return RedirectResponse(f"/admin/roles?role={name}", status_code=303)


async def set_field(request: Request) -> Response:
    site = _site(request)
    role = request.path_params["role"]
    form = await form_data(request)
    spec = str(form.get("field", ""))
    access = form.get("access")
    entity, _, field = spec.partition(".")
    try:
        site.permissions.set_field_access(role, entity, field, access if access in ("hidden", "read_only") else None)
    except RecordError as exc:
        return await roles_page(request, "; ".join(d.message for d in exc.details) or exc.message, status=422)
    return RedirectResponse(f"/admin/roles?role={role}", status_code=303)


async def units_page(request: Request, error: str | None = None, status: int = 200) -> Response:
    site = _site(request)
    return render(request, "admin/units.html", {"units": _units(site), "kinds": UNIT_KINDS, "error": error}, status=status)


async def create_unit(request: Request) -> Response:
    site = _site(request)
    form = await form_data(request)
    parent = form.get("parent_id")
    try:
        site.permissions.create_unit(str(form.get("name", "")).strip() or "?", str(form.get("kind", "")), int(parent) if isinstance(parent, str) and parent.isdigit() else None)
    except RecordError as exc:
        return await units_page(request, "; ".join(d.message for d in exc.details) or exc.message, status=422)
    return RedirectResponse("/admin/units", status_code=303)


routes = [
    Route("/admin", admin_home, methods=["GET"]),
    Route("/admin/users", users_page, methods=["GET"]),
    Route("/admin/users", create_user, methods=["POST"]),
    Route("/admin/users/{id:int}", update_user, methods=["POST"]),
    Route("/admin/roles", roles_page, methods=["GET"]),
    Route("/admin/roles", create_role, methods=["POST"]),
    Route("/admin/roles/{role:str}/matrix", save_matrix, methods=["POST"]),
    Route("/admin/roles/{role:str}/fields", set_field, methods=["POST"]),
    Route("/admin/units", units_page, methods=["GET"]),
    Route("/admin/units", create_unit, methods=["POST"]),
]
