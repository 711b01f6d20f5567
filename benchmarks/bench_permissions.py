"""Permissions cost: a scoped list page against the same query without scope, and the Casbin
decisions per second (plain Enforcer with many policies vs the platform's per-user cache)."""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import casbin

from crm_platform.config import Settings
from crm_platform.engine.column_types import utcnow
from crm_platform.engine.permissions.policy_store import MODEL_PATH
from crm_platform.engine.records.actor import Actor
from crm_platform.engine.records.list_query import ListQuery
from crm_platform.engine.site import Site
from crm_platform.metadata.loader import load_registry
from crm_platform.metadata.model import SortKey

REPO = Path(__file__).resolve().parent.parent


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def line(name: str, samples: list[float], baseline: list[float] | None = None) -> str:
    median = statistics.median(samples)
    p95 = statistics.quantiles(samples, n=20)[-1]
    text = f"{name:44} median {median:8.3f} ms   p95 {p95:8.3f} ms"
    if baseline:
        text += f"   ratio {median / statistics.median(baseline):5.2f}x"
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    registry = load_registry(["testkit"], [REPO / "tests" / "fixtures" / "packs"])
    site = Site.open(Settings(args.database_url or f"sqlite:///{tmp / 'bench.sqlite3'}", ("testkit",), tmp, "bench"), registry)
    site.sync(applied_by="bench")
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
        for i in range(args.rows):
            owner = reps[i % len(reps)]
            batch.append({"name": f"Company {i:07d}", "kind": ("customer", "dealer", "public_body")[i % 3], "revenue": i % 100000,
                          "owner_id": owner, "unit_id": unit_of[owner], "created_at": now, "updated_at": now, "version": 1})
            if len(batch) == 5000:
                conn.execute(table.insert(), batch)
                batch = []
        if batch:
            conn.execute(table.insert(), batch)
    actor = site.users.actor(manager)
    assert actor is not None
    query = ListQuery(sort=(SortKey("revenue", True),), page_size=50)
    scoped = timed(lambda: site.records.list(actor, "company", query), 30)
    unscoped = timed(lambda: site.records.list(Actor.system(), "company", query), 30)
    visible = site.records.list(actor, "company", query).total
    print(f"database: {site.engine.dialect.name}; {args.rows} companies; a department manager sees {visible}")
    print(line("list page, unscoped (baseline)", unscoped))
    print(line("list page, scoped to unit and below", scoped, unscoped))

    enforcer = casbin.Enforcer(str(MODEL_PATH))
    for i in range(1000):
        enforcer.add_policy(f"role{i}", f"entity{i % 50}", "read", "own", "bench")
    enforcer.add_grouping_policy("user:1", "role999")
    calls = 2000
    start = time.perf_counter()
    for _ in range(calls):
        enforcer.enforce("user:1", "entity49", "read")
    plain = calls / (time.perf_counter() - start)
    entity = registry.entity("company")
    start = time.perf_counter()
    for _ in range(calls):
        site.access.scope(actor, entity, "read")
    cached = calls / (time.perf_counter() - start)
    print(f"{'Casbin enforce(), 1,000 policies':44} {plain:12,.0f} decisions/s")
    print(f"{'platform scope lookup (cached per user)':44} {cached:12,.0f} decisions/s   ratio {cached / plain:6.1f}x")
    site.dispose()


if __name__ == "__main__":
    main()
