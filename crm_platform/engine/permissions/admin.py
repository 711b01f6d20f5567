"""Changing who may do what directly in the policy rows: roles, grants, role includes, user roles,
field access; units; sharing one record; reassigning a leaver's records. Every change bumps the
policy version, so every server process picks it up without a restart.

The administration screens, the API and the CLI's `role grant` change roles, the matrix and the
org tree through the site layer instead (layered_admin), so those changes are versioned; the
direct methods here serve user data (role assignments, unit, manager, shares), scripts and
tests."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from crm_platform.engine.column_types import utcnow
from crm_platform.engine.permissions.org_tree import LAYER_PACK, sync_org_units
from crm_platform.engine.permissions.policy_store import VERSION_KEY, user_subject
from crm_platform.engine.records.errors import FieldError, NotFound, ValidationFailed
from crm_platform.metadata.access import ACTIONS, FIELD_ACCESS, SCOPES, UNIT_KINDS
from crm_platform.metadata.model import Registry

if TYPE_CHECKING:
    from crm_platform.engine.site import Site

SITE = "site"


def bump_version(conn: sa.Connection, settings: sa.Table) -> None:
    current = conn.execute(sa.select(settings.c.value).where(settings.c.key == VERSION_KEY)).scalar()
    if current is None:
        conn.execute(settings.insert().values(key=VERSION_KEY, value="1"))
    else:
        conn.execute(settings.update().where(settings.c.key == VERSION_KEY).values(value=str(int(current) + 1)))


class PermissionAdmin:
    def __init__(self, site: Site) -> None:
        self.site = site
        s = site.schema.system
        self.policies, self.roles, self.fields, self.settings = s["crm_policy"], s["crm_role"], s["crm_field_access"], s["crm_setting"]
        self.units, self.users, self.shares = s["crm_org_unit"], s["crm_user"], s["crm_share"]

    # -- roles and grants --------------------------------------------------------------------
    def create_role(self, name: str, label_en: str, label_zh: str | None = None, source: str = SITE) -> None:
        with self.site.engine.begin() as conn:
            if conn.execute(sa.select(self.roles.c.name).where(self.roles.c.name == name)).first():
                raise ValidationFailed([FieldError("name", f"role '{name}' already exists", "duplicate")])
            conn.execute(self.roles.insert().values(name=name, label_en=label_en, label_zh=label_zh or label_en, source=source))
            bump_version(conn, self.settings)

    def _role_exists(self, conn: sa.Connection, role: str) -> None:
        if conn.execute(sa.select(self.roles.c.name).where(self.roles.c.name == role)).first() is None:
            raise NotFound(f"no role '{role}'")

    def grant(self, role: str, entity: str, action: str, scope: str, source: str = SITE) -> None:
        self._check_grant(entity, action, scope)
        with self.site.engine.begin() as conn:
            self._role_exists(conn, role)
            conn.execute(self.policies.delete().where(self.policies.c.ptype == "p", self.policies.c.v0 == role, self.policies.c.v1 == entity, self.policies.c.v2 == action))
            conn.execute(self.policies.insert().values(ptype="p", v0=role, v1=entity, v2=action, v3=scope, v4=source))
            bump_version(conn, self.settings)

    def revoke(self, role: str, entity: str, action: str) -> None:
        with self.site.engine.begin() as conn:
            conn.execute(self.policies.delete().where(self.policies.c.ptype == "p", self.policies.c.v0 == role, self.policies.c.v1 == entity, self.policies.c.v2 == action))
            bump_version(conn, self.settings)

    def _check_grant(self, entity: str, action: str, scope: str) -> None:
        errors = []
        if entity != "*" and entity not in self.site.registry.entities:
            errors.append(FieldError("entity", f"unknown entity '{entity}'"))
        if action not in (*ACTIONS, "*") and not action.startswith("transition:"):
            errors.append(FieldError("action", f"unknown action '{action}'; expected one of {', '.join(ACTIONS)}, * or transition:<name>"))
        if scope not in SCOPES:
            errors.append(FieldError("scope", f"unknown scope '{scope}'; expected one of {', '.join(SCOPES)}"))
        if errors:
            raise ValidationFailed(errors)

    def include_role(self, role: str, included: str) -> None:
        with self.site.engine.begin() as conn:
            self._role_exists(conn, role)
            self._role_exists(conn, included)
            conn.execute(self.policies.insert().values(ptype="g", v0=role, v1=included))
            bump_version(conn, self.settings)

    def assign_role(self, user_id: int, role: str) -> None:
        with self.site.engine.begin() as conn:
            self._role_exists(conn, role)
            subject = user_subject(user_id)
            exists = conn.execute(sa.select(self.policies.c.id).where(self.policies.c.ptype == "g", self.policies.c.v0 == subject, self.policies.c.v1 == role)).first()
            if not exists:
                conn.execute(self.policies.insert().values(ptype="g", v0=subject, v1=role))
            bump_version(conn, self.settings)

    def unassign_role(self, user_id: int, role: str) -> None:
        with self.site.engine.begin() as conn:
            conn.execute(self.policies.delete().where(self.policies.c.ptype == "g", self.policies.c.v0 == user_subject(user_id), self.policies.c.v1 == role))
            bump_version(conn, self.settings)

    def set_field_access(self, role: str, entity: str, field: str, access: str | None, source: str = SITE) -> None:
        if access is not None and access not in FIELD_ACCESS:
            raise ValidationFailed([FieldError("access", f"expected one of {', '.join(FIELD_ACCESS)}")])
        if entity not in self.site.registry.entities or field not in self.site.registry.entity(entity).field_map:
            raise ValidationFailed([FieldError("field", f"unknown field '{entity}.{field}'")])
        with self.site.engine.begin() as conn:
            self._role_exists(conn, role)
            key = (self.fields.c.role == role) & (self.fields.c.entity == entity) & (self.fields.c.field == field)
            conn.execute(self.fields.delete().where(key))
            if access is not None:
                conn.execute(self.fields.insert().values(role=role, entity=entity, field=field, access=access, source=source))
            bump_version(conn, self.settings)

    def list_roles(self) -> list[dict[str, Any]]:
        with self.site.engine.connect() as conn:
            roles = [dict(r) for r in conn.execute(sa.select(self.roles).order_by(self.roles.c.name)).mappings()]
            grants = conn.execute(sa.select(self.policies).where(self.policies.c.ptype == "p")).mappings().all()
            includes = conn.execute(sa.select(self.policies).where(self.policies.c.ptype == "g", ~self.policies.c.v0.startswith("user:"))).mappings().all()
            fields = conn.execute(sa.select(self.fields)).mappings().all()
        for role in roles:
            role["grants"] = [{"entity": g["v1"], "action": g["v2"], "scope": g["v3"], "source": g["v4"]} for g in grants if g["v0"] == role["name"]]
            role["includes"] = [g["v1"] for g in includes if g["v0"] == role["name"]]
            role["fields"] = [{"entity": f["entity"], "field": f["field"], "access": f["access"]} for f in fields if f["role"] == role["name"]]
        return roles

    # -- the org tree ------------------------------------------------------------------------
    def create_unit(self, name: str, kind: str, parent_id: int | None = None) -> int:
        if kind not in UNIT_KINDS:
            raise ValidationFailed([FieldError("kind", f"expected one of {', '.join(UNIT_KINDS)}")])
        with self.site.engine.begin() as conn:
            return create_unit(conn, self.units, name, kind, parent_id)

    def move_unit(self, unit_id: int, parent_id: int | None) -> None:
        """Move a unit (and everything below it) under another parent; paths follow."""
        with self.site.engine.begin() as conn:
            old = conn.execute(sa.select(self.units.c.path).where(self.units.c.id == unit_id)).scalar()
            if old is None:
                raise NotFound(f"org unit {unit_id} not found")
            prefix = "/"
            if parent_id is not None:
                parent_path = conn.execute(sa.select(self.units.c.path).where(self.units.c.id == parent_id)).scalar()
                if parent_path is None:
                    raise NotFound(f"org unit {parent_id} not found")
                if parent_path.startswith(old):
                    raise ValidationFailed([FieldError("parent_id", "a unit cannot move below itself")])
                prefix = parent_path
            new = f"{prefix}{unit_id}/"
            conn.execute(self.units.update().where(self.units.c.id == unit_id).values(parent_id=parent_id))
            conn.execute(self.units.update().where(self.units.c.path.like(old + "%")).values(path=sa.func.replace(self.units.c.path, old, new)))
            bump_version(conn, self.settings)

    def set_manager(self, user_id: int, manager_id: int | None) -> None:
        with self.site.engine.begin() as conn:
            chain, seen = manager_id, set()
            while chain is not None:
                if chain == user_id or chain in seen:
                    raise ValidationFailed([FieldError("manager_id", "a user cannot report to themselves, directly or not")])
                seen.add(chain)
                chain = conn.execute(sa.select(self.users.c.manager_id).where(self.users.c.id == chain)).scalar()
            conn.execute(self.users.update().where(self.users.c.id == user_id).values(manager_id=manager_id))

    def set_unit(self, user_id: int, unit_id: int | None) -> None:
        with self.site.engine.begin() as conn:
            conn.execute(self.users.update().where(self.users.c.id == user_id).values(unit_id=unit_id))

    # -- sharing and reassignment ------------------------------------------------------------
    def share(self, entity: str, record_id: int, access: str, by: int | None, user_id: int | None = None, unit_id: int | None = None) -> int:
        if access not in ("read", "edit") or (user_id is None) == (unit_id is None):
            raise ValidationFailed([FieldError("access", "share with one user or one unit, for read or edit")])
        with self.site.engine.begin() as conn:
            return conn.execute(self.shares.insert().values(entity=entity, record_id=record_id, user_id=user_id, unit_id=unit_id, access=access, created_by=by, created_at=utcnow()).returning(self.shares.c.id)).scalar_one()

    def unshare(self, share_id: int) -> None:
        with self.site.engine.begin() as conn:
            conn.execute(self.shares.delete().where(self.shares.c.id == share_id))

    def shares_of(self, entity: str, record_id: int) -> list[dict[str, Any]]:
        with self.site.engine.connect() as conn:
            return [dict(r) for r in conn.execute(sa.select(self.shares).where(self.shares.c.entity == entity, self.shares.c.record_id == record_id)).mappings()]

    def reassign(self, from_user: int, to_user: int) -> dict[str, int]:
        """Give every record `from_user` owns to `to_user` (with to_user's unit). Returns counts per entity."""
        counts: dict[str, int] = {}
        with self.site.engine.begin() as conn:
            target = conn.execute(sa.select(self.users.c.unit_id).where(self.users.c.id == to_user)).first()
            if target is None:
                raise NotFound(f"user {to_user} not found")
            for entity in self.site.registry.entities.values():
                if not entity.owned:
                    continue
                table = self.site.schema.tables[entity.name]
                done = conn.execute(table.update().where(table.c.owner_id == from_user).values(owner_id=to_user, unit_id=target.unit_id, updated_at=utcnow(), version=table.c.version + 1))
                if done.rowcount:
                    counts[entity.name] = done.rowcount
        return counts


def create_unit(conn: sa.Connection, units: sa.Table, name: str, kind: str, parent_id: int | None) -> int:
    parent_path = "/"
    if parent_id is not None:
        parent_path = conn.execute(sa.select(units.c.path).where(units.c.id == parent_id)).scalar()
        if parent_path is None:
            raise NotFound(f"org unit {parent_id} not found")
    unit_id = conn.execute(units.insert().values(name=name, kind=kind, parent_id=parent_id, path="/", created_at=utcnow()).returning(units.c.id)).scalar_one()
    conn.execute(units.update().where(units.c.id == unit_id).values(path=f"{parent_path}{unit_id}/"))
    return int(unit_id)


def sync_pack_roles(conn: sa.Connection, site_schema: dict[str, sa.Table], registry: Registry) -> None:
    """Make the pack-sourced roles, grants, includes and field access exactly what the packs say,
    and the org tree's unit rows what the org chart says (org_tree). Rows an admin added directly
    (source `site`, e.g. a script's grant) are kept, except for a role the site layer
    declares: its declaration is the whole of it."""
    roles_table, policies, fields, settings = site_schema["crm_role"], site_schema["crm_policy"], site_schema["crm_field_access"], site_schema["crm_setting"]
    roles = registry.extra.get("roles", ())
    conn.execute(policies.delete().where(policies.c.ptype == "p", policies.c.v4.startswith("pack:")))
    conn.execute(fields.delete().where(fields.c.source.startswith("pack:")))
    conn.execute(roles_table.delete().where(roles_table.c.source.startswith("pack:")))
    pack_roles = {r.name for r in roles}
    conn.execute(policies.delete().where(policies.c.ptype == "g", policies.c.v0.in_(pack_roles)))
    layered = [r.name for r in roles if r.pack == LAYER_PACK]
    if layered:
        conn.execute(policies.delete().where(policies.c.ptype == "p", policies.c.v0.in_(layered)))
        conn.execute(fields.delete().where(fields.c.role.in_(layered)))
    for role in roles:
        source = f"pack:{role.pack}"
        conn.execute(roles_table.delete().where(roles_table.c.name == role.name))
        conn.execute(roles_table.insert().values(name=role.name, label_en=role.label.en, label_zh=role.label.zh_cn, source=source))
        for perm in role.permissions:
            for action in perm.actions:
                conn.execute(policies.insert().values(ptype="p", v0=role.name, v1=perm.entity, v2=action, v3=perm.scope, v4=source))
        for included in role.includes:
            conn.execute(policies.insert().values(ptype="g", v0=role.name, v1=included))
        for fa in role.fields:
            conn.execute(fields.insert().values(role=role.name, entity=fa.entity, field=fa.field, access=fa.access, source=source))
    sync_org_units(conn, site_schema, registry)
    bump_version(conn, settings)
