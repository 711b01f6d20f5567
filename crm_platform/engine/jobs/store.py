"""The `crm_job` table: one row per piece of work, named by a unique key.

The row, not the queue, is the truth: a delivery (from arq, from the in-process backend or
from the due-job sweep) first *claims* the row with a conditional UPDATE (pending and due, or
running with an expired lease), so a job delivered twice runs once. Statuses:

    pending  -> running -> done
                        -> pending (a failed attempt with attempts left; run_at = backoff)
                        -> failed  (no attempts left; last_error kept for the monitoring screen)
    pending  -> cancelled (a timer that is no longer wanted)
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

PENDING, RUNNING, DONE, FAILED, CANCELLED = "pending", "running", "done", "failed", "cancelled"
STATUSES = (PENDING, RUNNING, DONE, FAILED, CANCELLED)
ERROR_LIMIT = 4000


@dataclass(frozen=True)
class JobRow:
    id: int
    key: str
    name: str
    payload: dict[str, Any]
    status: str
    attempts: int
    max_attempts: int
    last_error: str | None
    run_at: dt.datetime
    lease_until: dt.datetime | None
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None

    @classmethod
    def of(cls, row: Any) -> JobRow:
        values = dict(row._mapping)
        values["payload"] = json.loads(values["payload"])
        return cls(**values)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def due(self, now: dt.datetime) -> bool:
        if self.status == PENDING:
            return self.run_at <= now
        return self.status == RUNNING and self.lease_until is not None and self.lease_until < now


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"a job payload holds JSON values only, not {type(value).__name__}")


def dump_payload(payload: dict[str, Any]) -> str:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_json_default)


def insert_ignoring_conflict(conn: sa.Connection, table: sa.Table, values: dict[str, Any]) -> bool:
    """INSERT ... ON CONFLICT (key) DO NOTHING; True when the row was added."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    result = conn.execute(dialect.insert(table).values(**values).on_conflict_do_nothing(index_elements=["key"]))
    return result.rowcount == 1


def insert(conn: sa.Connection, table: sa.Table, *, key: str, name: str, payload: dict[str, Any],
           run_at: dt.datetime, max_attempts: int, now: dt.datetime) -> tuple[JobRow, bool]:
    """Add the job unless a job with this key exists; returns (the row, whether it is new)."""
    added = insert_ignoring_conflict(conn, table, {
        "key": key, "name": name, "payload": dump_payload(payload), "status": PENDING, "attempts": 0,
        "max_attempts": max_attempts, "run_at": run_at, "created_at": now,
    })
    row = conn.execute(sa.select(table).where(table.c.key == key)).one()
    return JobRow.of(row), added


def get(conn: sa.Connection, table: sa.Table, job_id: int) -> JobRow | None:
    row = conn.execute(sa.select(table).where(table.c.id == job_id)).first()
    return JobRow.of(row) if row is not None else None


def get_by_key(conn: sa.Connection, table: sa.Table, key: str) -> JobRow | None:
    row = conn.execute(sa.select(table).where(table.c.key == key)).first()
    return JobRow.of(row) if row is not None else None


def claim(conn: sa.Connection, table: sa.Table, job_id: int, now: dt.datetime,
          lease: dt.timedelta) -> JobRow | None:
    """Take the job for one attempt if it is due and nobody holds it; None otherwise.

    A running job whose lease expired was abandoned (its worker died): it is taken over as a
    new attempt, or marked failed when it has no attempts left.
    """
    job = get(conn, table, job_id)
    if job is None or not job.due(now):
        return None
    same = (table.c.id == job.id) & (table.c.status == job.status) & (table.c.attempts == job.attempts)
    if job.status == RUNNING and job.attempts >= job.max_attempts:
        conn.execute(table.update().where(same).values(
            status=FAILED, finished_at=now, lease_until=None,
            last_error=f"attempt {job.attempts} was abandoned (its worker stopped) and no attempts are left"))
        return None
    result = conn.execute(table.update().where(same).values(
        status=RUNNING, attempts=job.attempts + 1, started_at=now, lease_until=now + lease))
    if result.rowcount != 1:
        return None
    return get(conn, table, job_id)


def finish(conn: sa.Connection, table: sa.Table, job_id: int, attempt: int, now: dt.datetime) -> bool:
    """Mark attempt `attempt` done; False when that attempt no longer holds the job."""
    result = conn.execute(table.update().where(
        (table.c.id == job_id) & (table.c.status == RUNNING) & (table.c.attempts == attempt)
    ).values(status=DONE, finished_at=now, lease_until=None))
    return result.rowcount == 1


def record_failure(conn: sa.Connection, table: sa.Table, job: JobRow, error: str, now: dt.datetime,
                   delay: float) -> JobRow | None:
    """After failed attempt `job.attempts`: pending again at now + delay, or failed for good."""
    final = job.attempts >= job.max_attempts
    values: dict[str, Any] = {"last_error": error[-ERROR_LIMIT:], "lease_until": None}
    if final:
        values.update(status=FAILED, finished_at=now)
    else:
        values.update(status=PENDING, run_at=now + dt.timedelta(seconds=delay))
    result = conn.execute(table.update().where(
        (table.c.id == job.id) & (table.c.status == RUNNING) & (table.c.attempts == job.attempts)
    ).values(**values))
    return get(conn, table, job.id) if result.rowcount == 1 else None


def due_ids(conn: sa.Connection, table: sa.Table, now: dt.datetime, limit: int) -> list[int]:
    """Pending jobs whose time has come and running ones whose lease expired, oldest first."""
    cond = ((table.c.status == PENDING) & (table.c.run_at <= now)) | (
        (table.c.status == RUNNING) & (table.c.lease_until < now))
    query = sa.select(table.c.id).where(cond).order_by(table.c.run_at, table.c.id).limit(limit)
    return list(conn.execute(query).scalars())


def cancel(conn: sa.Connection, table: sa.Table, key: str, now: dt.datetime) -> bool:
    result = conn.execute(table.update().where((table.c.key == key) & (table.c.status == PENDING))
                          .values(status=CANCELLED, finished_at=now))
    return result.rowcount == 1


def reopen(conn: sa.Connection, table: sa.Table, job_id: int, now: dt.datetime, extra_attempts: int) -> JobRow | None:
    """A failed (or cancelled) job gets `extra_attempts` more, starting now."""
    job = get(conn, table, job_id)
    if job is None or job.status not in (FAILED, CANCELLED):
        return None
    conn.execute(table.update().where((table.c.id == job_id) & (table.c.status == job.status)).values(
        status=PENDING, run_at=now, finished_at=None, lease_until=None,
        max_attempts=job.attempts + extra_attempts))
    return get(conn, table, job_id)


def select_jobs(conn: sa.Connection, table: sa.Table, status: str | None, name: str | None,
                limit: int) -> list[JobRow]:
    query = sa.select(table).order_by(table.c.id.desc()).limit(limit)
    if status is not None:
        query = query.where(table.c.status == status)
    if name is not None:
        query = query.where(table.c.name == name)
    return [JobRow.of(r) for r in conn.execute(query)]


def counts(conn: sa.Connection, table: sa.Table) -> dict[str, int]:
    rows = conn.execute(sa.select(table.c.status, sa.func.count()).group_by(table.c.status))
    return {status: 0 for status in STATUSES} | {s: int(n) for s, n in rows}
