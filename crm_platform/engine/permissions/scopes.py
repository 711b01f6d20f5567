"""Scopes as SQL: which rows of an entity table a user may see or change, as a WHERE condition.

own             the user's records, their direct and indirect reports' records, and records
                shared with them or their unit
unit            the above, and every record of the user's org unit
unit_and_below  the above, and every record of a unit below the user's unit (materialized path)
all             every record
Entities that are not owned have no owner or unit: any granted scope means all of them.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from crm_platform.engine.records.actor import Actor
from crm_platform.metadata.model import Entity


def subordinates(users: sa.Table, manager_id: int) -> sa.Select[Any]:
    """Ids of the users who report to `manager_id`, directly or not (recursive CTE)."""
    direct = sa.select(users.c.id.label("id")).where(users.c.manager_id == manager_id).cte("subordinates", recursive=True)
    below = sa.select(users.c.id).join(direct, users.c.manager_id == direct.c.id)
    tree = direct.union(below)
    return sa.select(tree.c.id)


def shared_ids(shares: sa.Table, entity: str, actor: Actor, access: str | None = None) -> sa.Select[Any]:
    who = shares.c.user_id == actor.user_id
    if actor.unit_id is not None:
        who = sa.or_(who, shares.c.unit_id == actor.unit_id)
    query = sa.select(shares.c.record_id).where(shares.c.entity == entity, who)
    if access == "edit":
        query = query.where(shares.c.access == "edit")
    return query


def scope_clause(system: dict[str, sa.Table], entity: Entity, table: sa.Table, actor: Actor, scope: str, for_edit: bool = False) -> sa.ColumnElement[bool]:
    if scope == "all" or not entity.owned:
        return sa.true()
    users, units, shares = system["crm_user"], system["crm_org_unit"], system["crm_share"]
    me = actor.user_id
    conditions: list[sa.ColumnElement[bool]] = [
        table.c.owner_id == me,
        table.c.owner_id.in_(subordinates(users, me or 0)),
        table.c.id.in_(shared_ids(shares, entity.name, actor, "edit" if for_edit else None)),
    ]
    if scope in ("unit", "unit_and_below") and actor.unit_id is not None:
        conditions.append(table.c.unit_id == actor.unit_id)
    if scope == "unit_and_below" and actor.unit_id is not None:
        my_path = sa.select(units.c.path).where(units.c.id == actor.unit_id).scalar_subquery()
        below = sa.select(units.c.id).where(units.c.path.like(my_path + "%"))
        conditions.append(table.c.unit_id.in_(below))
    return sa.or_(*conditions)
