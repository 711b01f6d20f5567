"""Import from CSV / Excel: rows per second of a whole import (read the file, convert, every row
through the record service in one transaction) against a bare executemany of the very same rows.

A file of N companies (test kit pack: text, integer, picklist by label, date, email, money,
percent) is generated, read and imported into a fresh database (mode "all or nothing", no
key); optionally the dry run is timed too. The imported rows are then read back as stored and
inserted again, in one transaction, into a second fresh database with SQLAlchemy Core's
executemany (`conn.execute(table.insert(), list_of_dicts)`): the baseline.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # as a script: the repo root

import sqlalchemy as sa  # noqa: E402

from benchmarks.measure import Measurement, open_site  # noqa: E402
from crm_platform.engine.imports import Importer, ImportSettings, read_table, suggest_mapping  # noqa: E402
from crm_platform.engine.records.actor import Actor  # noqa: E402
from crm_platform.engine.site import Site  # noqa: E402

KINDS = ("Customer", "经销商", "public_body")
HEADER = ["Name", "Employees", "Kind", "Founded", "Email", "Revenue", "Discount"]


def rows(count: int, first: int = 0) -> list[list[str]]:
    return [[f"Firm {i:07d}", str(i % 900), KINDS[i % 3], f"20{10 + i % 15}-{1 + i % 12:02d}-{1 + i % 28:02d}",
             f"firm{i}@example.com", f"{i % 10000},{i % 1000:03d}.50", f"{i % 50}%"] for i in range(first, first + count)]


def import_once(site: Site, actor: Actor, payload: bytes, filename: str) -> tuple[float, float, int]:
    """Read `payload` and import it all or nothing: (seconds reading, seconds importing, rows created)."""
    start = time.perf_counter()
    table = read_table(payload, filename)
    read_seconds = time.perf_counter() - start
    mapping = suggest_mapping(site, actor, site.registry.entity("company"), table.headers)
    start = time.perf_counter()
    result = Importer(site, actor, "company", table, ImportSettings(mapping, None, "all")).run()
    if not result.written:
        raise RuntimeError(f"the import wrote nothing: {result.errors[:5]}")
    return read_seconds, time.perf_counter() - start, result.created


def core_copy(site: Site, baseline: Site, after_id: int) -> tuple[float, int]:
    """Insert the companies `site` stored after id `after_id`, as stored, into `baseline` with one
    Core executemany in one transaction: (seconds, the highest id copied)."""
    company = site.schema.tables["company"]
    with site.engine.connect() as conn:
        stored = [dict(r) for r in conn.execute(sa.select(company).where(company.c.id > after_id).order_by(company.c.id)).mappings()]
    target = baseline.schema.tables["company"]
    start = time.perf_counter()
    with baseline.engine.begin() as conn:
        conn.execute(target.insert(), stored)
    return time.perf_counter() - start, max((r["id"] for r in stored), default=after_id)


def admin_actor(site: Site) -> Actor:
    actor = site.users.actor(site.users.create_user("bench", "bench-password", "Bench", is_admin=True))
    assert actor is not None
    return actor


def import_rounds(site: Site, baseline: Site, rows_per_file: int, rounds: int) -> Measurement:
    """`rounds` imports of a CSV file of `rows_per_file` new companies (read + write) against the
    same rows, as stored, written by one Core executemany into `baseline` (another fresh site)."""
    actor = admin_actor(site)
    baseline.users.create_user("bench", "bench-password", "Bench", is_admin=True)  # the same owner id
    samples, base, copied = [], [], 0
    for n in range(rounds):
        read_seconds, import_seconds, created = import_once(site, actor, as_csv(rows(rows_per_file, n * rows_per_file)),
                                                           "companies.csv")
        if created != rows_per_file:
            raise RuntimeError(f"the import created {created} of {rows_per_file} rows")
        seconds, copied = core_copy(site, baseline, copied)
        samples.append((read_seconds + import_seconds) * 1000)
        base.append(seconds * 1000)
    return Measurement("import (CSV read + write)", samples, base, "Core executemany", f"a file of {rows_per_file} rows")


def as_csv(data: list[list[str]]) -> bytes:
    import csv

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(HEADER)
    writer.writerows(data)
    return buffer.getvalue().encode("utf-8")


def as_xlsx(data: list[list[str]]) -> bytes:
    import openpyxl

    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("Companies")
    sheet.append(HEADER)
    for row in data:
        sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000, help="rows in the file (default 100,000)")
    parser.add_argument("--format", choices=("csv", "xlsx"), default="csv")
    parser.add_argument("--dry-run", action="store_true", help="also time a dry run of the whole file")
    parser.add_argument("--database-url", help="the import's database (default a temporary SQLite file)")
    parser.add_argument("--baseline-url", help="the baseline's database (required with --database-url)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp())
    site = open_site(args.database_url or f"sqlite:///{tmp / 'import.sqlite3'}", var_dir=tmp / "a")
    baseline = open_site(args.baseline_url or f"sqlite:///{tmp / 'baseline.sqlite3'}", var_dir=tmp / "b")
    actor = admin_actor(site)
    baseline.users.create_user("bench", "bench-password", "Bench", is_admin=True)  # the same owner id
    data = rows(args.rows)
    payload = as_csv(data) if args.format == "csv" else as_xlsx(data)
    print(f"database: {site.engine.dialect.name}, {args.rows:,} rows, {args.format} file of {len(payload) / 1e6:.1f} MB")
    if args.dry_run:
        table = read_table(payload, f"companies.{args.format}")
        mapping = suggest_mapping(site, actor, site.registry.entity("company"), table.headers)
        start = time.perf_counter()
        dry = Importer(site, actor, "company", table, ImportSettings(mapping, None, "all")).run(dry_run=True)
        seconds = time.perf_counter() - start
        print(f"{'dry run (rolled back)':34} {seconds:8.2f} s   {args.rows / seconds:10,.0f} rows/s   ({dry.failed} bad rows)")
    read_seconds, import_seconds, created = import_once(site, actor, payload, f"companies.{args.format}")
    assert created == args.rows, created
    print(f"{'read the file':34} {read_seconds:8.2f} s   {args.rows / read_seconds:10,.0f} rows/s")
    whole = read_seconds + import_seconds
    print(f"{'import (read + write)':34} {whole:8.2f} s   {args.rows / whole:10,.0f} rows/s")
    core, _ = core_copy(site, baseline, 0)
    print(f"{'bare Core executemany (same rows)':34} {core:8.2f} s   {args.rows / core:10,.0f} rows/s   ratio {whole / core:6.1f}x")
    site.dispose()
    baseline.dispose()


if __name__ == "__main__":
    main()
