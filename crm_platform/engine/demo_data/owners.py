"""Who owns generated records: the profile's owner groups resolved to active users (by role or
username), each user's org unit (a record's unit is its owner's, as the record service sets
it) and the user as rules see them (`$user`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa

from crm_platform.engine.demo_data.builder import all_plans
from crm_platform.engine.demo_data.model import DemoDataError, OwnerGroup, Profile
from crm_platform.engine.permissions.policy_store import user_subject
from crm_platform.rules import UserInfo

if TYPE_CHECKING:
    from crm_platform.engine.site import Site


def resolve_owners(site: Site, profile: Profile) -> tuple[dict[int, UserInfo], dict[int, int | None]]:
    """Fill every owner group's user ids; returns each user as rules see them and their unit.
    Raises DemoDataError naming the group when nobody is in it."""
    system = site.schema.system
    users, policies = system["crm_user"], system["crm_policy"]
    with site.engine.connect() as conn:
        people = conn.execute(sa.select(users.c.id, users.c.username, users.c.display_name, users.c.email, users.c.unit_id)
                              .where(users.c.active.is_(True)).order_by(users.c.id)).all()
        grants = conn.execute(sa.select(policies.c.v0, policies.c.v1).where(policies.c.ptype == "g")).all()
    roles: dict[str, list[str]] = {}
    for subject, role in grants:
        roles.setdefault(subject, []).append(role)
    infos, units, by_name = {}, {}, {}
    for person in people:
        held = tuple(sorted(roles.get(user_subject(person.id), ())))
        infos[person.id] = UserInfo(person.id, person.display_name, person.email, held[0] if held else None, held, person.unit_id)
        units[person.id] = person.unit_id
        by_name[person.username] = person.id
    seen: set[int] = set()
    for plan in all_plans(profile):
        group = plan.owner
        if group is None or id(group) in seen:
            continue
        seen.add(id(group))
        group.user_ids = _members(group, infos, by_name)
    return infos, units


def _members(group: OwnerGroup, infos: dict[int, UserInfo], by_name: dict[str, int]) -> tuple[int, ...]:
    where = f"{group.place.where()}: " if group.place is not None else ""
    ids: list[int] = []
    for name in group.usernames:
        if name not in by_name:
            raise DemoDataError(f"{where}owner group '{group.name}': no active user '{name}'")
        ids.append(by_name[name])
    if group.roles:
        wanted = set(group.roles)
        ids.extend(uid for uid, info in infos.items() if wanted & set(info.roles) and uid not in ids)
    if not ids:
        who = "roles " + ", ".join(group.roles) if group.roles else "users " + ", ".join(group.usernames)
        raise DemoDataError(f"{where}owner group '{group.name}': no active user holds {who}; "
                            "load the demo org chart first (`crm-platform demo setup`, or `demo load`, loads it)")
    return tuple(sorted(ids))
