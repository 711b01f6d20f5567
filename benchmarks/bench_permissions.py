"""Permissions cost: a scoped list page against the same query without scope, and the Casbin
decisions per second (plain Enforcer with many policies vs the platform's per-user cache)."""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # as a script: the repo root

import casbin  # noqa: E402

from benchmarks.measure import Measurement, open_site, timed  # noqa: E402
from crm_platform.engine.column_types import utcnow  # noqa: E402
from crm_platform.engine.permissions.policy_store import MODEL_PATH  # noqa: E402
from crm_platform.engine.records.actor import Actor  # noqa: E402
from crm_platform.engine.records.list_query import ListQuery  # noqa: E402
from crm_platform.engine.site import Site  # noqa: E402
from crm_platform.metadata.model import SortKey  # noqa: E402


def build_org(site: Site, rows: int) -> Actor:
    """An org tree (group, 4 subsidiaries, 16 departments, 64 teams), 256 reps in the teams owning
    `rows` companies, and a department manager allowed to read his unit and below: returned."""
    admin = site.permissions
    group = admin.create_unit("Group", "group")
    subsidiaries = [admin.create_unit(f"Sub {i}", "subsidiary", group) for i in range(4)]
    departments = [admin.create_unit(f"Dept {i}", "department", subsidiaries[i % 4]) for i in range(16)]
    teams = [admin.create_unit(f"Team {i}", "team", departments[i % 16]) for i in range(64)]
    admin.create_role("manager", "Manager")
    admin.grant("manager", "company", "read", "unit_and_below")
    reps = [site.users.create_user(f"rep{i}", None, unit_id=teams[i % 64]) for i in range(256)]
    unit_of = {rep: teams[i % 64] for i, rep in enumerate(reps)}
    manager = site.users.create_user("manager", None, unit_id=departments[0])
    admin.assign_role(manager, "manager")
    table = site.schema.tables["company"]
    now = utcnow()
    batch = []
    with site.engine.begin() as conn:
        for i in range(rows):
            owner = reps[i % len(reps)]
            batch.append({"name": f"Company {i:07d}", "kind": ("customer", "dealer", "public_body")[i % 3], "revenue": i % 100000,
                          "owner_id": owner, "unit_id": unit_of[owner], "created_at": now, "updated_at": now, "version": 1})
            if len(batch) == 5000:
                conn.execute(table.insert(), batch)
                batch = []
        if batch:
            conn.execute(table.insert(), batch)
    if site.engine.dialect.name == "postgresql":
        with site.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE ent_company")
    actor = site.users.actor(manager)
    assert actor is not None
    return actor


def scoped_list(site: Site, manager: Actor, repeat: int) -> Measurement:
    """A page of 50 by -revenue as the department manager (unit and below), against the same page
    unscoped (the system actor)."""
    query = ListQuery(sort=(SortKey("revenue", True),), page_size=50)
    visible = site.records.list(manager, "company", query).total
    return Measurement("list page scoped to unit and below", timed(lambda: site.records.list(manager, "company", query), repeat),
                       timed(lambda: site.records.list(Actor.system(), "company", query), repeat), "unscoped",
                       f"sees {visible}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp())
    site = open_site(args.database_url or f"sqlite:///{folder / 'bench.sqlite3'}", var_dir=folder / "var")
    actor = build_org(site, args.rows)
    result = scoped_list(site, actor, 30)
    print(f"database: {site.engine.dialect.name}; {args.rows} companies; a department manager {result.note}")
    print(result.line())

    enforcer = casbin.Enforcer(str(MODEL_PATH))
    for i in range(1000):
        enforcer.add_policy(f"role{i}", f"entity{i % 50}", "read", "own", "bench")
    enforcer.add_grouping_policy("user:1", "role999")
    calls = 2000
    start = time.perf_counter()
    for _ in range(calls):
        enforcer.enforce("user:1", "entity49", "read")
    plain = calls / (time.perf_counter() - start)
    entity = site.registry.entity("company")
    start = time.perf_counter()
    for _ in range(calls):
        site.access.scope(actor, entity, "read")
    cached = calls / (time.perf_counter() - start)
    print(f"{'Casbin enforce(), 1,000 policies':44} {plain:12,.0f} decisions/s")
    print(f"{'platform scope lookup (cached per user)':44} {cached:12,.0f} decisions/s   ratio {cached / plain:6.1f}x")
    site.dispose()


if __name__ == "__main__":
    main()
