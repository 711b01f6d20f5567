"""The org tree's and the roles' edits as edits of the site layer's files (org.yaml, roles.yaml):
YAML in, YAML out, nothing here knows about HTTP or the database (see layer_edits for the
object designer's edits and the YAML helpers shared with it).

A role the layer changes is written whole: its label, includes, permission matrix and field
access, with `replaces: true` when an earlier pack declares it (the pack's definition comes back
when the layer drops it). A unit the layer changes is written whole too (key, kind, name, parent,
`archived`); the layer's org.yaml lists no users (user accounts are data), so the demo users stay
the packs'. A refusal raises EditRefused with a message per input, and no file is produced.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from crm_platform.engine.layer_edits import EditRefused, block, dump, flow, flow_list, label, load, name_problem, slug
from crm_platform.metadata.access import ACTIONS, FIELD_ACCESS, SCOPES, UNIT_KINDS

ROLES_FILE = "roles.yaml"
ORG_FILE = "org.yaml"
ROLES_HEADER = "# Roles (posts) as the site's administrators changed them; a role with `replaces: true` replaces a pack's role of that name.\n"
ORG_HEADER = "# The site's org tree as its administrators changed it: units merge by key with the packs' org charts. No users: accounts are data.\n"


@dataclass
class RoleSpec:
    """A role whole, as the layer writes it."""

    name: str
    label_en: str
    label_zh: str
    includes: list[str] = field(default_factory=list)
    grants: dict[tuple[str, str], str] = field(default_factory=dict)  # (entity, action) -> scope, in the order written
    fields: list[tuple[str, str, str]] = field(default_factory=list)  # (entity, field, access)

    def permissions(self) -> list[dict[str, Any]]:
        """The matrix as roles.yaml writes it: per entity, one entry per scope with its actions."""
        entities: dict[str, dict[str, list[str]]] = {}
        for (entity, action), scope in self.grants.items():
            entities.setdefault(entity, {}).setdefault(scope, []).append(action)
        rank = {a: i for i, a in enumerate(ACTIONS)}
        return [{"entity": entity, "actions": sorted(actions, key=lambda a: (rank.get(a, len(rank)), a)), "scope": scope}
                for entity, by_scope in entities.items() for scope in SCOPES if (actions := by_scope.get(scope))]


@dataclass
class UnitSpec:
    """A unit whole, as the layer writes it."""

    key: str
    name_en: str
    name_zh: str
    kind: str
    parent: str | None = None
    archived: bool = False


# -- checking what the admin typed ----------------------------------------------------------------

def check_role_name(name: str, taken: Collection[str]) -> None:
    problem = name_problem(name, "role name")
    if problem is None and name in taken:
        problem = f"role '{name}' already exists"
    if problem:
        raise EditRefused({"name": problem})


def check_grant(entity: str, action: str, scope: str | None, entities: Collection[str]) -> None:
    errors = {}
    if entity != "*" and entity not in entities:
        errors["entity"] = f"unknown entity '{entity}'"
    if action not in (*ACTIONS, "*") and not action.startswith("transition:"):
        errors["action"] = f"unknown action '{action}'; expected one of {', '.join(ACTIONS)}, * or transition:<name>"
    if scope is not None and scope not in SCOPES:
        errors["scope"] = f"unknown scope '{scope}'; expected one of {', '.join(SCOPES)}"
    if errors:
        raise EditRefused(errors)


def check_field_access(access: str | None) -> None:
    if access is not None and access not in FIELD_ACCESS:
        raise EditRefused({"access": f"expected one of {', '.join(FIELD_ACCESS)}, or nothing for visible and editable"})


def check_unit(name_en: str, kind: str) -> None:
    errors = {}
    if not name_en.strip():
        errors["name"] = "give the unit a name"
    elif len(name_en) > 90:
        errors["name"] = "at most 90 characters"
    if kind not in UNIT_KINDS:
        errors["kind"] = f"expected one of {', '.join(UNIT_KINDS)}"
    if errors:
        raise EditRefused(errors)


def new_unit_key(name_en: str, taken: Collection[str]) -> str:
    """A key from the English name, not taken and not of the adopted form unit_<id>."""
    base = slug(name_en, 24) or "unit"
    if base == "unit":  # unit_2, unit_3, ... are all of the adopted form: the search would never end
        base = "org_unit"
    candidate, n = base, 2
    while candidate in taken or (candidate.startswith("unit_") and candidate[5:].isdigit()):
        candidate = f"{base}_{n}"
        n += 1
    return candidate


# -- roles.yaml -----------------------------------------------------------------------------------

def _layer_doc(files: Mapping[str, str], path: str, lists: Mapping[str, Any]) -> Any:
    """The layer's YAML file `path` as a mapping, each of `lists` present (made with its factory)."""
    doc = load(files.get(path, ""))
    if not isinstance(doc, CommentedMap):
        doc = CommentedMap()
    for key, make in lists.items():
        if not isinstance(doc.get(key), list):
            doc[key] = make()
    return doc


