"""Administration screens: users (unit, manager, roles, reassignment), roles with a permission
matrix, label, includes and field access, and the org tree (add, rename, move, archive).
Administrators only. Users are data and change in place; every change to a role or the org tree
is a version of the site layer (layered_admin), listed with its diff under the designer.

A role or unit change is previewed before it applies, like every designer editor's: the screen
computes the layer's new files (a bad input re-renders the screen with the error, 422) and shows
the preview (design_common.propose: the diff of roles.yaml / org.yaml, or the problems, such as
users a removed unit would strand, with 422 and no Apply); Apply makes the version and lands on
the designer's home with the applied message, Back returns to the screen."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import sqlalchemy as sa
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from crm_platform.engine.permissions.layered_admin import LayerChange, LayeredAccessAdmin
from crm_platform.engine.records.errors import NotFound, RecordError
from crm_platform.engine.site_layer import SiteLayer
from crm_platform.metadata.access import ACTIONS, SCOPES, UNIT_KINDS
from crm_platform.ui.screens.common import form_data, site_of
from crm_platform.ui.screens.design_common import propose
from crm_platform.ui.templating import render


def _site(request: Request) -> Any:
    site = site_of(request)
    site.access.require_administrator(request.state.actor)
    return site


def _units(site: Any) -> list[Any]:
    return LayeredAccessAdmin(site).units()


def _message(exc: RecordError) -> str:
    return "; ".join(d.message for d in exc.details) or exc.message


async def _preview(request: Request, change: LayerChange, back: str) -> Response:
    """The change's preview (diff, plan or problems) with Apply; Back returns to `back`. A change
    that leaves the layer as it is has nothing to preview: back to the screen."""
    if change.files == SiteLayer(site_of(request)).current_files():
        return RedirectResponse(back, status_code=303)
    return await propose(request, change.files, change.note, back)


_ROLE_DRAFT = ("name", "label_en", "label_zh", "includes")
_UNIT_DRAFT = ("name", "name_zh", "kind", "parent_id")


def _draft(values: Any, keys: tuple[str, ...], prefix: str = "") -> dict[str, Any]:
    """What the admin typed into a "new" form (from its post, or from `new_*` query parameters
    after Back on the preview), to fill the form in again."""
    draft: dict[str, Any] = {key: str(values.get(prefix + key) or "") for key in keys}
    if "includes" in keys:
        draft["includes"] = [str(r) for r in values.getlist(prefix + "includes") if r]
    return draft


def _back_with_draft(path: str, draft: dict[str, Any]) -> str:
    """`path` with the draft as `new_*` query parameters: Back on the preview refills the form."""
    return f"{path}?{urlencode({f'new_{k}': v for k, v in draft.items() if v}, doseq=True)}"


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, str) and value.isdigit() and len(value) < 19 else None


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


async def roles_page(request: Request, error: str | None = None, status: int = 200, form: Any = None) -> Response:
    site = _site(request)
    roles = site.permissions.list_roles()
    selected = request.query_params.get("role") or (roles[0]["name"] if roles else None)
    role = next((r for r in roles if r["name"] == selected), None)
    matrix = {(g["entity"], g["action"]): g["scope"] for g in (role or {}).get("grants", [])}
    entities = ["*", *[e.name for e in site.registry.entities.values() if not e.child_of]]
    draft = _draft(form, _ROLE_DRAFT) if form is not None else _draft(request.query_params, _ROLE_DRAFT, "new_")
    return render(request, "admin/roles.html", {"roles": roles, "role": role, "matrix": matrix, "entities": entities, "draft": draft,
                                                "actions": ACTIONS, "scopes": SCOPES, "error": error}, status=status)


async def save_matrix(request: Request) -> Response:
    """Preview the matrix of one role as a layer version: each cell sent is a scope or empty (no
    grant). Nothing to preview when no cell changes: back to the role."""
    site = _site(request)
    role = request.path_params["role"]
    form = await form_data(request)
    cells: dict[tuple[str, str], str | None] = {}
    for key, value in form.multi_items():
        entity, _, action = key.removeprefix("cell:").partition(":")
        if key.startswith("cell:") and action in ACTIONS and (entity == "*" or entity in site.registry.entities):
            cells[(entity, action)] = value if isinstance(value, str) and value in SCOPES else None
    try:
        change = LayeredAccessAdmin(site).matrix_change(role, cells)
    except RecordError as exc:
        if isinstance(exc, NotFound):
            raise
        return await roles_page(request, _message(exc), status=422)
    if change is None:
        return RedirectResponse(f"/admin/roles?role={role}", status_code=303)
    return await _preview(request, change, f"/admin/roles?role={role}")


async def create_role(request: Request) -> Response:
    """A new role: its name, labels and the roles it includes."""
    site = _site(request)
    form = await form_data(request)
    name = str(form.get("name", "")).strip()
    try:
        change = LayeredAccessAdmin(site).create_role_change(name, str(form.get("label_en") or name), str(form.get("label_zh") or "") or None,
                                                             [str(r) for r in form.getlist("includes") if r])
    except RecordError as exc:
        return await roles_page(request, _message(exc), status=422, form=form)
    return await _preview(request, change, _back_with_draft("/admin/roles", _draft(form, _ROLE_DRAFT)))


async def update_role(request: Request) -> Response:
    """A role's labels and the roles it includes."""
    site = _site(request)
    role = request.path_params["role"]
    form = await form_data(request)
    try:
        change = LayeredAccessAdmin(site).update_role_change(role, label_en=str(form.get("label_en") or ""), label_zh=str(form.get("label_zh") or ""),
                                                             includes=[str(r) for r in form.getlist("includes") if r])
    except RecordError as exc:
        if isinstance(exc, NotFound):
            raise
        return await roles_page(request, _message(exc), status=422)
    return await _preview(request, change, f"/admin/roles?role={role}")


