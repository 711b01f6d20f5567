"""Administration over the API: roles and grants, field access, org units, users, reassignment;
and sharing one record (by whoever may update it). Changes to roles, the matrix, field access and
the org tree are versions of the site layer (layered_admin: answered with the version's id);
users, their roles and shares are data and change in place."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from crm_platform.engine.column_types import SQLITE_MAX_INTEGER
from crm_platform.engine.permissions.layered_admin import KEEP, LayeredAccessAdmin
from crm_platform.engine.records.errors import FieldError, NotFound, ValidationFailed
from crm_platform.ui.responses import json_response, no_content, read_json


MAX_LABEL = 200  # a role's labels (crm_role.label_en / label_zh)
MAX_UNIT_NAME = 90  # a unit's name in either language (the row keeps both in 200 characters)


def _admin(request: Request) -> Any:
    site = request.app.state.site
    site.access.require_administrator(request.state.actor)
    return site


async def _body(request: Request, *required: str) -> dict[str, Any]:
    data = await read_json(request)
    if not isinstance(data, dict):
        raise ValidationFailed([FieldError("body", "expected a JSON object")])
    missing = [FieldError(k, f"{k} is required", "required") for k in required if data.get(k) in (None, "")]
    if missing:
        raise ValidationFailed(missing)
    return data


async def list_roles(request: Request) -> Response:
    return json_response({"data": _admin(request).permissions.list_roles()})


def _by(request: Request) -> str:
    return str(request.state.actor.username)


def _text(data: dict[str, Any], key: str, max_length: int | None = None) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise ValidationFailed([FieldError(key, f"{key} must be a string")])
    if value is not None and max_length is not None and len(value) > max_length:
        raise ValidationFailed([FieldError(key, f"{key} is at most {max_length} characters", "too_long")])
    return value


def _required_text(data: dict[str, Any], key: str, max_length: int | None = None) -> str:
    """A required string (its presence checked by _body)."""
    value = _text(data, key, max_length)
    assert value is not None
    return value


def _is_id(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= SQLITE_MAX_INTEGER


def _exists(site: Any, table: str, row_id: int) -> bool:
    rows = site.schema.system[table]
    with site.engine.connect() as conn:
        return conn.execute(sa.select(rows.c.id).where(rows.c.id == row_id)).first() is not None


def _ref_id(site: Any, data: dict[str, Any], key: str, table: str) -> int | None:
    """An optional id in the body that must name an existing user (crm_user) or unit (crm_org_unit)."""
    value = data.get(key)
    if value is None:
        return None
    what = "user" if table == "crm_user" else "org unit"
    if not _is_id(value):
        raise ValidationFailed([FieldError(key, f"{key} must be the id of a {what} or null")])
    if not _exists(site, table, value):
        raise ValidationFailed([FieldError(key, f"no {what} {value}", "not_found")])
    return value


def _role_list(site: Any, data: dict[str, Any], key: str = "roles") -> list[str] | None:
    """An optional list of existing role names (checked before anything changes)."""
    roles = data.get(key)
    if roles is None:
        return None
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise ValidationFailed([FieldError(key, "a list of role names")])
    known = {r["name"] for r in site.permissions.list_roles()}
    unknown = [r for r in roles if r not in known]
    if unknown:
        raise ValidationFailed([FieldError(key, f"unknown role(s): {', '.join(unknown)}", "unknown_role")])
    return list(dict.fromkeys(roles))


def _includes(data: dict[str, Any]) -> list[str] | None:
    includes = data.get("includes")
    if includes is not None and (not isinstance(includes, list) or not all(isinstance(i, str) for i in includes)):
        raise ValidationFailed([FieldError("includes", "a list of role names")])
    return includes


async def create_role(request: Request) -> Response:
    """{name, label_en, label_zh?, includes?: [role, ...]}"""
    site = _admin(request)
    data = await _body(request, "name", "label_en")
    version = LayeredAccessAdmin(site).create_role(_required_text(data, "name"), _required_text(data, "label_en", MAX_LABEL), _text(data, "label_zh", MAX_LABEL), _by(request),
                                                   includes=_includes(data))
    return json_response({"name": data["name"], "layer_version": version.id}, status=201)


async def update_role(request: Request) -> Response:
    """{label_en?, label_zh?, includes?: [role, ...]}"""
    site = _admin(request)
    data = await _body(request)
    version = LayeredAccessAdmin(site).update_role(request.path_params["role"], _by(request), label_en=_text(data, "label_en", MAX_LABEL),
                                                   label_zh=_text(data, "label_zh", MAX_LABEL), includes=_includes(data))
    return json_response({"name": request.path_params["role"], "layer_version": version.id})


async def grant(request: Request) -> Response:
    site = _admin(request)
    data = await _body(request, "entity", "action", "scope")
    role = request.path_params["role"]
    version = LayeredAccessAdmin(site).set_matrix(role, {(_required_text(data, "entity"), _required_text(data, "action")): _required_text(data, "scope")}, _by(request))
    return json_response({"role": role, **{k: data[k] for k in ("entity", "action", "scope")}, "layer_version": version.id if version else None}, status=201)


async def revoke(request: Request) -> Response:
    site = _admin(request)
    entity, action = request.query_params.get("entity"), request.query_params.get("action")
    if not entity or not action:
        raise ValidationFailed([FieldError("entity", "entity and action query parameters are required", "required")])
    LayeredAccessAdmin(site).set_matrix(request.path_params["role"], {(entity, action): None}, _by(request))
    return no_content()


async def field_access(request: Request) -> Response:
    site = _admin(request)
    data = await _body(request, "entity", "field")
    LayeredAccessAdmin(site).set_field_access(request.path_params["role"], _required_text(data, "entity"), _required_text(data, "field"), _text(data, "access"),
                                              _by(request))
    return no_content()


async def list_units(request: Request) -> Response:
    site = _admin(request)
    return json_response({"data": [u.as_dict() for u in LayeredAccessAdmin(site).units()]})


def _unit_id(data: dict[str, Any], key: str) -> int | None:
    value = data.get(key)
    if value is not None and not _is_id(value):
        raise ValidationFailed([FieldError(key, f"{key} must be a unit id or null")])
    return value


async def create_unit(request: Request) -> Response:
    """{name, kind, name_zh?, parent_id?}"""
    site = _admin(request)
    data = await _body(request, "name", "kind")
    unit_id = LayeredAccessAdmin(site).create_unit(_required_text(data, "name"), _required_text(data, "kind"), _unit_id(data, "parent_id"), _by(request),
                                                  name_zh=_text(data, "name_zh", MAX_UNIT_NAME))
    return json_response({"id": unit_id}, status=201)


async def update_unit(request: Request) -> Response:
    """{name?, name_zh?, kind?, parent_id? (null: the top), archived?}"""
    site = _admin(request)
    data = await _body(request)
    archived = data.get("archived")
    if archived is not None and not isinstance(archived, bool):
        raise ValidationFailed([FieldError("archived", "true or false")])
    version = LayeredAccessAdmin(site).update_unit(request.path_params["id"], _by(request), name_en=_text(data, "name"), name_zh=_text(data, "name_zh", MAX_UNIT_NAME),
                                                   kind=_text(data, "kind"), parent_id=_unit_id(data, "parent_id") if "parent_id" in data else KEEP,
                                                   archived=archived)
    return json_response({"id": request.path_params["id"], "layer_version": version.id})


def _user_json(site: Any, row: Any) -> dict[str, Any]:
    return {"id": row["id"], "username": row["username"], "display_name": row["display_name"], "email": row["email"],
            "unit_id": row["unit_id"], "manager_id": row["manager_id"], "active": row["active"], "is_admin": row["is_admin"],
            "roles": site.access.store.roles_of(row["id"])}


async def list_users(request: Request) -> Response:
    site = _admin(request)
    users = site.schema.system["crm_user"]
    with site.engine.connect() as conn:
        rows = conn.execute(sa.select(users).order_by(users.c.username)).mappings().all()
    return json_response({"data": [_user_json(site, r) for r in rows]})


async def create_user(request: Request) -> Response:
    site = _admin(request)
    data = await _body(request, "username", "password")
    username, password = _required_text(data, "username"), _required_text(data, "password")
    display_name, email, language = _text(data, "display_name", 200), _text(data, "email", 254), _text(data, "language")
    unit, manager = _ref_id(site, data, "unit_id", "crm_org_unit"), _ref_id(site, data, "manager_id", "crm_user")
    roles = _role_list(site, data) or []
    user_id = site.users.create_user(username, password, display_name, email, language=language or "en", unit_id=unit, manager_id=manager)
    for role in roles:
        site.permissions.assign_role(user_id, role)
    return json_response({"id": user_id}, status=201)


async def update_user(request: Request) -> Response:
    site = _admin(request)
    user_id = request.path_params["id"]
    data = await _body(request)
    if site.users.actor(user_id) is None:
        raise NotFound(f"user {user_id} not found")
    unit, manager = _ref_id(site, data, "unit_id", "crm_org_unit"), _ref_id(site, data, "manager_id", "crm_user")
    roles = _role_list(site, data)
    if "manager_id" in data:
        site.permissions.set_manager(user_id, manager)  # refuses a loop before anything changes
    if "unit_id" in data:
        site.permissions.set_unit(user_id, unit)
    if "roles" in data:
        wanted = set(roles or [])
        current = set(site.access.store.roles_of(user_id))
        for role in wanted - current:
            site.permissions.assign_role(user_id, role)
        for role in current - wanted:
            site.permissions.unassign_role(user_id, role)
    return json_response({"id": user_id})


async def reassign(request: Request) -> Response:
    site = _admin(request)
    data = await _body(request, "to_user_id")
    if not _exists(site, "crm_user", request.path_params["id"]):
        raise NotFound(f"user {request.path_params['id']} not found")
    to_user = data["to_user_id"]
    if not _is_id(to_user):
        raise ValidationFailed([FieldError("to_user_id", "to_user_id must be the id of a user")])
    counts = site.permissions.reassign(request.path_params["id"], to_user)
    return json_response({"moved": counts})


async def list_shares(request: Request) -> Response:
    site = request.app.state.site
    entity, record_id = request.path_params["entity"], request.path_params["id"]
    site.records.get(request.state.actor, entity, record_id)
    return json_response({"data": [{k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in s.items()} for s in site.permissions.shares_of(entity, record_id)]})


async def share(request: Request) -> Response:
    """Share a record with a user or a unit; whoever may update the record may share it."""
    site = request.app.state.site
    entity, record_id = request.path_params["entity"], request.path_params["id"]
    actor = request.state.actor
    site.records.check(actor, entity, record_id, "update")
    data = await _body(request, "access")
    access = _required_text(data, "access")
    user_id, unit_id = _ref_id(site, data, "user_id", "crm_user"), _ref_id(site, data, "unit_id", "crm_org_unit")
    share_id = site.permissions.share(entity, record_id, access, actor.user_id, user_id=user_id, unit_id=unit_id)
    return json_response({"id": share_id}, status=201)


routes = [
    Route("/admin/roles", list_roles, methods=["GET"]),
    Route("/admin/roles", create_role, methods=["POST"]),
    Route("/admin/roles/{role:str}/grants", grant, methods=["POST"]),
    Route("/admin/roles/{role:str}/grants", revoke, methods=["DELETE"]),
    Route("/admin/roles/{role:str}/fields", field_access, methods=["PUT"]),
    Route("/admin/roles/{role:str}", update_role, methods=["PATCH"]),
    Route("/admin/units", list_units, methods=["GET"]),
    Route("/admin/units", create_unit, methods=["POST"]),
    Route("/admin/units/{id:int}", update_unit, methods=["PATCH"]),
    Route("/admin/users", list_users, methods=["GET"]),
    Route("/admin/users", create_user, methods=["POST"]),
    Route("/admin/users/{id:int}", update_user, methods=["PATCH"]),
    Route("/admin/users/{id:int}/reassign", reassign, methods=["POST"]),
    Route("/records/{entity:str}/{id:int}/shares", list_shares, methods=["GET"]),
    Route("/records/{entity:str}/{id:int}/shares", share, methods=["POST"]),
]
