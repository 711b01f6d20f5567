"""Generated demo data (`demo load --size N`): rows per second of the generator against a bare
executemany of the very same rows into a fresh database of the same schema.

The generator's run is timed whole (profile checks, generating, rules, writing, the roll-up
pass). Its rows are captured as they are written, then inserted again, batch by batch (one
transaction each, as the generator does), into a second database: once with SQLAlchemy Core
(`conn.execute(table.insert(), list_of_dicts)`) and once with the DB-API cursor's executemany
of ready tuples (SQLite only). Both databases have the packs' indexes and search triggers.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # as a script: the repo root

import sqlalchemy as sa  # noqa: E402

from benchmarks.measure import STANDARD, open_site  # noqa: E402
from crm_platform.engine.demo_data import generate, writer  # noqa: E402
from crm_platform.engine.permissions.org_loader import load_org_chart  # noqa: E402
from crm_platform.engine.records.actor import Actor  # noqa: E402
from crm_platform.engine.seeding import load_records  # noqa: E402
from crm_platform.engine.site import Site  # noqa: E402

Batch = list[tuple[sa.Table, list[dict[str, Any]]]]


def fresh_site(url: str, var: Path) -> Site:
    site = open_site(url, STANDARD, var)
    load_records(site, ("seed",), Actor.system())
    load_org_chart(site)
    return site


def capture() -> list[Batch]:
    """Record every executemany the generator's writer makes, grouped by transaction."""
    batches: list[Batch] = []
    original_write, original_insert = writer.Writer.write, writer.Writer.insert

    def write(self: writer.Writer, conn: sa.Connection, batch: writer.Batch) -> int:
        batches.append([])
        return original_write(self, conn, batch)

    def insert(self: writer.Writer, conn: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
        batches[-1].append((table, rows))  # the dicts as written (the generator does not change them later)
        original_insert(self, conn, table, rows)

    writer.Writer.write, writer.Writer.insert = write, insert  # type: ignore[method-assign]
    return batches


def bare_core(site: Site, batches: list[Batch]) -> float:
    start = time.perf_counter()
    for batch in batches:
        with site.engine.begin() as conn:
            for table, rows in batch:
                columns = [c.name for c in table.columns if not c.primary_key or c.name in rows[0]]
                conn.execute(site.schema.metadata.tables[table.name].insert(), [{c: r.get(c) for c in columns} for r in rows])
    return time.perf_counter() - start


def bare_dbapi(site: Site, batches: list[Batch]) -> float:
    prepared = []
    dialect = site.engine.dialect
    for batch in batches:
        statements = []
        for table, rows in batch:
            columns = [c for c in table.columns if not c.primary_key or c.name in rows[0]]
            processors = [c.type.dialect_impl(dialect).bind_processor(dialect) for c in columns]
            sql = f'INSERT INTO "{table.name}" ({", ".join(c.name for c in columns)}) VALUES ({", ".join("?" * len(columns))})'
            data = [tuple(p(r.get(c.name)) if p else r.get(c.name) for c, p in zip(columns, processors, strict=True)) for r in rows]
            statements.append((sql, data))
        prepared.append(statements)
    start = time.perf_counter()
    for statements in prepared:
        with site.engine.begin() as conn:
            cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            for sql, data in statements:
                cursor.executemany(sql, data)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=10000, help="accounts to generate (default 10,000)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--database-url", help="the generator's database (default a temporary SQLite file); the baseline uses a second one beside it")
    parser.add_argument("--baseline-url", help="the baseline's database (required with --database-url)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    url = args.database_url or f"sqlite:///{tmp / 'generated.sqlite3'}"
    base_url = args.baseline_url or f"sqlite:///{tmp / 'baseline.sqlite3'}"
    site, baseline = fresh_site(url, tmp / "a"), fresh_site(base_url, tmp / "b")
    batches = capture()
    result = generate(site, args.size, args.seed)
    rows = sum(len(r) for batch in batches for _, r in batch)
    print(f"database: {site.engine.dialect.name}, size {args.size:,}: {result.records:,} records, {rows:,} rows in {len(batches)} transactions")
    print(f"{'demo load --size (whole run)':34} {result.seconds:8.2f} s   {rows / result.seconds:10,.0f} rows/s   {result.records / result.seconds:10,.0f} records/s")
    core = bare_core(baseline, batches)
    print(f"{'bare Core executemany':34} {core:8.2f} s   {rows / core:10,.0f} rows/s   ratio {result.seconds / core:5.2f}x")
    if baseline.engine.dialect.name == "sqlite":
        second = fresh_site(f"sqlite:///{tmp / 'baseline2.sqlite3'}", tmp / "c")
        raw = bare_dbapi(second, batches)
        print(f"{'bare DB-API executemany (tuples)':34} {raw:8.2f} s   {rows / raw:10,.0f} rows/s   ratio {result.seconds / raw:5.2f}x")
        second.dispose()
    site.dispose()
    baseline.dispose()


if __name__ == "__main__":
    main()
