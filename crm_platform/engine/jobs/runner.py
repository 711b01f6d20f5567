"""Running one job: claim its row, call its function, record done / retry / failed.

`execute(site, job_id)` is what every delivery path calls (the in-process backend, the arq
worker, the due-job sweep); the claim in `store.claim` makes a second delivery of the same
job a no-op, and a delivery after the job's worker died (lease expired) a new attempt.
"""

from __future__ import annotations

import datetime as dt
import logging
import traceback
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from crm_platform.engine import clock
from crm_platform.engine.jobs import store
from crm_platform.engine.jobs.registry import DEFAULT_BACKOFF, DEFAULT_TIMEOUT, JobSpec, get_spec

if TYPE_CHECKING:
    from crm_platform.engine.site import Site

log = logging.getLogger("crm_platform.jobs")


class LeaseLost(RuntimeError):
    """This attempt no longer holds its job (it ran past its lease and another took over)."""


@dataclass
class JobContext:
    """What a job function gets: the site, its payload, and which attempt this is."""

    site: Site
    job_id: int
    key: str
    name: str
    payload: dict[str, Any]
    attempt: int
    max_attempts: int
    completed: bool = field(default=False, init=False)

    @property
    def last_attempt(self) -> bool:
        """True when a failure now marks the job failed (no retry follows)."""
        return self.attempt >= self.max_attempts

    def now(self) -> dt.datetime:
        return clock.now()

    def complete(self, conn: sa.Connection) -> None:
        """Mark the job done inside the caller's transaction, so the job's own writes and its
        completion commit together (exactly once even if the worker dies right after).
        Raises LeaseLost (rolling the caller's transaction back) if another attempt took over."""
        table = self.site.schema.system["crm_job"]
        if not store.finish(conn, table, self.job_id, self.attempt, clock.now()):
            raise LeaseLost(f"job {self.key} attempt {self.attempt} lost its lease")
        self.completed = True


@dataclass(frozen=True)
class Outcome:
    """What one delivery did: done, retry (pending again at job.run_at), failed, or skipped
    (not due, already done, held by another attempt, cancelled, unknown id)."""

    job_id: int
    status: str
    job: store.JobRow | None = None
    error: str | None = None


def _lease(spec: JobSpec | None) -> dt.timedelta:
    return dt.timedelta(seconds=spec.timeout if spec else DEFAULT_TIMEOUT)


def _describe(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)[-3:]
    where = "; ".join(f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno} in {f.name}" for f in frames)
    return f"{type(exc).__name__}: {exc}" + (f" (at {where})" if where else "")


def execute(site: Site, job_id: int) -> Outcome:
    """Run job `job_id` once if it is due and free; never raises for a failing job function."""
    table = site.schema.system["crm_job"]
    with site.engine.connect() as conn:
        peek = store.get(conn, table, job_id)
        conn.rollback()
    if peek is None:
        return Outcome(job_id, "skipped")
    spec = get_spec(peek.name)
    with site.engine.begin() as conn:
        job = store.claim(conn, table, job_id, clock.now(), _lease(spec))
    if job is None:
        return Outcome(job_id, "skipped", peek)
    ctx = JobContext(site, job.id, job.key, job.name, job.payload, job.attempts, job.max_attempts)
    log.info("job %s (%s) attempt %d/%d", job.key, job.name, job.attempts, job.max_attempts)
    try:
        if spec is None:
            raise LookupError(f"no job function named '{job.name}' in this process (see CRM_JOB_MODULES)")
        spec.func(ctx)
    except Exception as exc:  # noqa: BLE001 - a job's failure is recorded, never propagated
        return _failed(site, table, job, spec, exc)
    if not ctx.completed:
        with site.engine.begin() as conn:
            if not store.finish(conn, table, job.id, job.attempts, clock.now()):
                log.warning("job %s attempt %d finished after losing its lease", job.key, job.attempts)
                return Outcome(job_id, "skipped", job)
    log.info("job %s (%s) done", job.key, job.name)
    return Outcome(job_id, "done", job)


def _failed(site: Site, table: sa.Table, job: store.JobRow, spec: JobSpec | None, exc: Exception) -> Outcome:
    error = _describe(exc)
    delay = spec.delay_after(job.attempts) if spec else DEFAULT_BACKOFF * 2 ** (job.attempts - 1)
    with site.engine.begin() as conn:
        after = store.record_failure(conn, table, job, error, clock.now(), delay)
    if after is None:
        log.warning("job %s attempt %d failed after losing its lease: %s", job.key, job.attempts, error)
        return Outcome(job.id, "skipped", job, error)
    if after.status == store.FAILED:
        log.error("job %s (%s) failed for good after %d attempt(s): %s", job.key, job.name, job.attempts, error,
                  exc_info=exc)
        return Outcome(job.id, "failed", after, error)
    log.warning("job %s (%s) attempt %d failed, retry at %s: %s", job.key, job.name, job.attempts,
                after.run_at.isoformat(timespec="seconds"), error)
    return Outcome(job.id, "retry", after, error)
