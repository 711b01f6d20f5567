"""Loading a pack's demo org chart (org.yaml): units with their paths, users with managers and
roles. Idempotent: units already loaded (by key) and users that exist (by username) are kept."""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa

from crm_platform.engine.permissions.admin import bump_version, create_unit
from crm_platform.engine.permissions.policy_store import user_subject

if TYPE_CHECKING:
    from crm_platform.engine.site import Site

UNIT_KEYS = "crm_org_unit"


def load_org_chart(site: Site) -> tuple[int, int]:
    chart = site.registry.extra.get("org")
    if chart is None or not chart.units:
        return 0, 0
    system = site.schema.system
    keys, policies = system["crm_seed_record"], system["crm_policy"]
    created_units = created_users = 0
    unit_ids: dict[str, int] = {}
    with site.engine.begin() as conn:
        for row in conn.execute(sa.select(keys).where(keys.c.entity == UNIT_KEYS)):
            unit_ids[row.key] = row.record_id
        for unit in chart.units:
            if unit.key in unit_ids:
                continue
            parent = unit_ids.get(unit.parent) if unit.parent else None
            unit_id = create_unit(conn, system["crm_org_unit"], f"{unit.name.zh_cn} {unit.name.en}", unit.kind, parent)
            conn.execute(keys.insert().values(entity=UNIT_KEYS, key=unit.key, pack=chart.pack, kind="demo", record_id=unit_id))
            unit_ids[unit.key] = unit_id
            created_units += 1
    user_ids: dict[str, int] = {}
    for user in chart.users:
        existing = site.users.find(user.username)
        if existing is not None:
            user_ids[user.username] = existing["id"]
            continue
        user_ids[user.username] = site.users.create_user(
            user.username, chart.password, user.name, user.email, language=user.language,
            unit_id=unit_ids.get(user.unit), manager_id=user_ids.get(user.manager) if user.manager else None,
        )
        created_users += 1
        with site.engine.begin() as conn:
            for role in user.roles:
                conn.execute(policies.insert().values(ptype="g", v0=user_subject(user_ids[user.username]), v1=role))
            bump_version(conn, system["crm_setting"])
    return created_units, created_users
