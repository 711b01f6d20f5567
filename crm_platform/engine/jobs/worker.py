"""`crm-platform worker`: an arq worker that runs the platform's jobs from Redis.

It serves one arq function, `crm_job(job_id)`, which runs the crm_job row through
`runner.execute` in a thread (job functions are synchronous), and a poll every
CRM_JOB_SWEEP_SECONDS that runs `run_due` (timers when the clock was moved, retries whose
arq delivery was lost, jobs abandoned by a killed worker once their lease expires).
`run_worker` keeps it running across Redis outages (`supervisor.py`): it waits for Redis with
a growing delay and starts taking jobs again once Redis is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from crm_platform.engine.jobs.delivery import (
    ARQ_FUNCTION,
    push,
    queue_name,
    redis_settings,
    run_due,
)
from crm_platform.engine.jobs.registry import DEFAULT_TIMEOUT, load_job_modules, registered
from crm_platform.engine.jobs.runner import execute
from crm_platform.engine.jobs.supervisor import Backoff, supervise
from crm_platform.engine.jobs.sweeper import sweep_interval

if TYPE_CHECKING:
    from arq.worker import Worker

    from crm_platform.engine.site import Site

log = logging.getLogger("crm_platform.jobs.worker")


async def crm_job(ctx: dict[str, Any], job_id: int) -> str:
    """The arq function: run one crm_job; a retry goes back on the queue, deferred."""
    site: Site = ctx["site"]
    outcome = await asyncio.to_thread(execute, site, job_id)
    if outcome.status == "retry" and outcome.job is not None:
        await push(ctx["redis"], ctx["queue"], [outcome.job])
    return outcome.status


async def _sweep_forever(site: Site, interval: float) -> None:
    from crm_platform.engine.site_reload import RegistryWatcher

    watcher = RegistryWatcher(site)
    while True:
        try:
            await asyncio.to_thread(watcher.check)  # jobs run on the metadata the database has
            outcomes = await asyncio.to_thread(run_due, site)
            for outcome in outcomes:
                if outcome.status == "retry" and outcome.job is not None:
                    log.info("job %s will be retried at %s", outcome.job.key, outcome.job.run_at)
        except Exception:  # noqa: BLE001 - keep sweeping; the next round may succeed
            log.exception("the due-job sweep failed")
        await asyncio.sleep(interval)


async def _startup(ctx: dict[str, Any]) -> None:
    ctx["sweeper"] = asyncio.create_task(_sweep_forever(ctx["site"], ctx["sweep_interval"]))
    log.info("worker ready: queue %s, jobs %s", ctx["queue"], ", ".join(sorted(registered())))


async def _shutdown(ctx: dict[str, Any]) -> None:
    task = ctx.get("sweeper")
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def make_worker(site: Site, *, sweep_seconds: float | None = None, burst: bool = False, max_jobs: int = 10) -> Worker:
    """An arq Worker for this site (needs site.settings.redis_url). It connects once, without
    arq's retries, and ends on a Redis error: `run_worker` decides when to try again."""
    from arq.worker import Worker, func

    url = site.settings.redis_url
    if not url:
        raise ValueError("the worker needs a Redis URL (CRM_REDIS_URL)")
    load_job_modules()
    longest = max((spec.timeout for spec in registered().values()), default=DEFAULT_TIMEOUT)
    queue = queue_name(site.settings)
    ctx = {"site": site, "queue": queue,
           "sweep_interval": sweep_seconds if sweep_seconds is not None else sweep_interval()}
    return Worker(
        functions=[func(crm_job, name=ARQ_FUNCTION, timeout=longest + 60, max_tries=1000)],
        queue_name=queue,
        redis_settings=redis_settings(url),
        on_startup=_startup,
        on_shutdown=_shutdown,
        ctx=ctx,
        burst=burst,
        max_jobs=max_jobs,
        keep_result=0,  # the crm_job row holds the result; arq keeps nothing that blocks a job id
        poll_delay=0.2,
    )


def run_worker(site: Site, *, sweep_seconds: float | None = None, burst: bool = False,
               backoff: Backoff | None = None) -> None:
    """Run the worker until SIGINT/SIGTERM (or, with `burst`, until the queue is empty), through
    Redis outages: reconnecting after `backoff` delays (default 1 s doubling up to 30 s)."""
    from arq.connections import RedisSettings

    url = site.settings.redis_url
    if not url:
        raise ValueError("the worker needs a Redis URL (CRM_REDIS_URL)")
    redis = RedisSettings.from_dsn(url)
    where = redis.unix_socket_path or f"{redis.host}:{redis.port}/{redis.database}"
    asyncio.run(supervise(lambda: make_worker(site, sweep_seconds=sweep_seconds, burst=burst), where,
                          backoff=backoff, on_shutdown=_shutdown))
