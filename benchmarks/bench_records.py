"""Record service overhead: create and list through the service against bare SQLAlchemy Core."""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa

from crm_platform.config import Settings
from crm_platform.engine.column_types import utcnow
from crm_platform.engine.records.actor import Actor
from crm_platform.engine.records.list_query import parse_list_params
from crm_platform.engine.site import Site
from crm_platform.metadata.loader import load_registry

REPO = Path(__file__).resolve().parent.parent


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def summary(name: str, samples: list[float], baseline: list[float]) -> str:
    median, base = statistics.median(samples), statistics.median(baseline)
    p95 = statistics.quantiles(samples, n=20)[-1]
    return f"{name:38} median {median:8.3f} ms   p95 {p95:8.3f} ms   baseline median {base:8.3f} ms   ratio {median / base:5.2f}x"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    url = args.database_url or f"sqlite:///{tmp / 'bench.sqlite3'}"
    registry = load_registry(["testkit"], [REPO / "tests" / "fixtures" / "packs"])
    site = Site.open(Settings(url, ("testkit",), tmp, "bench"), registry)
    site.sync(applied_by="bench")
    actor = Actor.system()
    table = site.schema.tables["company"]
    kinds = ["customer", "dealer", "public_body"]
    with site.engine.begin() as conn:
        now = utcnow()
        conn.execute(table.insert(), [
            {"name": f"Company {i:07d}", "kind": kinds[i % 3], "revenue": i * 10, "employees": i % 500,
             "created_at": now, "updated_at": now, "version": 1}
            for i in range(args.rows)
        ])
    counter = iter(range(10**9))

    def service_create() -> None:
        site.records.create(actor, "company", {"name": f"Bench {next(counter)}", "kind": "dealer", "revenue": "1000.50"})

    def bare_insert() -> None:
        with site.engine.begin() as conn:
            now = utcnow()
            conn.execute(table.insert().values(name=f"Bare {next(counter)}", kind="dealer", revenue=1000, created_at=now, updated_at=now, version=1))

    entity = registry.entity("company")
    query = parse_list_params(entity, [("kind", "dealer"), ("sort", "-revenue"), ("page_size", "50")])

    def service_list() -> None:
        site.records.list(actor, "company", query)

    def bare_list() -> None:
        where = (table.c.kind == "dealer") & table.c.deleted_at.is_(None)
        with site.engine.connect() as conn:
            conn.execute(sa.select(sa.func.count()).select_from(table).where(where)).scalar_one()
            conn.execute(sa.select(table).where(where).order_by(table.c.revenue.desc(), table.c.id.desc()).limit(50)).all()

    print(f"database: {site.engine.dialect.name}, {args.rows} rows")
    create, create_base = timed(service_create, 200), timed(bare_insert, 200)
    listed, listed_base = timed(service_list, 100), timed(bare_list, 100)
    print(summary("create (service vs bare insert)", create, create_base))
    print(summary("list page (service vs bare select)", listed, listed_base))
    site.dispose()


if __name__ == "__main__":
    main()
