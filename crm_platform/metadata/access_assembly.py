"""Building roles (roles.yaml) and the demo org chart (org.yaml) from pack files, checked against
the entities and each other: unknown entities, fields and roles, duplicate names, include cycles."""

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
                if name in roles:
                    problems.append(source.problem(("roles", i, "name"), f"role '{name}' is already declared at {roles[name].place}", "role.duplicate"))
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
    """The demo org chart: at most one org.yaml across the loaded packs (the last pack's wins)."""
    problems: list[Problem] = []
    chart = OrgChart()
    role_names = {r.name for r in roles}
    for pack in packs:
        for source in pack.of("org"):
            data = source.data
            units: dict[str, OrgUnitSeed] = {}
            for i, unit in enumerate(data["units"]):
                if unit["key"] in units:
                    problems.append(source.problem(("units", i, "key"), f"unit '{unit['key']}' is listed twice", "org.duplicate"))
                    continue
                parent = unit.get("parent")
                if parent is not None and parent not in units:
                    problems.append(source.problem(("units", i, "parent"), f"unit '{unit['key']}': parent '{parent}' must be listed before it{did_you_mean(parent, units)}", "org.unknown_unit"))
                    continue
                units[unit["key"]] = OrgUnitSeed(unit["key"], build_label(unit["name"], unit["key"]), unit["kind"], parent, place_of(source, ("units", i)))
            users: dict[str, UserSeed] = {}
            for i, user in enumerate(data["users"]):
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
            chart = OrgChart(tuple(units.values()), tuple(users.values()), data.get("password"), pack.pack.name)
    return chart, problems
