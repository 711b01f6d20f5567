"""Building roles (roles.yaml) and the org chart (org.yaml) from pack files, checked against the
entities and each other: unknown entities, fields and roles, duplicate names, include cycles, a
role replaced by a later pack, units merged by key across packs (parents, cycles, archived)."""

from __future__ import annotations

from crm_platform.metadata.access import (
    FieldAccess,
    OrgChart,
    OrgUnitSeed,
    Permission,
    Role,
    UserSeed,
)
from crm_platform.metadata.assembly import build_label, did_you_mean, place_of
from crm_platform.metadata.errors import Problem
from crm_platform.metadata.model import Entity
from crm_platform.metadata.pack_reader import PackFiles
from crm_platform.metadata.yaml_source import SourceFile


def build_roles(packs: list[PackFiles], entities: dict[str, Entity]) -> tuple[tuple[Role, ...], list[Problem]]:
    problems: list[Problem] = []
    roles: dict[str, Role] = {}
    sources: dict[str, tuple[SourceFile, int]] = {}
    for pack in packs:
        for source in pack.of("roles"):
            for i, item in enumerate(source.data["roles"]):
                name = item["name"]
                earlier = roles.get(name)
                if earlier is not None and (earlier.pack == pack.pack.name or not item.get("replaces")):
                    hint = "" if earlier.pack == pack.pack.name else "; add `replaces: true` to replace it"
                    problems.append(source.problem(("roles", i, "name"), f"role '{name}' is already declared at {earlier.place}{hint}", "role.duplicate"))
                    continue
                if earlier is None and item.get("replaces"):
                    problems.append(source.problem(("roles", i, "replaces"), f"role '{name}' replaces nothing: no earlier pack declares it; remove `replaces`{did_you_mean(name, roles)}", "role.replaces_nothing"))
                    continue
                permissions = []
                for j, perm in enumerate(item.get("permissions", [])):
                    if perm["entity"] != "*" and perm["entity"] not in entities:
                        problems.append(source.problem(("roles", i, "permissions", j, "entity"), f"role '{name}': unknown entity '{perm['entity']}'{did_you_mean(perm['entity'], entities)}", "role.unknown_entity"))
                        continue
                    permissions.append(Permission(perm["entity"], tuple(perm["actions"]), perm["scope"]))
                fields = []
                for j, fa in enumerate(item.get("fields", [])):
                    entity = entities.get(fa["entity"])
                    if entity is None or fa["field"] not in entity.field_map:
                        what = f"unknown entity '{fa['entity']}'" if entity is None else f"unknown field '{fa['field']}' on {fa['entity']}{did_you_mean(fa['field'], entity.field_map)}"
                        problems.append(source.problem(("roles", i, "fields", j), f"role '{name}': {what}", "role.unknown_field"))
                        continue
                    fields.append(FieldAccess(fa["entity"], fa["field"], fa["access"]))
                roles[name] = Role(name, build_label(item["label"], name), place_of(source, ("roles", i)), tuple(item.get("includes", [])), tuple(permissions), tuple(fields), pack.pack.name)
                sources[name] = (source, i)
    for name, role in roles.items():
        source, i = sources[name]
        for j, included in enumerate(role.includes):
            if included not in roles:
                problems.append(source.problem(("roles", i, "includes", j), f"role '{name}' includes unknown role '{included}'{did_you_mean(included, roles)}", "role.unknown_role"))
    problems.extend(_cycles(roles, sources))
    return tuple(roles.values()), problems


def _cycles(roles: dict[str, Role], sources: dict[str, tuple[SourceFile, int]]) -> list[Problem]:
    problems = []
    state: dict[str, int] = {}

    def visit(name: str, trail: list[str]) -> None:
        if state.get(name) == 2 or name not in roles:
            return
        if state.get(name) == 1:
            cycle = [*trail[trail.index(name):], name]
            source, i = sources[trail[-1]]
            problems.append(source.problem(("roles", i, "includes"), "role include cycle: " + " -> ".join(cycle), "role.cycle"))
            return
        state[name] = 1
        for included in roles[name].includes:
            visit(included, [*trail, name])
        state[name] = 2

    for name in roles:
        visit(name, [])
    return problems


