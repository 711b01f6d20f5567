"""Getting jobs to a runner: arq on Redis when `settings.redis_url` is set, else in-process.

- arq: each delivery is one arq job of the function `crm_job` with the crm_job id as its
  argument, arq job id `<queue>:<key>:<attempts>` (arq refuses a second job with the same id
  while the first is queued, so enqueueing a key twice delivers once) and `_defer_by` for
  jobs due later (computed from the platform clock, so a moved clock keeps its meaning).
- in-process: a due job runs at once in the calling thread; a job due later waits in its
  row for `run_due(site)` (the app's sweeper, or a test after moving the clock).

Whatever the backend, `run_due` also runs what a lost delivery left behind: pending jobs
whose time has come and running jobs whose worker died (lease expired).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import logging
import os
from collections.abc import Coroutine, Iterable
from typing import TYPE_CHECKING, Any

from crm_platform.engine import clock
from crm_platform.engine.jobs import store
from crm_platform.engine.jobs.runner import Outcome, execute

if TYPE_CHECKING:
    from arq.connections import ArqRedis, RedisSettings

    from crm_platform.config import Settings
    from crm_platform.engine.site import Site

log = logging.getLogger("crm_platform.jobs")

ARQ_FUNCTION = "crm_job"
DEFAULT_QUEUE = "crm:jobs"
ENQUEUE_TIMEOUT = 10.0


def queue_name(settings: Settings) -> str:
    """The arq queue: settings.extra['job_queue'], else CRM_JOB_QUEUE, else 'crm:jobs'."""
    return settings.extra.get("job_queue") or os.environ.get("CRM_JOB_QUEUE") or DEFAULT_QUEUE


def redis_settings(url: str, *, fail_fast: bool = True) -> RedisSettings:
    """arq's settings for `url`; `fail_fast`: one short connection attempt, no arq retries (Redis
    down: an enqueued job stays pending for the worker's sweep; the worker waits with its own
    backoff, see `supervisor.py`)."""
    from arq.connections import RedisSettings

    settings = RedisSettings.from_dsn(url)
    return dataclasses.replace(settings, conn_retries=0, conn_timeout=2) if fail_fast else settings


def arq_job_id(job: store.JobRow, queue: str) -> str:
    return f"{queue}:{job.key}:{job.attempts}"


async def push(redis: ArqRedis, queue: str, jobs: Iterable[store.JobRow]) -> int:
    """Enqueue deliveries on an open arq pool; returns how many arq accepted (not duplicates)."""
    now = clock.now()
    accepted = 0
    for job in jobs:
        defer = max((job.run_at - now).total_seconds(), 0.0)
        queued = await redis.enqueue_job(ARQ_FUNCTION, job.id, _job_id=arq_job_id(job, queue),
                                         _queue_name=queue, _defer_by=defer or None)
        accepted += queued is not None
    return accepted


async def _push_new_pool(url: str, queue: str, jobs: list[store.JobRow]) -> int:
    from arq.connections import create_pool

    redis = await create_pool(redis_settings(url), default_queue_name=queue)
    try:
        return await push(redis, queue, jobs)
    finally:
        await redis.aclose()


def _run_coroutine(coro: Coroutine[Any, Any, int]) -> int:
    """Run `coro` to completion from sync code, also from a thread whose event loop is running."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result(ENQUEUE_TIMEOUT)


def deliver_rows(site: Site, jobs: Iterable[store.JobRow]) -> list[Outcome]:
    """Hand pending jobs to the backend; in-process, run the due ones now (their outcomes)."""
    pending = [j for j in jobs if j.status == store.PENDING]
    if not pending:
        return []
    url = site.settings.redis_url
    if url:
        try:
            _run_coroutine(_push_new_pool(url, queue_name(site.settings), pending))
        except Exception as exc:  # noqa: BLE001 - the row stays pending; the sweep delivers it
            log.warning("could not enqueue %d job(s) on Redis (%s); the worker's sweep will run them", len(pending), exc)
        return []
    now = clock.now()
    return [run(site, j.id) for j in pending if j.run_at <= now]


def run(site: Site, job_id: int) -> Outcome:
    """Execute a job; a retry it asks for goes back to the backend (arq: deferred job)."""
    outcome = execute(site, job_id)
    if outcome.status == "retry" and outcome.job is not None and site.settings.redis_url:
        deliver_rows(site, [outcome.job])
    return outcome


def run_due(site: Site, limit: int = 100) -> list[Outcome]:
    """Run every job whose time has come (by the platform clock) and every abandoned one, after
    adding this period's run of each periodic job.

    Safe to call from several processes at once; each job runs once. Jobs a run reschedules
    (retries) are not run again in the same call.
    """
    from crm_platform.engine.jobs.periodic import schedule_periodic  # periodic -> api -> delivery

    schedule_periodic(site)
    table = site.schema.system["crm_job"]
    with site.engine.connect() as conn:
        ids = store.due_ids(conn, table, clock.now(), limit)
        conn.rollback()
    return [run(site, job_id) for job_id in ids]