def _roles_doc(files: Mapping[str, str]) -> Any:
    return _layer_doc(files, ROLES_FILE, {"roles": CommentedSeq})


def layer_role(files: Mapping[str, str], name: str) -> Any | None:
    """The layer's entry for role `name`, or None."""
    return next((r for r in _roles_doc(files)["roles"] if isinstance(r, Mapping) and r.get("name") == name), None)


def put_role(files: Mapping[str, str], role: RoleSpec, replaces: bool) -> dict[str, str]:
    """Write `role` whole into the layer's roles.yaml (replacing the layer's entry of that name)."""
    doc = _roles_doc(files)
    item = block({"name": role.name, **({"replaces": True} if replaces else {}), "label": label(role.label_en, role.label_zh or role.label_en)})
    if role.includes:
        item["includes"] = flow_list(role.includes)
    permissions = role.permissions()
    if permissions:
        item["permissions"] = CommentedSeq([flow({**p, "actions": flow_list(p["actions"])}) for p in permissions])
    if role.fields:
        item["fields"] = CommentedSeq([flow({"entity": e, "field": f, "access": a}) for e, f, a in role.fields])
    roles = doc["roles"]
    index = next((i for i, r in enumerate(roles) if isinstance(r, Mapping) and r.get("name") == role.name), None)
    if index is None:
        roles.append(item)
    else:
        roles[index] = item
    return _write(files, ROLES_FILE, doc, "roles", ROLES_HEADER)


# -- org.yaml -------------------------------------------------------------------------------------

def _org_doc(files: Mapping[str, str]) -> Any:
    return _layer_doc(files, ORG_FILE, {"units": CommentedSeq, "users": lambda: flow_list([])})


def layer_unit_keys(files: Mapping[str, str]) -> list[str]:
    return [u["key"] for u in _org_doc(files)["units"] if isinstance(u, Mapping) and "key" in u]


def put_units(files: Mapping[str, str], units: list[UnitSpec]) -> dict[str, str]:
    """Write each unit whole into the layer's org.yaml (replacing the layer's entry of its key,
    new ones at the end: the loader orders parents first)."""
    doc = _org_doc(files)
    listed = doc["units"]
    for unit in units:
        item = flow({"key": unit.key, "kind": unit.kind, **({"parent": unit.parent} if unit.parent else {}),
                     "name": label(unit.name_en, unit.name_zh or unit.name_en), **({"archived": True} if unit.archived else {})})
        index = next((i for i, u in enumerate(listed) if isinstance(u, Mapping) and u.get("key") == unit.key), None)
        if index is None:
            listed.append(item)
        else:
            listed[index] = item
    return _write(files, ORG_FILE, doc, "units", ORG_HEADER)


def _write(files: Mapping[str, str], path: str, doc: Any, key: str, header: str) -> dict[str, str]:
    new = dict(files)
    if not doc[key]:
        new.pop(path, None)
        return new
    text = dump(doc)
    new[path] = text if text.startswith("#") else header + text
    return new
