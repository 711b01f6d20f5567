"""Roles and policies in Casbin: loaded from the crm_policy table, reloaded when the policy
version changes (so an admin's edit applies without a restart), and resolved per user into
(entity, action) -> widest scope once per policy version, never per row."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import casbin
import sqlalchemy as sa
from casbin import persist

from crm_platform.metadata.access import SCOPES

if TYPE_CHECKING:
    from crm_platform.engine.site import Site

MODEL_PATH = Path(__file__).with_name("model.conf")
VERSION_KEY = "policy_version"
RECHECK_SECONDS = 0.5


def user_subject(user_id: int) -> str:
    return f"user:{user_id}"


def wider(a: str | None, b: str | None) -> str | None:
    if a is None:
        return b
    if b is None:
        return a
    return a if SCOPES.index(a) >= SCOPES.index(b) else b


class TableAdapter(persist.Adapter):  # type: ignore[misc]
    """Casbin's storage on our own crm_policy table (read-only: writes go through PolicyStore, in
    the caller's transaction, so a pack sync or an admin edit is atomic with the rest)."""

    def __init__(self, engine: sa.Engine, table: sa.Table) -> None:
        self.engine = engine
        self.table = table

    def load_policy(self, model: Any) -> None:
        with self.engine.connect() as conn:
            for row in conn.execute(sa.select(self.table).order_by(self.table.c.id)):
                values = [row.ptype, row.v0, row.v1, row.v2, row.v3, row.v4, row.v5]
                persist.load_policy_line(", ".join(v for v in values if v is not None), model)

    def save_policy(self, model: Any) -> bool:
        return False

    def add_policy(self, sec: str, ptype: str, rule: list[str]) -> None:
        return None

    def remove_policy(self, sec: str, ptype: str, rule: list[str]) -> None:
        return None


@dataclass
class Grants:
    """What one user may do: (entity, action) -> widest scope, and field access per entity."""

    roles: tuple[str, ...]
    scopes: dict[tuple[str, str], str] = field(default_factory=dict)
    fields: dict[str, dict[str, str]] = field(default_factory=dict)

    def scope(self, entity: str, action: str) -> str | None:
        best = None
        for key in ((entity, action), (entity, "*"), ("*", action), ("*", "*")):
            best = wider(best, self.scopes.get(key))
        return best


class PolicyStore:
    def __init__(self, site: Site) -> None:
        self.site = site
        self.policies = site.schema.system["crm_policy"]
        self.settings = site.schema.system["crm_setting"]
        self.field_access = site.schema.system["crm_field_access"]
        self._lock = threading.Lock()
        self._enforcer: casbin.Enforcer | None = None
        self._version: str | None = None
        self._checked = 0.0
        self._grants: dict[int, Grants] = {}
        self._fields: dict[str, dict[str, dict[str, str]]] = {}

    # -- loading -----------------------------------------------------------------------------
    def version(self) -> str:
        with self.site.engine.connect() as conn:
            value = conn.execute(sa.select(self.settings.c.value).where(self.settings.c.key == VERSION_KEY)).scalar()
        return value or "0"

    def _fresh(self) -> casbin.Enforcer:
        now = time.monotonic()
        with self._lock:
            if self._enforcer is not None and now - self._checked < RECHECK_SECONDS:
                return self._enforcer
            version = self.version()
            self._checked = now
            if self._enforcer is None or version != self._version:
                enforcer = casbin.Enforcer(str(MODEL_PATH), TableAdapter(self.site.engine, self.policies))
                depth = _deepest_chain(enforcer)
                enforcer.get_role_manager().max_hierarchy_level = depth + 2
                enforcer.build_role_links()
                self._enforcer = enforcer
                self._version = version
                self._grants = {}
                self._fields = self._load_field_access()
            return self._enforcer

    def _load_field_access(self) -> dict[str, dict[str, dict[str, str]]]:
        result: dict[str, dict[str, dict[str, str]]] = {}
        with self.site.engine.connect() as conn:
            for row in conn.execute(sa.select(self.field_access)):
                result.setdefault(row.role, {}).setdefault(row.entity, {})[row.field] = row.access
        return result

    # -- questions ---------------------------------------------------------------------------
    def grants(self, user_id: int) -> Grants:
        enforcer = self._fresh()
        cached = self._grants.get(user_id)
        if cached is not None:
            return cached
        subject = user_subject(user_id)
        roles = tuple(enforcer.get_implicit_roles_for_user(subject))
        grants = Grants(roles)
        for rule in enforcer.get_implicit_permissions_for_user(subject):
            _role, entity, action, scope = rule[:4]
            key = (entity, action)
            grants.scopes[key] = wider(grants.scopes.get(key), scope) or scope
        grants.fields = _least_restrictive(roles, self._fields)
        self._grants[user_id] = grants
        return grants

    def allowed(self, user_id: int, entity: str, action: str) -> bool:
        return bool(self._fresh().enforce(user_subject(user_id), entity, action))

    def roles_of(self, user_id: int) -> list[str]:
        return list(self._fresh().get_roles_for_user(user_subject(user_id)))


def _deepest_chain(enforcer: casbin.Enforcer) -> int:
    edges: dict[str, list[str]] = {}
    for child, parent in enforcer.get_named_grouping_policy("g"):
        edges.setdefault(child, []).append(parent)

    def depth(node: str, seen: frozenset[str]) -> int:
        if node in seen:
            return 0
        return 1 + max((depth(p, seen | {node}) for p in edges.get(node, [])), default=0)

    return max((depth(n, frozenset()) for n in edges), default=1)


def _least_restrictive(roles: tuple[str, ...], declared: dict[str, dict[str, dict[str, str]]]) -> dict[str, dict[str, str]]:
    """A field is hidden (or read-only) only when every role of the user restricts it: roles add up."""
    if not roles:
        return {}
    rank = {"hidden": 0, "read_only": 1}
    result: dict[str, dict[str, str]] = {}
    candidates = {(e, f) for r in roles for e, fields in declared.get(r, {}).items() for f in fields}
    for entity, name in candidates:
        levels = [declared.get(role, {}).get(entity, {}).get(name) for role in roles]
        if any(level is None for level in levels):
            continue
        result.setdefault(entity, {})[name] = max(levels, key=lambda level: rank[level or "read_only"]) or "read_only"
    return result
