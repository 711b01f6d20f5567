"""A generation run: check the profile, find the owners, then pools, root rows in batches (one
transaction each) and the roll-up pass; report progress; on any failure or interruption delete
what the run wrote, so a run is all or nothing. Runs are recorded in crm_setting, and a second
run is refused unless it appends (`append=True`)."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import itertools
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from crm_platform.engine import clock, jobs
from crm_platform.engine.demo_data.builder import Builder, all_plans
from crm_platform.engine.demo_data.compile_plans import load_profile
from crm_platform.engine.demo_data.model import DemoDataError, Profile
from crm_platform.engine.demo_data.numbering import Numbering
from crm_platform.engine.demo_data.owners import resolve_owners
from crm_platform.engine.demo_data.recompute import Recompute, rolled_up
from crm_platform.engine.demo_data.rows import Scope
from crm_platform.engine.demo_data.writer import MARKER, Batch, Writer, make_pools, store_runs

if TYPE_CHECKING:
    from crm_platform.engine.site import Site

MAX_SIZE = 1_000_000


class DemoDataExists(DemoDataError):
    """Generated demo data is there already and the run does not append."""


@dataclass(frozen=True)
class ProgressEvent:
    phase: str  # "pools", "rows" (root rows done of total) or "roll-ups" (rows recomputed of total)
    done: int
    total: int
    rows: int  # rows written so far (records, links and history)


Progress = Callable[[ProgressEvent], None]


@dataclass
class DemoResult:
    run: int
    seed: int
    size: int
    counts: dict[str, int] = field(default_factory=dict)  # records per entity
    rows: int = 0  # every row written: records, N:N links, history
    seconds: float = 0.0
    recomputed: int = 0

    @property
    def records(self) -> int:
        return sum(self.counts.values())

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


def generated_runs(site: Site) -> list[dict[str, Any]]:
    table = site.schema.system["crm_setting"]
    with site.engine.connect() as conn:
        raw = conn.execute(sa.select(table.c.value).where(table.c.key == MARKER)).scalar()
    return json.loads(raw) if raw else []


def generate(site: Site, size: int, seed: int = 1, *, append: bool = False, progress: Progress | None = None,
             batch_rows: int = 20_000, profile: Profile | None = None) -> DemoResult:
    """Generate `size` root rows (accounts) and everything the profile puts under them.

    Raises PackError for a profile with problems (nothing written), DemoDataExists when an
    earlier run's data is there and `append` is false, DemoDataError when generation fails
    (what the run wrote is deleted again)."""
    if not 1 <= size <= MAX_SIZE:
        raise DemoDataError(f"size must be between 1 and {MAX_SIZE:,}, not {size}")
    profile = profile or load_profile(site)
    runs = generated_runs(site)
    if runs and not append:
        last = runs[-1]
        state = "" if last.get("finished_at") else " (it did not finish)"
        raise DemoDataExists(f"generated demo data is already there: run {last['run']} with size {last['size']} and seed {last['seed']}{state}; "
                             "add another batch with --append")
    return _Run(site, profile, size, seed, len(runs) + 1, runs, progress, batch_rows).execute()


class _Run:
    def __init__(self, site: Site, profile: Profile, size: int, seed: int, number: int, runs: list[dict[str, Any]],
                 progress: Progress | None, batch_rows: int) -> None:
        self.site, self.profile, self.size, self.seed, self.number = site, profile, size, seed, number
        self.runs, self.progress, self.batch_rows = runs, progress, batch_rows
        self.now = clock.now().replace(microsecond=0)
        self.result = DemoResult(number, seed, size)
        self.plans = all_plans(profile)
        self.conn: sa.Connection | None = None
        self.outside: dict[str, set[int]] = {}  # existing rows whose roll-ups the run changed

    def execute(self) -> DemoResult:
        site, started = self.site, time.perf_counter()
        infos, units = resolve_owners(site, self.profile)
        names = [p.name for p in self.plans]
        drawn = {a.target for p in self.plans for fp in p.fields for a in fp.alternatives if a.target}
        drawn |= {f.entity for p in self.plans for f in p.entity.fields if f.type == "reference" and f.required and f.entity and f.name != p.link}
        self.numbering = Numbering(site.registry, names)
        with site.engine.connect() as conn:
            pools = make_pools(conn, site, names, drawn)
            self.numbering.load(conn, site.schema.system["crm_autonumber"])
            existing = {p.name: conn.execute(sa.select(sa.func.count()).where(site.schema.tables[p.name].c.deleted_at.is_(None))).scalar_one()
                        for p in self.profile.pools}
        self.first = {name: pools[name].first_new for name in names}
        self.pools = pools
        scope = Scope(lambda: self.conn, site.schema.tables, infos, self.now)
        scope.pools = pools
        seed_base = int.from_bytes(hashlib.sha256(f"{self.seed}:{self.number}".encode()).digest()[:5], "big")
        builder = Builder(site, self.profile, scope, self.numbering, units, seed_base)
        self.writer = Writer(site, self.plans, self.numbering)
        try:
            def top_up_pools() -> None:
                for plan in self.profile.pools:
                    builder.pool(plan, max(0, plan.at_least - existing[plan.name]))

            with self._connection() as conn:
                self._batch(conn, scope, builder, top_up_pools)
                self._report("pools", 1, 1)
                roots = self.size * self.profile.root.per_size
                per_batch = max(1, int(self.batch_rows / max(self.profile.rows_per_root(), 1.0)))
                for start in range(0, roots, per_batch):
                    stop = min(roots, start + per_batch)
                    self._batch(conn, scope, builder, functools.partial(builder.roots, start, stop))
                    self._report("rows", stop, roots)
            self._recompute(infos)
            self.result.seconds = time.perf_counter() - started
            with site.engine.begin() as conn:
                store_runs(conn, site, [*self.runs, self._entry(finished=True)])
        except BaseException:
            self._undo(infos)
            raise
        return self.result

    @contextlib.contextmanager
    def _connection(self) -> Iterator[sa.Connection]:
        """The one connection every batch of the run is written through."""
        with self.site.engine.connect() as conn:
            conn.execution_options(crm_write=True)  # SQLite: BEGIN IMMEDIATE, as a writer (see database.py)
            try:
                yield conn
            finally:
                if conn.in_transaction():
                    conn.rollback()

    def _batch(self, conn: sa.Connection, scope: Scope, builder: Builder, make: Callable[[], object]) -> None:
        """Generate one batch and write it, in one transaction (rules read earlier rows through it)."""
        with conn.begin():
            self.conn = conn
            try:
                make()
                output = builder.take_output()
                for name, rows in output.items():
                    self.result.counts[name] = self.result.counts.get(name, 0) + len(rows)
                batch = Batch(output, self.numbering.take(), [*self.runs, self._entry(finished=False)])
                self.result.rows += self.writer.write(conn, batch)
            finally:
                self.conn = None
                scope.end_batch()
        jobs.deliver(self.site, self.writer.take_timer_jobs())

    def _report(self, phase: str, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(ProgressEvent(phase, done, total, self.result.rows))

    def ranges(self) -> dict[str, tuple[int, int]]:
        return {name: (first, self.pools[name].next_new) for name, first in self.first.items()}

    def _recompute(self, infos: Any) -> None:
        """The roll-up pass: generated rows of each rolled-up entity, and existing rows they touch."""
        order = rolled_up(self.site)
        if not order:
            return
        redo = Recompute(self.site, infos, self.now)
        generated = {name: span for name, span in self.ranges().items() if span[1] > span[0]}
        with self.site.engine.connect() as conn:
            for name in order:
                self.outside[name] = redo.outside_owners(conn, self.site.registry.entity(name), generated, self.outside)
        total = sum(len(self.outside[n]) + (generated[n][1] - generated[n][0] if n in generated else 0) for n in order)
        done = 0

        def step(count: int) -> None:
            nonlocal done
            done += count
            self._report("roll-ups", done, total)

        for name in order:
            first, after = generated.get(name, (0, 0))
            ids = itertools.chain(range(first, after), sorted(self.outside[name]))
            self.result.recomputed += redo.run(self.site.registry.entity(name), ids, step)

    def _undo(self, infos: Any) -> None:
        """Delete what this run wrote; recompute the existing rows its rows had changed."""
        if not hasattr(self, "writer"):
            return
        with self.site.engine.begin() as conn:
            self.writer.undo(conn, self.ranges())
            store_runs(conn, self.site, self.runs)
        if any(self.outside.values()):
            redo = Recompute(self.site, infos, self.now)
            for name in rolled_up(self.site):
                if self.outside.get(name):
                    redo.run(self.site.registry.entity(name), sorted(self.outside[name]))

    # -- the record of runs ---------------------------------------------------------------------------
    def _entry(self, finished: bool) -> dict[str, Any]:
        return {"run": self.number, "seed": self.seed, "size": self.size, "at": self.now.isoformat(),
                "finished_at": clock.now().isoformat() if finished else None,
                "ranges": {k: list(v) for k, v in self.ranges().items()}, "counts": self.result.counts}
