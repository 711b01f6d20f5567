"""What the rest of the platform calls: enqueue, schedule, cancel, deliver, list, retry.

    job_id = enqueue(site, "send_email", {"outbox_id": 7}, key="email:7")
    enqueue(site, "sla_escalate", {...}, key=f"sla:service_request:{rid}:{hid}", run_at=timedelta(hours=4))

A key names one piece of work: enqueueing the same key again adds nothing (the first job is
returned), and a job whose key ran is never run again; give a re-armed timer a new key.

Inside a transaction of your own, always pass `conn=`: the job is written in that transaction
(gone if it rolls back) and delivered after the commit by `deliver(site, ids)`, or use
`with after_commit(site) as later: ... later.enqueue(conn, ...)`. Jobs never delivered are
still run by the due-job sweep (worker, or the app's sweeper) within its interval. (Without
`conn`, in-process, a due job runs before `enqueue` returns and opens its own write
transaction: called inside another open write transaction on SQLite, that one would wait for
the lock held by its own caller.)
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from crm_platform.engine import clock
from crm_platform.engine.jobs import store
from crm_platform.engine.jobs.delivery import deliver_rows
from crm_platform.engine.jobs.registry import DEFAULT_MAX_ATTEMPTS, get_spec

if TYPE_CHECKING:
    from crm_platform.engine.site import Site

RunAt = dt.datetime | dt.timedelta | None


def _table(site: Site) -> sa.Table:
    return site.schema.system["crm_job"]


def _when(run_at: RunAt, now: dt.datetime) -> dt.datetime:
    if run_at is None:
        return now
    if isinstance(run_at, dt.timedelta):
        return now + run_at
    return run_at.replace(tzinfo=dt.UTC) if run_at.tzinfo is None else run_at.astimezone(dt.UTC)


def add_job(site: Site, conn: sa.Connection, name: str, payload: dict[str, Any] | None = None,
            key: str | None = None, run_at: RunAt = None, *, max_attempts: int | None = None) -> store.JobRow:
    """Write the job row in `conn`'s transaction (no delivery); the existing row for a known key."""
    spec = get_spec(name)
    if spec is None:
        raise LookupError(f"no job function named '{name}'")
    now = clock.now()
    job, _ = store.insert(conn, _table(site), key=key or f"{name}:{uuid.uuid4().hex}", name=name,
                          payload=payload or {}, run_at=_when(run_at, now),
                          max_attempts=max_attempts or spec.max_attempts or DEFAULT_MAX_ATTEMPTS, now=now)
    return job


def enqueue(site: Site, name: str, payload: dict[str, Any] | None = None, key: str | None = None,
            run_at: RunAt = None, *, conn: sa.Connection | None = None, max_attempts: int | None = None) -> int:
    """Add job `name` (a registered job function) with a JSON `payload`; returns its id.

    `run_at`: when it is due (an aware datetime, or a timedelta from the platform clock's now;
    default now): a timer. Without `conn` the job is delivered at once (in-process: a due job
    runs before this returns); with `conn` it is delivered after your commit (see module doc).
    """
    if conn is not None:
        return add_job(site, conn, name, payload, key, run_at, max_attempts=max_attempts).id
    with site.engine.begin() as own:
        job = add_job(site, own, name, payload, key, run_at, max_attempts=max_attempts)
    deliver_rows(site, [job])
    return job.id


def deliver(site: Site, job_ids: Iterable[int]) -> None:
    """Deliver jobs written with `conn=` once their transaction committed."""
    ids = list(job_ids)
    if not ids:
        return
    table = _table(site)
    with site.engine.connect() as conn:
        jobs = [j for j in (store.get(conn, table, i) for i in ids) if j is not None]
        conn.rollback()
    deliver_rows(site, jobs)


@dataclass
class AfterCommit:
    """Collects jobs written in a transaction; `after_commit` delivers them when it ends well."""

    site: Site
    job_ids: list[int] = field(default_factory=list)

    def enqueue(self, conn: sa.Connection, name: str, payload: dict[str, Any] | None = None,
                key: str | None = None, run_at: RunAt = None, *, max_attempts: int | None = None) -> int:
        job_id = enqueue(self.site, name, payload, key, run_at, conn=conn, max_attempts=max_attempts)
        self.job_ids.append(job_id)
        return job_id

    def queue_email(self, conn: sa.Connection, to: str | Iterable[str], subject: str, body: str,
                    key: str | None = None) -> int:
        from crm_platform.engine.jobs.outbox import queue_email

        queued = queue_email(self.site, to, subject, body, key, conn=conn)
        self.job_ids.append(queued.job_id)
        return queued.outbox_id


@contextmanager
def after_commit(site: Site) -> Iterator[AfterCommit]:
    """`with after_commit(site) as later:` run your transaction(s), calling `later.enqueue(conn, ...)`
    inside them; on a normal exit the jobs are delivered (a rolled-back job is skipped)."""
    later = AfterCommit(site)
    yield later
    deliver(site, later.job_ids)


def cancel(site: Site, key: str, *, conn: sa.Connection | None = None) -> bool:
    """Cancel the pending job `key` (a timer no longer wanted); False if it is not pending."""
    if conn is not None:
        return store.cancel(conn, _table(site), key, clock.now())
    with site.engine.begin() as own:
        return store.cancel(own, _table(site), key, clock.now())


def get_job(site: Site, job_id: int | None = None, *, key: str | None = None) -> dict[str, Any] | None:
    with site.engine.connect() as conn:
        job = store.get(conn, _table(site), job_id) if job_id is not None else (
            store.get_by_key(conn, _table(site), key) if key is not None else None)
        conn.rollback()
    return job.as_dict() if job else None


def list_jobs(site: Site, status: str | None = None, *, name: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
    """Jobs newest first, optionally of one status (pending, running, done, failed, cancelled)."""
    if status is not None and status not in store.STATUSES:
        raise ValueError(f"unknown job status '{status}' (one of {', '.join(store.STATUSES)})")
    with site.engine.connect() as conn:
        jobs = store.select_jobs(conn, _table(site), status, name, limit)
        conn.rollback()
    return [j.as_dict() for j in jobs]


def job_counts(site: Site) -> dict[str, int]:
    """How many jobs are in each status (for the monitoring screen)."""
    with site.engine.connect() as conn:
        counts = store.counts(conn, _table(site))
        conn.rollback()
    return counts


def retry(site: Site, job_id: int) -> bool:
    """Run a failed (or cancelled) job again now, with a new round of attempts; False if it is not
    failed or cancelled."""
    with site.engine.begin() as conn:
        job = store.get(conn, _table(site), job_id)
        spec = get_spec(job.name) if job else None
        reopened = store.reopen(conn, _table(site), job_id, clock.now(),
                                spec.max_attempts if spec else DEFAULT_MAX_ATTEMPTS)
    if reopened is None:
        return False
    deliver_rows(site, [reopened])
    return True
