"""Funnel and pipeline reports over many opportunities: through the report engine against the bare
SQL GROUP BY behind them.

Builds a crm_standard site (temporary SQLite file by default), bulk-inserts --rows opportunities
(default 1,000,000) over 200 accounts and 8 owners in 3 units (plain executemany in batches),
then times, as an administrator and as a sales manager who sees one unit:

  funnel      count by stage
  pipeline    sum(amount) by stage of the open ones
  by owner    sum(amount) by owner of the open ones
  forecast    sum(weighted_amount) by expected_close month of the open ones

each through `Reports(site).run` (spec check, permission scope, SQL, labels) and as the bare
SQLAlchemy Core statement, printing medians, p95 and the ratio.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # as a script: the repo root

import sqlalchemy as sa  # noqa: E402

from benchmarks.measure import STANDARD, Measurement, open_site, timed  # noqa: E402
from crm_platform.engine.column_types import utcnow  # noqa: E402
from crm_platform.engine.records.actor import Actor  # noqa: E402
from crm_platform.engine.reports import Measure, Reports, ReportSpec  # noqa: E402
from crm_platform.engine.site import Site  # noqa: E402

STAGES = [("prospecting", 0.10, 30), ("qualification", 0.20, 22), ("needs_analysis", 0.40, 15), ("proposal", 0.60, 12),
          ("negotiation", 0.80, 8), ("won", 1.0, 8), ("lost", 0.0, 5)]


def build(url: str, rows: int, *, quiet: bool = False, var_dir: Path | None = None) -> tuple[Site, Actor]:
    """A crm_standard site on `url` with `rows` opportunities; returns it and the one-unit manager."""
    site = open_site(url, STANDARD, var_dir)
    units = [site.permissions.create_unit(f"Region {i}", "department") for i in range(3)]
    owners = []
    for i in range(8):
        user = site.users.create_user(f"rep{i}", None, unit_id=units[i % 3])
        site.permissions.assign_role(user, "sales_rep")
        owners.append((user, units[i % 3]))
    manager = site.users.create_user("manager", None, unit_id=units[0])
    site.permissions.assign_role(manager, "sales_manager")
    accounts = site.schema.tables["account"]
    table = site.schema.tables["opportunity"]
    now = utcnow()
    with site.engine.begin() as conn:
        conn.execute(accounts.insert(), [{"name": f"Account {i}", "customer_type": "end_customer", "owner_id": owners[i % 8][0], "unit_id": owners[i % 8][1],
                                          "version": 1, "created_at": now, "updated_at": now} for i in range(200)])
        account_ids = [r[0] for r in conn.execute(sa.select(accounts.c.id))]
    rng = random.Random(7)
    weights = [w for _, _, w in STAGES]
    batch: list[dict[str, Any]] = []
    start = time.perf_counter()
    for i in range(rows):
        stage, probability, _ = rng.choices(STAGES, weights)[0]
        amount = rng.randrange(5_000, 2_000_000)
        owner, unit = owners[rng.randrange(8)]
        batch.append({"code": f"SJ-{i:07d}", "name": f"Deal {i}", "account": account_ids[rng.randrange(200)], "stage": stage,
                      "probability": probability * 100, "amount": amount, "amount_currency": "CNY", "weighted_amount": round(amount * probability, 2),
                      "expected_close": dt.date(2026, 1, 1) + dt.timedelta(days=rng.randrange(730)), "owner_id": owner, "unit_id": unit,
                      "version": 1, "created_at": now, "updated_at": now})
        if len(batch) == 20_000:
            with site.engine.begin() as conn:
                conn.execute(table.insert(), batch)
            batch.clear()
    if batch:
        with site.engine.begin() as conn:
            conn.execute(table.insert(), batch)
    if site.engine.dialect.name == "postgresql":
        with site.engine.begin() as conn:
            conn.exec_driver_sql(f"ANALYZE {table.name}")
    if not quiet:
        print(f"inserted {rows:,} opportunities in {time.perf_counter() - start:.0f} s")
    manager_actor = site.users.actor(manager)
    assert manager_actor is not None
    return site, manager_actor


ReportCase = tuple[str, ReportSpec, sa.Select[Any]]


def report_cases(site: Site) -> list[ReportCase]:
    """(name, the report, the bare GROUP BY behind it): funnel, pipeline, by owner, forecast."""
    table = site.schema.tables["opportunity"]
    alive, open_ = table.c.deleted_at.is_(None), table.c.stage.not_in(["won", "lost"])
    month = (sa.func.strftime("%Y-%m", table.c.expected_close) if site.engine.dialect.name == "sqlite"
             else sa.func.to_char(table.c.expected_close, "YYYY-MM"))
    still_open = ('stage not in ["won", "lost"]',)
    return [
        ("funnel", ReportSpec("opportunity", ("stage",), (Measure("count"),)),
         sa.select(table.c.stage, sa.func.count()).where(alive).group_by(table.c.stage)),
        ("pipeline", ReportSpec("opportunity", ("stage",), (Measure("sum", "amount"),), expressions=still_open),
         sa.select(table.c.stage, sa.func.sum(table.c.amount)).where(alive, open_).group_by(table.c.stage)),
        ("by owner", ReportSpec("opportunity", ("owner_id",), (Measure("sum", "amount"),), expressions=still_open),
         sa.select(table.c.owner_id, sa.func.sum(table.c.amount)).where(alive, open_).group_by(table.c.owner_id)),
        ("forecast", ReportSpec("opportunity", ("expected_close:month",), (Measure("sum", "weighted_amount"),),
                                expressions=still_open),
         sa.select(month, sa.func.sum(table.c.weighted_amount)).where(alive, open_).group_by(month)),
    ]


def report(site: Site, actor: Actor, case: ReportCase, repeat: int, viewer: str = "admin") -> Measurement:
    """One report through `Reports(site).run` (spec check, scope, SQL, labels) against its bare GROUP BY."""
    name, spec, bare = case
    reports = Reports(site)
    with site.engine.connect() as conn:
        baseline = timed(lambda: conn.execute(bare).all(), repeat)
    return Measurement(f"report {name} ({viewer})", timed(lambda: reports.run(actor, spec), repeat), baseline,
                       "bare GROUP BY")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp())
    url = args.database_url or f"sqlite:///{folder / 'bench.sqlite3'}"
    try:
        site, manager = build(url, args.rows, var_dir=folder / "var")
        print()
        for case in report_cases(site):
            for viewer, actor in (("admin", Actor.system()), ("manager", manager)):
                print(report(site, actor, case, args.repeat, viewer).line())
        site.dispose()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
