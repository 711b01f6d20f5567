"""Job functions for the jobs tests only; a worker loads them with CRM_JOB_MODULES=tests.engine.jobs_testing.

Each leaves marks in `crm_setting` (key `jobmark:<job key>:<attempt>`), written in the same
transaction that marks the job done, so counting marks counts how often the work happened.
"""

from __future__ import annotations

import time

import sqlalchemy as sa

from crm_platform.engine.jobs import JobContext, job
from crm_platform.engine.site import Site


def _mark(ctx: JobContext, conn: sa.Connection, what: str = "done") -> None:
    table = ctx.site.schema.system["crm_setting"]
    conn.execute(table.insert().values(key=f"jobmark:{ctx.key}:{ctx.attempt}:{what}"[:64],
                                       value=str(ctx.payload.get("value", ""))))


def marks(site: Site, key: str, what: str = "done") -> list[str]:
    """The attempts that did the work of job `key` (one entry per time the work happened)."""
    table = site.schema.system["crm_setting"]
    with site.engine.connect() as conn:
        rows = conn.execute(sa.select(table.c.key).where(table.c.key.like(f"jobmark:{key}:%"))).scalars().all()
        conn.rollback()
    return sorted(k for k in rows if k.endswith(f":{what}"))


@job("test_mark")
def mark_job(ctx: JobContext) -> None:
    with ctx.site.engine.begin() as conn:
        _mark(ctx, conn)
        ctx.complete(conn)


@job("test_flaky", max_attempts=4, backoff=0.5)
def flaky_job(ctx: JobContext) -> None:
    """Fails its first payload['fail_times'] attempts, then does its work."""
    if ctx.attempt <= int(ctx.payload.get("fail_times", 1)):
        raise RuntimeError(f"flaky failure on attempt {ctx.attempt}")
    with ctx.site.engine.begin() as conn:
        _mark(ctx, conn)
        ctx.complete(conn)


@job("test_boom", max_attempts=3, backoff=10)
def boom_job(ctx: JobContext) -> None:
    raise ValueError(f"boom {ctx.payload.get('value', '')}")


@job("test_sleep_then_mark", max_attempts=3, backoff=0.5, timeout=6)
def sleep_then_mark_job(ctx: JobContext) -> None:
    """Marks that it started, sleeps payload['seconds'], then does its work (killed mid-job in a test)."""
    with ctx.site.engine.begin() as conn:
        _mark(ctx, conn, "started")
    time.sleep(float(ctx.payload.get("seconds", 1)))
    with ctx.site.engine.begin() as conn:
        _mark(ctx, conn)
        ctx.complete(conn)
