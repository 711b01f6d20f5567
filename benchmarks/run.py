"""All benchmarks in one run, one table (issue #11).

    .venv/bin/python -m benchmarks.run [--quick] [--databases sqlite,postgresql] [--postgresql-url URL]

For each database: a list page (filter, sort, 50 rows and the total) and a full-text search
against the bare SQL behind them; a create through the REST API (in-process) against a bare
insert; a list page scoped to a manager's unit and below against the same page unscoped; the
funnel / pipeline / by-owner / forecast reports against their bare GROUP BY; an import of a
CSV file against a Core executemany of the same rows. Once: the rules evaluated compiled against
hand-written Python, and the peak memory of a `crm-platform serve` process with both packs
against a bare Python process importing the same libraries. Each row: median, p95, the baseline
measured in the same run, the ratio. The measuring code is the bench_*.py scripts'.

PostgreSQL: --postgresql-url, else CRM_BENCH_POSTGRESQL_URL, else CRM_TEST_DATABASE_URL (a server
where the user may create schemas; each site gets a schema of its own, dropped at the end).
Without one a PostgreSQL run asked for by default is skipped with a line saying so.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # as a script: the repo root

from benchmarks import (  # noqa: E402
    bench_import,
    bench_list,
    bench_memory,
    bench_permissions,
    bench_records,
    bench_reports,
)
from benchmarks.bench_rules import rules_evaluation  # noqa: E402
from benchmarks.databases import KINDS, Databases  # noqa: E402
from benchmarks.measure import TESTKIT, Measurement, open_site  # noqa: E402
from benchmarks.table import Row, render  # noqa: E402
from crm_platform.engine.records.actor import Actor  # noqa: E402
from crm_platform.engine.site import Site  # noqa: E402
from crm_platform.metadata.loader import load_registry  # noqa: E402

SEARCH = ("company name, en (2 words)", "golden ceramics")


@dataclass(frozen=True)
class Sizes:
    rows: int  # companies in the list and scoped-list sites, opportunities in the reports site
    import_rows: int  # rows in each imported file
    import_rounds: int
    repeat: int  # timed runs of each operation


FULL = Sizes(rows=200_000, import_rows=2_000, import_rounds=5, repeat=30)
QUICK = Sizes(rows=10_000, import_rows=300, import_rounds=5, repeat=20)


def progress(message: str) -> None:
    print(f"... {message}", file=sys.stderr, flush=True)


def measure_database(dbs: Databases, sizes: Sizes) -> list[Measurement]:
    """Every per-database measurement, each on fresh sites of `dbs`."""
    opened: list[Site] = []

    def site(name: str) -> Site:
        opened.append(open_site(dbs.new(name), TESTKIT, dbs.var_dir(name)))
        return opened[-1]

    results: list[Measurement] = []
    try:
        progress(f"{dbs.kind}: loading {sizes.rows:,} companies for the list page and search")
        listed = site("list")
        bench_list.load(listed, sizes.rows)
        bench_list.analyze(listed)
        results += [bench_list.list_page(listed, sizes.repeat), bench_list.search(listed, sizes.repeat, *SEARCH),
                    bench_records.api_create(listed, sizes.repeat)]
        progress(f"{dbs.kind}: an org tree owning {sizes.rows:,} companies for the scoped list")
        scoped = site("scoped")
        results.append(bench_permissions.scoped_list(scoped, bench_permissions.build_org(scoped, sizes.rows), sizes.repeat))
        progress(f"{dbs.kind}: {sizes.rows:,} opportunities for the reports")
        reports, _ = bench_reports.build(dbs.new("reports"), sizes.rows, quiet=True, var_dir=dbs.var_dir("reports"))
        opened.append(reports)
        results += [bench_reports.report(reports, Actor.system(), case, sizes.repeat)
                    for case in bench_reports.report_cases(reports)]
        progress(f"{dbs.kind}: {sizes.import_rounds} imports of {sizes.import_rows:,} rows")
        results.append(bench_import.import_rounds(site("import"), site("import_baseline"), sizes.import_rows,
                                                  sizes.import_rounds))
    finally:
        for each in opened:
            each.dispose()
    return results


def postgresql_url(given: str | None) -> str | None:
    return given or os.environ.get("CRM_BENCH_POSTGRESQL_URL") or os.environ.get("CRM_TEST_DATABASE_URL") or None


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help=f"small sizes, about a minute ({QUICK})")
    parser.add_argument("--databases", help="comma-separated, of sqlite,postgresql (default both; PostgreSQL "
                                            "skipped when no server is given)")
    parser.add_argument("--postgresql-url", help="a PostgreSQL server (default CRM_BENCH_POSTGRESQL_URL, then CRM_TEST_DATABASE_URL)")
    parser.add_argument("--rows", type=int, help="rows behind the list pages and reports")
    parser.add_argument("--import-rows", type=int, help="rows in each imported file")
    parser.add_argument("--repeat", type=int, help="timed runs of each operation")
    parser.add_argument("--no-memory", action="store_true", help="leave out the server memory row")
    args = parser.parse_args(argv)
    wanted = [d.strip() for d in (args.databases or ",".join(KINDS)).split(",") if d.strip()]
    unknown = [d for d in wanted if d not in KINDS]
    if unknown or not wanted:
        parser.error(f"--databases: unknown {', '.join(unknown) or '(none given)'}; use sqlite, postgresql or both")
    if args.databases and "postgresql" in wanted and not postgresql_url(args.postgresql_url):
        parser.error("--databases postgresql needs a server: --postgresql-url URL (or CRM_BENCH_POSTGRESQL_URL)")
    for name in ("rows", "import_rows", "repeat"):
        value = getattr(args, name)
        if value is not None and value < (2 if name == "repeat" else 1):
            parser.error(f"--{name.replace('_', '-')} must be at least {2 if name == 'repeat' else 1}, got {value}")
    args.wanted = wanted
    return args


def main(argv: Sequence[str] | None = None, out: Callable[[str], None] = print) -> int:
    args = parse_args(argv)
    sizes = QUICK if args.quick else FULL
    sizes = replace(sizes, **{k: v for k, v in (("rows", args.rows), ("import_rows", args.import_rows),
                                                 ("repeat", args.repeat)) if v is not None})
    load_at_start = os.getloadavg()
    started = dt.datetime.now()
    rows: list[Row] = []
    versions: list[str] = []
    skipped: list[str] = []
    progress("rules (no database)")
    rows.append(Row.timing(rules_evaluation(load_registry(*TESTKIT), max(sizes.repeat, 20) * 10), "-"))
    for kind in args.wanted:
        server = postgresql_url(args.postgresql_url) if kind == "postgresql" else None
        if kind == "postgresql" and server is None:
            skipped.append("postgresql: skipped, no server given (--postgresql-url URL or CRM_BENCH_POSTGRESQL_URL)")
            continue
        with Databases(kind, server) as dbs:
            versions.append(dbs.version())
            rows += [Row.timing(result, kind) for result in measure_database(dbs, sizes)]
            if not args.no_memory:
                progress(f"server memory on {kind} (demo setup with crm_standard and ceramics, then serve)")
                memory = bench_memory.measure_memory(dbs.new("memory") if kind == "postgresql" else None)
                rows.append(Row.memory("server peak memory, both packs", kind, memory.peak, "bare Python imports",
                                       memory.baseline, f"{memory.pages} pages; RSS {memory.start_rss} MiB after start-up, "
                                                        f"{memory.rss} MiB after the pages"))
    seconds = (dt.datetime.now() - started).total_seconds()
    load_at_end = os.getloadavg()
    out(f"benchmarks.run{' --quick' if args.quick else ''}, {started:%Y-%m-%d %H:%M}, {seconds:.0f} s: "
        f"{os.cpu_count()} CPUs, load average {load_at_start[0]:.1f} at start, {load_at_end[0]:.1f} at end; "
        f"Python {platform.python_version()}; {', '.join(versions) or 'no database'}")
    out(f"sizes: {sizes.rows:,} rows behind lists and reports, imports of {sizes.import_rows:,} rows x "
        f"{sizes.import_rounds}, {sizes.repeat} timed runs each (rules: {max(sizes.repeat, 20) * 10})")
    for line in skipped:
        out(line)
    out("")
    out(render(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
