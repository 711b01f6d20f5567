"""Keeping `crm-platform worker` alive across Redis outages.

arq's `Worker` ends (and with it the process) on the first Redis error: at start-up when Redis
is not there, and while running when Redis goes away. `supervise` runs one arq worker after
another instead: when Redis is lost it logs it, stops the worker (and its due-job sweep), waits
with a growing delay (1 s, 2 s, 4 s ... up to 30 s, each logged), and starts a new worker once
Redis answers again. Nothing is lost meanwhile: the crm_job rows are the truth, and the new
worker's sweep runs every due job whose delivery Redis forgot.

SIGINT / SIGTERM stop it at any time (while a worker runs: arq's own shutdown; while waiting for
Redis: at once).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

if TYPE_CHECKING:
    from arq.typing import StartupShutdown
    from arq.worker import Worker

log = logging.getLogger("crm_platform.jobs.worker")

# What losing Redis looks like from arq and redis-py (refused, reset, closed by the server, timed out).
REDIS_ERRORS: tuple[type[BaseException], ...] = (RedisConnectionError, RedisTimeoutError, OSError, asyncio.TimeoutError)
CLOSE_ERRORS: tuple[type[BaseException], ...] = (asyncio.CancelledError, *REDIS_ERRORS)
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@dataclass
class Backoff:
    """Delays between reconnection attempts: `first`, doubling up to `longest` (seconds)."""

    first: float = 1.0
    longest: float = 30.0
    _next: float = 0.0

    def __post_init__(self) -> None:
        if self.first <= 0 or self.longest < self.first:
            raise ValueError(f"backoff needs 0 < first <= longest (got first={self.first}, longest={self.longest})")
        self._next = self.first

    def next_delay(self) -> float:
        delay = self._next
        self._next = min(self._next * 2, self.longest)
        return delay

    def reset(self) -> None:
        self._next = self.first


async def _teardown(worker: Worker, on_shutdown: Callable[[dict[str, Any]], Awaitable[None]] | None) -> None:
    """Stop a worker whose Redis is gone (arq's `close()` needs Redis): cancel its arq tasks (a job
    already running in a thread finishes its own database work), stop the sweep, drop the pool."""
    for task in list(worker.tasks.values()):
        task.cancel()
    await asyncio.gather(*worker.tasks.values(), return_exceptions=True)
    if on_shutdown is not None:
        await on_shutdown(worker.ctx)
    pool = worker.ctx.get("redis")
    if pool is not None:
        with contextlib.suppress(*REDIS_ERRORS):
            await pool.aclose(close_connection_pool=True)


async def supervise(new_worker: Callable[[], Worker], where: str, *, backoff: Backoff | None = None,
                    on_shutdown: Callable[[dict[str, Any]], Awaitable[None]] | None = None) -> None:
    """Run `new_worker()` workers until a stop signal (or a burst worker's normal end), starting a
    new one whenever Redis was lost. `where` names Redis in the log (host:port, no password);
    `on_shutdown` is the workers' on_shutdown hook, called when a worker is dropped without Redis."""
    backoff = backoff or Backoff()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    outage = _Outage(where, loop.time)
    while True:
        worker = new_worker()  # installs arq's signal handlers: a graceful stop of the running worker
        worker.on_stop = lambda _sig: stop.set()
        worker.on_startup = cast("StartupShutdown", outage.announcing(worker.on_startup, backoff))
        try:
            await worker.async_run()
        except asyncio.CancelledError:
            if not stop.is_set():
                raise
        except REDIS_ERRORS as exc:
            await _teardown(worker, on_shutdown)
            if stop.is_set():
                return
            for sig in STOP_SIGNALS:  # no worker runs until the next attempt: a signal ends the wait
                loop.add_signal_handler(sig, stop.set)
            delay = backoff.next_delay()
            outage.lost(exc, delay)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            if stop.is_set():
                log.info("stopped while waiting for Redis at %s", outage.where)
                return
            continue
        try:  # stopped by a signal, or a burst worker found the queue empty
            await worker.close()
        except CLOSE_ERRORS:
            await _teardown(worker, on_shutdown)
        return


@dataclass
class _Outage:
    """Logs an outage once when it starts, each wait, and its end (when a worker connected again)."""

    where: str
    clock: Callable[[], float]
    since: float | None = None

    def lost(self, exc: BaseException, delay: float) -> None:
        detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if self.since is None:
            self.since = self.clock()
            log.warning("Redis at %s is unreachable (%s); taking no jobs until it is back", self.where, detail)
        log.warning("Redis at %s unreachable for %.0f s; next attempt in %.0f s", self.where,
                    self.clock() - self.since, delay)

    def announcing(self, startup: Callable[[dict[str, Any]], Awaitable[None]] | None,
                   backoff: Backoff) -> Callable[[dict[str, Any]], Awaitable[None]]:
        """An on_startup hook (arq calls it once connected) that logs the end of an outage first."""

        async def connected(ctx: dict[str, Any]) -> None:
            if self.since is not None:
                log.warning("Redis at %s is back after %.0f s; taking jobs again", self.where, self.clock() - self.since)
                self.since = None
            backoff.reset()
            if startup is not None:
                await startup(ctx)

        return connected
