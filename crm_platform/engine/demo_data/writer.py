"""Writing generated rows: one transaction per batch, one executemany per table (parents
first), N:N link rows, a "created" history row per record and the workflow history's first
row per workflow record (with the state's timers, as for loaded demo records), the
auto-number counters, and on PostgreSQL the id sequences. Also what the run found (next ids,
existing ids to draw from) and undoing a run."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from crm_platform.engine.demo_data.numbering import Numbering
from crm_platform.engine.demo_data.rows import IdPool
from crm_platform.engine.workflow_jobs import schedule_timers

if TYPE_CHECKING:
    from crm_platform.engine.demo_data.model import EntityPlan
    from crm_platform.engine.site import Site


MARKER = "demo_data.runs"


@dataclass
class Batch:
    """What one transaction writes: generated rows by entity, the auto-number counters they
    moved, and the record of runs (so an interrupted run can be recognised)."""

    output: dict[str, list[dict[str, Any]]]
    counters: dict[tuple[str, str, str], int]
    runs: list[dict[str, Any]] = field(default_factory=list)


def store_runs(conn: sa.Connection, site: Site, runs: list[dict[str, Any]]) -> None:
    """Keep the record of generation runs (crm_setting `demo_data.runs`, JSON)."""
    table = site.schema.system["crm_setting"]
    conn.execute(table.delete().where(table.c.key == MARKER))
    if runs:
        conn.execute(table.insert().values(key=MARKER, value=json.dumps(runs, ensure_ascii=False, default=str)))


def existing_ids(conn: sa.Connection, table: sa.Table) -> Sequence[int]:
    """Ids of the rows not in the recycle bin (a range when they are contiguous)."""
    live = table.c.deleted_at.is_(None)
    low, high, count = conn.execute(sa.select(sa.func.min(table.c.id), sa.func.max(table.c.id), sa.func.count()).where(live)).one()
    if not count:
        return ()
    if high - low + 1 == count:
        return range(low, high + 1)
    return list(conn.execute(sa.select(table.c.id).where(live).order_by(table.c.id)).scalars())


def make_pools(conn: sa.Connection, site: Site, generated: Sequence[str], drawn: set[str]) -> dict[str, IdPool]:
    """A pool per generated entity (ids go on after the largest) and per entity drawn from."""
    pools = {}
    for name in sorted(set(generated) | drawn):
        table = site.schema.tables[name]
        first = (conn.execute(sa.select(sa.func.max(table.c.id))).scalar() or 0) + 1
        pools[name] = IdPool(existing_ids(conn, table) if name in drawn else (), first)
    return pools


class Writer:
    def __init__(self, site: Site, plans: list[EntityPlan], numbering: Numbering) -> None:
        self.site = site
        self.plans = plans
        self.numbering = numbering
        system = site.schema.system
        self.history = system["crm_history"]
        self.flow_history = system["crm_workflow_history"]
        self.counters = system["crm_autonumber"]
        self.tables = {p.name: site.schema.tables[p.name] for p in plans}
        self.links = {p.name: [(f.name, site.schema.junctions[(p.name, f.name)]) for f in p.entity.fields if f.type == "many_to_many"] for p in plans}
        self.flows = {p.name: site.workflows.of(p.name) for p in plans}
        self.timed = {p.name: {s.name for s in flow.states if s.timers} if (flow := self.flows[p.name]) else set() for p in plans}
        self.timer_jobs: list[int] = []  # written in the current batch, delivered after its commit
        self.all_timer_jobs: list[int] = []
        self.postgres = site.engine.dialect.name == "postgresql"
        self.sqlite = site.engine.dialect.name == "sqlite"
        self._statements: dict[str, tuple[str, list[tuple[str, Any]]]] = {}

    def write(self, conn: sa.Connection, batch: Batch) -> int:
        """Insert one batch inside the caller's transaction; returns the rows written."""
        output = batch.output
        written = 0
        history: list[dict[str, Any]] = []
        flow_rows: list[dict[str, Any]] = []
        for plan in self.plans:
            rows = output.get(plan.name)
            if not rows:
                continue
            self.insert(conn, self.tables[plan.name], rows)
            written += len(rows)
            for name, junction in self.links[plan.name]:
                links = [{"source_id": v["id"], "target_id": t} for v in rows for t in v.get(name) or ()]
                if links:
                    self.insert(conn, junction, links)
                    written += len(links)
            history.extend({"entity": plan.name, "record_id": v["id"], "version": 1, "action": "create", "field": None,
                            "old_value": None, "new_value": None, "changed_by": v.get("created_by"), "changed_at": v["created_at"]} for v in rows)
            flow = self.flows[plan.name]
            if flow is not None:
                timed = self.timed[plan.name]
                starts = [{"entity": plan.name, "record_id": v["id"], "workflow": flow.name, "transition": "_start", "from_state": None,
                           "to_state": v[flow.field], "comment": None, "changed_by": v.get("created_by"), "changed_at": v["created_at"]} for v in rows]
                flow_rows.extend(r for r in starts if r["to_state"] not in timed)
                written += self._start_timers(conn, plan.name, [r for r in starts if r["to_state"] in timed])
        if history:
            self.insert(conn, self.history, history)
        if flow_rows:
            self.insert(conn, self.flow_history, flow_rows)
        written += len(history) + len(flow_rows)
        self.numbering.save(conn, self.counters, batch.counters)
        if batch.runs:
            store_runs(conn, self.site, batch.runs)
        if self.postgres:
            for plan in self.plans:
                if output.get(plan.name):
                    self.advance_sequence(conn, self.tables[plan.name])
        return written

    def _start_timers(self, conn: sa.Connection, entity: str, starts: list[dict[str, Any]]) -> int:
        """Rows generated in a state with timers enter it as loaded demo records do: their first
        workflow history row, and the state's timers counted from now (delivered after commit)."""
        for start in starts:
            history_id = conn.execute(self.flow_history.insert().values(**start).returning(self.flow_history.c.id)).scalar_one()
            self.timer_jobs.extend(schedule_timers(self.site, conn, entity, start["record_id"], start["to_state"], history_id))
        return len(starts)

    def take_timer_jobs(self) -> list[int]:
        jobs, self.timer_jobs = self.timer_jobs, []
        self.all_timer_jobs.extend(jobs)
        return jobs

    def insert(self, conn: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]) -> None:
        """executemany of `rows` (dicts holding at least the table's columns' values, missing ones null).

        On SQLite the values go through each column type's bind processor here and the compiled
        INSERT runs as one executemany of tuples; SQLAlchemy's per-row parameter handling for
        dictionaries took as long as the generation. PostgreSQL uses Core's insertmanyvalues."""
        columns = [c for c in table.columns if not c.primary_key or c.name in rows[0]]  # log tables number their own rows
        if not self.sqlite:
            names = [c.name for c in columns]
            conn.execute(table.insert(), [{c: r.get(c) for c in names} for r in rows])
            return
        statement = self._statements.get(table.name)
        if statement is None:
            statement = self._statements[table.name] = _compiled_insert(table, columns, conn.dialect)
        sql, pairs = statement
        conn.exec_driver_sql(sql, [tuple([(p(r.get(n)) if p else r.get(n)) for n, p in pairs]) for r in rows])

    @staticmethod
    def advance_sequence(conn: sa.Connection, table: sa.Table) -> None:
        """Rows were inserted with explicit ids: move the id sequence past them."""
        name = table.name.replace('"', '""')
        conn.execute(sa.text(f"SELECT setval(pg_get_serial_sequence('\"{name}\"', 'id'), (SELECT max(id) FROM \"{name}\"))"))

    def undo(self, conn: sa.Connection, ranges: dict[str, tuple[int, int]]) -> None:
        """Delete every row of a run (ids in `ranges`, per entity), children first."""
        for plan in reversed(self.plans):
            if plan.name not in ranges:
                continue
            first, after = ranges[plan.name]
            if after <= first:
                continue
            table = self.tables[plan.name]
            for _, junction in self.links[plan.name]:
                conn.execute(junction.delete().where(junction.c.source_id >= first, junction.c.source_id < after))
            for log in (self.history, self.flow_history):
                conn.execute(log.delete().where(log.c.entity == plan.name, log.c.record_id >= first, log.c.record_id < after))
            conn.execute(table.delete().where(table.c.id >= first, table.c.id < after))
        jobs = self.site.schema.system["crm_job"]
        for start in range(0, len(self.all_timer_jobs), 1000):
            conn.execute(jobs.delete().where(jobs.c.id.in_(self.all_timer_jobs[start : start + 1000])))
        self.numbering.restore(conn, self.counters)


def _compiled_insert(table: sa.Table, columns: list[sa.Column[Any]], dialect: sa.Dialect) -> tuple[str, list[tuple[str, Any]]]:
    """The INSERT of these columns with positional parameters, and each column's bind processor."""
    compiled = table.insert().values({c.name: sa.bindparam(c.name, type_=c.type) for c in columns}).compile(dialect=dialect)
    order = list(compiled.positiontup or [])
    by_name = {c.name: c for c in columns}
    pairs = [(name, by_name[name].type.dialect_impl(dialect).bind_processor(dialect)) for name in order]
    return str(compiled), pairs
