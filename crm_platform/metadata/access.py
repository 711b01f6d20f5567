"""Access metadata: roles (posts) with their permissions and field access, and the demo org chart.

Roles come from `roles.yaml` in a pack; a later pack may replace a role of an earlier one
(`replaces: true`), which is how the site layer versions an admin's change to a pack's role.
Org units and demo users come from `org.yaml`: units merge by key across packs (a later pack's
unit of the same key replaces it; `archived: true` retires it), the demo users are the last
pack's that lists any. The site layer's units (pack `site`) are the site's versioned org tree;
other packs' units and users are loaded with the demo data only. Plain data: the engine turns it
into Casbin policies and rows.
"""

from __future__ import annotations

from dataclasses import dataclass

from crm_platform.metadata.model import Label, Place

ACTIONS = ("read", "create", "update", "delete", "export", "approve")
SCOPES = ("own", "unit", "unit_and_below", "all")  # narrowest first
FIELD_ACCESS = ("hidden", "read_only")
UNIT_KINDS = ("group", "subsidiary", "department", "team")


@dataclass(frozen=True)
class Permission:
    entity: str  # an entity name or "*"
    actions: tuple[str, ...]  # ACTIONS, "*", or "transition:<name>"
    scope: str


@dataclass(frozen=True)
class FieldAccess:
    entity: str
    field: str
    access: str  # hidden | read_only


@dataclass(frozen=True)
class Role:
    name: str
    label: Label
    place: Place
    includes: tuple[str, ...] = ()
    permissions: tuple[Permission, ...] = ()
    fields: tuple[FieldAccess, ...] = ()
    pack: str = ""


@dataclass(frozen=True)
class OrgUnitSeed:
    key: str
    name: Label
    kind: str
    parent: str | None
    place: Place
    archived: bool = False
    pack: str = ""  # the pack that declared it last


@dataclass(frozen=True)
class UserSeed:
    username: str
    name: str
    unit: str
    roles: tuple[str, ...]
    place: Place
    manager: str | None = None
    email: str | None = None
    language: str = "en"


@dataclass(frozen=True)
class OrgChart:
    units: tuple[OrgUnitSeed, ...] = ()
    users: tuple[UserSeed, ...] = ()
    password: str | None = None  # the demo users' shared password
    pack: str = ""
