"""The due-job sweep as a background thread, for a site that runs its jobs in-process (no Redis).

    sweeper = Sweeper(site).start()    # every CRM_JOB_SWEEP_SECONDS (default 5): run_due(site)
    ...
    sweeper.stop()

For a Starlette app: `Starlette(..., lifespan=lambda app: sweeping(site))` starts one when the
site has no Redis URL (with Redis, `crm-platform worker` sweeps instead).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from crm_platform.engine.jobs.delivery import run_due

if TYPE_CHECKING:
    from crm_platform.engine.site import Site

log = logging.getLogger("crm_platform.jobs")

DEFAULT_INTERVAL = 5.0


def sweep_interval() -> float:
    return float(os.environ.get("CRM_JOB_SWEEP_SECONDS") or DEFAULT_INTERVAL)


class Sweeper:
    """Calls `run_due(site)` every `interval` seconds in a daemon thread until stopped."""

    def __init__(self, site: Site, interval: float | None = None) -> None:
        self.site = site
        self.interval = interval if interval is not None else sweep_interval()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.sweeps = 0

    def start(self) -> Sweeper:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="crm-job-sweeper", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                run_due(self.site)
            except Exception:  # noqa: BLE001 - a broken sweep is logged and tried again next time
                log.exception("the due-job sweep failed")
            self.sweeps += 1
            self._stop.wait(self.interval)


@asynccontextmanager
async def sweeping(site: Site, interval: float | None = None) -> AsyncIterator[dict[str, Sweeper]]:
    """Run a Sweeper for the lifetime of an app when the site has no Redis.

    Yields Starlette lifespan state: {"job_sweeper": the Sweeper}, or {} with Redis (the
    worker sweeps then)."""
    if site.settings.redis_url:
        yield {}
        return
    sweeper = Sweeper(site, interval).start()
    try:
        yield {"job_sweeper": sweeper}
    finally:
        sweeper.stop()