def build_org(packs: list[PackFiles], roles: tuple[Role, ...]) -> tuple[OrgChart, list[Problem]]:
    """The org chart of every loaded org.yaml: units merged by key (a later pack's unit replaces
    an earlier one of the same key), ordered parents first; the demo users and their password are
    the last pack's that lists users."""
    problems: list[Problem] = []
    units: dict[str, OrgUnitSeed] = {}
    unit_sources: dict[str, tuple[SourceFile, int]] = {}
    users_source: tuple[SourceFile, str] | None = None
    password: str | None = None
    for pack in packs:
        for source in pack.of("org"):
            data = source.data
            seen: set[str] = set()
            for i, unit in enumerate(data["units"]):
                key = unit["key"]
                if key in seen:
                    problems.append(source.problem(("units", i, "key"), f"unit '{key}' is listed twice", "org.duplicate"))
                    continue
                seen.add(key)
                units[key] = OrgUnitSeed(key, build_label(unit["name"], key), unit["kind"], unit.get("parent"), place_of(source, ("units", i)),
                                         bool(unit.get("archived", False)), pack.pack.name)
                unit_sources[key] = (source, i)
            if data["users"]:
                users_source = (source, pack.pack.name)
            if data.get("password"):
                password = data["password"]
    ordered = _parents_first(units, unit_sources, problems)
    users = _demo_users(users_source, units, {r.name for r in roles}, problems) if users_source else {}
    pack_name = users_source[1] if users_source else (ordered[-1].pack if ordered else "")
    return OrgChart(tuple(ordered), tuple(users.values()), password, pack_name), problems


def _parents_first(units: dict[str, OrgUnitSeed], sources: dict[str, tuple[SourceFile, int]], problems: list[Problem]) -> list[OrgUnitSeed]:
    """The units with every parent before its children; unknown parents, cycles and active units
    below archived ones are problems at the unit that names the parent."""
    ordered: list[OrgUnitSeed] = []
    state: dict[str, int] = {}

    def visit(key: str, trail: tuple[str, ...]) -> bool:
        if state.get(key) == 2:
            return True
        unit = units[key]
        source, i = sources[key]
        if state.get(key) == 1:
            cycle = " -> ".join((*trail[trail.index(key):], key))
            problems.append(source.problem(("units", i, "parent"), f"unit '{key}' would sit below itself: {cycle}", "org.cycle"))
            return False
        state[key] = 1
        parent = unit.parent
        if parent is not None:
            if parent not in units:
                problems.append(source.problem(("units", i, "parent"), f"unit '{key}': unknown parent '{parent}'{did_you_mean(parent, units)}", "org.unknown_unit"))
                state[key] = 2
                return False
            if not visit(parent, (*trail, key)):
                state[key] = 2
                return False
            if units[parent].archived and not unit.archived:
                problems.append(source.problem(("units", i, "parent"), f"unit '{key}' sits below the archived unit '{parent}': archive it too or move it first", "org.archived_parent"))
        state[key] = 2
        ordered.append(unit)
        return True

    for key in units:
        visit(key, ())
    return ordered


def _demo_users(found: tuple[SourceFile, str], units: dict[str, OrgUnitSeed], role_names: set[str], problems: list[Problem]) -> dict[str, UserSeed]:
    source = found[0]
    users: dict[str, UserSeed] = {}
    for i, user in enumerate(source.data["users"]):
        path = ("users", i)
        if user["unit"] not in units:
            problems.append(source.problem((*path, "unit"), f"user '{user['username']}': unknown unit '{user['unit']}'{did_you_mean(user['unit'], units)}", "org.unknown_unit"))
        for j, role in enumerate(user["roles"]):
            if role not in role_names:
                problems.append(source.problem((*path, "roles", j), f"user '{user['username']}': unknown role '{role}'{did_you_mean(role, role_names)}", "org.unknown_role"))
        manager = user.get("manager")
        if manager is not None and manager not in users:
            problems.append(source.problem((*path, "manager"), f"user '{user['username']}': manager '{manager}' must be listed before them", "org.unknown_manager"))
        users[user["username"]] = UserSeed(user["username"], user["name"], user["unit"], tuple(user["roles"]), place_of(source, path), manager, user.get("email"), user.get("language", "en"))
    return users