async def set_field(request: Request) -> Response:
    site = _site(request)
    role = request.path_params["role"]
    form = await form_data(request)
    spec = str(form.get("field", ""))
    access = form.get("access")
    entity, _, field = spec.partition(".")
    try:
        change = LayeredAccessAdmin(site).field_access_change(role, entity, field, access if access in ("hidden", "read_only") else None)
    except RecordError as exc:
        if isinstance(exc, NotFound):
            raise
        return await roles_page(request, _message(exc), status=422)
    return await _preview(request, change, f"/admin/roles?role={role}")


async def units_page(request: Request, error: str | None = None, status: int = 200, form: Any = None) -> Response:
    site = _site(request)
    draft = _draft(form, _UNIT_DRAFT) if form is not None else _draft(request.query_params, _UNIT_DRAFT, "new_")
    return render(request, "admin/units.html", {"units": _units(site), "kinds": UNIT_KINDS, "error": error, "draft": draft}, status=status)


async def create_unit(request: Request) -> Response:
    site = _site(request)
    form = await form_data(request)
    try:
        change = LayeredAccessAdmin(site).create_unit_change(str(form.get("name", "")).strip(), str(form.get("kind", "")), _int(form.get("parent_id")),
                                                             name_zh=str(form.get("name_zh") or ""))
    except RecordError as exc:
        return await units_page(request, _message(exc), status=422, form=form)
    return await _preview(request, change, _back_with_draft("/admin/units", _draft(form, _UNIT_DRAFT)))


async def update_unit(request: Request) -> Response:
    """Rename, change the kind, move, archive or restore a unit (the button pressed says which)."""
    site = _site(request)
    form = await form_data(request)
    action = str(form.get("action") or "save")
    changes: dict[str, Any] = {}
    if action == "archive":
        changes["archived"] = True
    elif action == "restore":
        changes["archived"] = False
    else:
        changes.update(name_en=str(form.get("name") or ""), name_zh=str(form.get("name_zh") or ""), kind=str(form.get("kind") or "") or None,
                       parent_id=_int(form.get("parent_id")))
    try:
        change = LayeredAccessAdmin(site).update_unit_change(request.path_params["id"], **changes)
    except RecordError as exc:
        if isinstance(exc, NotFound):
            raise
        return await units_page(request, _message(exc), status=422)
    return await _preview(request, change, "/admin/units")


routes = [
    Route("/admin", admin_home, methods=["GET"]),
    Route("/admin/users", users_page, methods=["GET"]),
    Route("/admin/users", create_user, methods=["POST"]),
    Route("/admin/users/{id:int}", update_user, methods=["POST"]),
    Route("/admin/roles", roles_page, methods=["GET"]),
    Route("/admin/roles", create_role, methods=["POST"]),
    Route("/admin/roles/{role:str}/matrix", save_matrix, methods=["POST"]),
    Route("/admin/roles/{role:str}/fields", set_field, methods=["POST"]),
    Route("/admin/roles/{role:str}", update_role, methods=["POST"]),
    Route("/admin/units", units_page, methods=["GET"]),
    Route("/admin/units", create_unit, methods=["POST"]),
    Route("/admin/units/{id:int}", update_unit, methods=["POST"]),
]
