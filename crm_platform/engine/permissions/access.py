"""The one enforcement point: may this actor do this action on this entity, on which rows, and
which fields may they see and write. Every path (API, screens, export, search, related lists,
history, attachments) asks here through the record service."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from crm_platform.engine.permissions.policy_store import PolicyStore
from crm_platform.engine.permissions.scopes import scope_clause
from crm_platform.engine.records.actor import Actor
from crm_platform.engine.records.errors import FieldError, Forbidden
from crm_platform.metadata.model import Entity

if TYPE_CHECKING:
    from crm_platform.engine.site import Site


class AccessControl:
    def __init__(self, site: Site) -> None:
        self.site = site
        self.store = PolicyStore(site)

    def _owner_entity(self, entity: Entity) -> Entity:
        """Child rows are governed by their parent entity's permissions."""
        while entity.child_of:
            entity = self.site.registry.entity(entity.child_of)
        return entity

    def scope(self, actor: Actor, entity: Entity, action: str) -> str | None:
        """The widest scope the actor has for the action, or None when not allowed at all."""
        if actor.is_admin:
            return "all"
        if actor.user_id is None:
            return None
        governing = self._owner_entity(entity)
        grants = self.store.grants(actor.user_id)
        return grants.scope(governing.name, action)

    def is_administrator(self, actor: Actor) -> bool:
        """Administrators (the is_admin flag, or a role granting every action on every entity
        with scope all) manage users, roles, the org tree and every record."""
        if actor.is_admin:
            return True
        if actor.user_id is None:
            return False
        return self.store.grants(actor.user_id).scopes.get(("*", "*")) == "all"

    def require_administrator(self, actor: Actor) -> None:
        if not self.is_administrator(actor):
            raise Forbidden("only administrators may manage users, roles and the org tree")

    def require(self, actor: Actor, entity: Entity, action: str) -> str:
        scope = self.scope(actor, entity, action)
        if scope is None:
            label = entity.plural_label.en if action == "read" else entity.label.en
            raise Forbidden(f"your role does not allow {action} on {label}")
        return scope

    def can(self, actor: Actor, entity: Entity, action: str) -> bool:
        return self.scope(actor, entity, action) is not None

    def row_filter(self, actor: Actor, entity: Entity, table: sa.Table, action: str = "read") -> sa.ColumnElement[bool]:
        """The SQL condition for the rows the actor may `action` (raises Forbidden if none)."""
        scope = self.require(actor, entity, action)
        if actor.is_admin or scope == "all":
            return sa.true()
        governing = self._owner_entity(entity)
        if governing is entity:
            return scope_clause(self.site.schema.system, entity, table, actor, scope, for_edit=action != "read")
        parent = self.site.schema.tables[governing.name]
        visible = sa.select(parent.c.id).where(scope_clause(self.site.schema.system, governing, parent, actor, scope, for_edit=action != "read"))
        return table.c.parent_id.in_(visible)

    # -- fields ----------------------------------------------------------------------------
    def field_access(self, actor: Actor, entity: Entity) -> dict[str, str]:
        """field -> 'hidden' | 'read_only' for the fields restricted for this actor."""
        if actor.is_admin or actor.user_id is None:
            return {}
        return self.store.grants(actor.user_id).fields.get(entity.name, {})

    def hidden_fields(self, actor: Actor, entity: Entity) -> set[str]:
        return {name for name, access in self.field_access(actor, entity).items() if access == "hidden"}

    def check_writes(self, actor: Actor, entity: Entity, names: Any) -> None:
        """403 naming every hidden or read-only field the payload tries to write."""
        restricted = self.field_access(actor, entity)
        errors = []
        for name in names:
            base = name[: -len("_currency")] if name.endswith("_currency") and name[: -len("_currency")] in entity.field_map else name
            access = restricted.get(base)
            if access == "hidden":
                errors.append(FieldError(name, f"you may not write '{base}': it is hidden for your role", "forbidden_field"))
            elif access == "read_only":
                errors.append(FieldError(name, f"you may not write '{base}': it is read-only for your role", "forbidden_field"))
        if errors:
            raise Forbidden("; ".join(e.message for e in errors), errors)

    def strip_hidden(self, actor: Actor, entity: Entity, record: dict[str, Any]) -> dict[str, Any]:
        hidden = self.hidden_fields(actor, entity)
        if not hidden:
            return record
        for name in hidden:
            record.pop(name, None)
            record.pop(f"{name}_currency", None)
            record.get("_titles", {}).pop(name, None)
        return record
