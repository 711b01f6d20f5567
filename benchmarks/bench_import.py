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
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

from crm_platform.config import Settings
from crm_platform.engine.imports import Importer, ImportSettings, read_table, suggest_mapping
from crm_platform.engine.site import Site
from crm_platform.metadata.loader import load_registry

REPO = Path(__file__).resolve().parent.parent
KINDS = ("Customer", "经销商", "public_body")
HEADER = ["Name", "Employees", "Kind", "Founded", "Email", "Revenue", "Discount"]


def fresh_site(url: str, var: Path) -> Site:
    registry = load_registry(["testkit"], [REPO / "tests" / "fixtures" / "packs"])
    site = Site.open(Settings(url, ("testkit",), var, "bench"), registry)
    site.sync(applied_by="bench")
    return site


def rows(count: int) -> list[list[str]]:
    return [[f"Firm {i:07d}", str(i % 900), KINDS[i % 3], f"20{10 + i % 15}-{1 + i % 12:02d}-{1 + i % 28:02d}",
             f"firm{i}@example.com", f"{i % 10000},{i % 1000:03d}.50", f"{i % 50}%"] for i in range(count)]


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
    site = fresh_site(args.database_url or f"sqlite:///{tmp / 'import.sqlite3'}", tmp / "a")
    baseline = fresh_site(args.baseline_url or f"sqlite:///{tmp / 'baseline.sqlite3'}", tmp / "b")
    actor = site.users.actor(site.users.create_user("bench", "bench-password", "Bench", is_admin=True))
    baseline.users.create_user("bench", "bench-password", "Bench", is_admin=True)  # the same owner id
    assert actor is not None
    data = rows(args.rows)
    payload = as_csv(data) if args.format == "csv" else as_xlsx(data)
    print(f"database: {site.engine.dialect.name}, {args.rows:,} rows, {args.format} file of {len(payload) / 1e6:.1f} MB")

    start = time.perf_counter()
    table = read_table(payload, f"companies.{args.format}")
    read_seconds = time.perf_counter() - start
    print(f"{'read the file':34} {read_seconds:8.2f} s   {args.rows / read_seconds:10,.0f} rows/s")
    mapping = suggest_mapping(site, actor, site.registry.entity("company"), table.headers)
    importer = Importer(site, actor, "company", table, ImportSettings(mapping, None, "all"))
    if args.dry_run:
        start = time.perf_counter()
        dry = importer.run(dry_run=True)
        seconds = time.perf_counter() - start
        print(f"{'dry run (rolled back)':34} {seconds:8.2f} s   {args.rows / seconds:10,.0f} rows/s   ({dry.failed} bad rows)")
    start = time.perf_counter()
    result = importer.run()
    import_seconds = time.perf_counter() - start
    assert result.written and result.created == args.rows, result.errors[:5]
    whole = read_seconds + import_seconds
    print(f"{'import (read + write)':34} {whole:8.2f} s   {args.rows / whole:10,.0f} rows/s")

    company = site.schema.tables["company"]
    with site.engine.connect() as conn:
        stored = [dict(r) for r in conn.execute(sa.select(company).order_by(company.c.id)).mappings()]
    target = baseline.schema.tables["company"]
    start = time.perf_counter()
    with baseline.engine.begin() as conn:
        conn.execute(target.insert(), stored)
    core = time.perf_counter() - start
    print(f"{'bare Core executemany (same rows)':34} {core:8.2f} s   {args.rows / core:10,.0f} rows/s   ratio {whole / core:6.1f}x")
    site.dispose()
    baseline.dispose()


if __name__ == "__main__":
    main()
