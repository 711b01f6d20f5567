"""Users a metadata change would strand: a version of the site layer (an admin's edit, a rollback)
that removes or archives a unit active users sit in, or removes a role active users hold, is
refused with a problem naming the unit or role and the users, before anything changes. User
accounts and their roles are data; the admin moves them first."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import sqlalchemy as sa

from crm_platform.engine.permissions.org_tree import chart_of, inactive_unit_ids, unit_keys
from crm_platform.metadata.errors import Problem
from crm_platform.metadata.model import Registry

if TYPE_CHECKING:
    from crm_platform.engine.site import Site

SHOWN = 10  # users named per problem


def stranded_users(site: Site, registry: Registry) -> list[Problem]:
    """Problems for every unit and role `registry` takes away from active users."""
    system = site.schema.system
    if not sa.inspect(site.engine).has_table("crm_org_unit"):
        return []
    users, roles, policies, units = system["crm_user"], system["crm_role"], system["crm_policy"], system["crm_org_unit"]
    problems: list[Problem] = []
    with site.engine.connect() as conn:
        keys = unit_keys(conn, system)
        newly = inactive_unit_ids(keys, chart_of(registry)) - inactive_unit_ids(keys, chart_of(site.registry))
        if newly:
            rows = conn.execute(sa.select(units.c.id, units.c.name, users.c.username).join(users, users.c.unit_id == units.c.id)
                                .where(units.c.id.in_(newly), users.c.active.is_(True)).order_by(units.c.name, users.c.username)).all()
            for unit_name, names in _grouped((r.name, r.username) for r in rows):
                problems.append(Problem("org.yaml", None, None, f"unit '{unit_name}' is removed or archived by this change, but {_who(names)} "
                                        f"still {_verb(names, 'sits', 'sit')} in it: move them to another unit first (Administration > Users)", "org.stranded_users"))
        kept = {r.name for r in registry.extra.get("roles", ())}
        declared = conn.execute(sa.select(roles.c.name).where(roles.c.source.startswith("pack:"))).scalars().all()
        removed = [name for name in declared if name not in kept]
        if removed:
            held = conn.execute(sa.select(policies.c.v0, policies.c.v1).where(policies.c.ptype == "g", policies.c.v0.startswith("user:"),
                                                                             policies.c.v1.in_(removed))).all()
            holders = [(int(r.v0[5:]), r.v1) for r in held if r.v0[5:].isdigit()]
            usernames = dict(conn.execute(sa.select(users.c.id, users.c.username).where(users.c.id.in_({u for u, _ in holders}), users.c.active.is_(True))).all())
            for role, names in _grouped(sorted((role, usernames[user_id]) for user_id, role in holders if user_id in usernames)):
                problems.append(Problem("roles.yaml", None, None, f"role '{role}' is removed by this change, but {_who(names)} still {_verb(names, 'holds', 'hold')} it: "
                                        "take the role from them first (Administration > Users)", "role.stranded_users"))
    return problems


def _grouped(pairs: Iterable[tuple[str, str]]) -> list[tuple[str, list[str]]]:
    groups: dict[str, list[str]] = {}
    for key, name in pairs:
        groups.setdefault(key, []).append(name)
    return list(groups.items())


def _who(names: list[str]) -> str:
    shown = ", ".join(names[:SHOWN]) + (f" and {len(names) - SHOWN} more" if len(names) > SHOWN else "")
    return f"the user{'s' if len(names) > 1 else ''} {shown}"


def _verb(names: list[str], one: str, many: str) -> str:
    return one if len(names) == 1 else many
