"""Periodic jobs: a job registered with `every=` seconds runs once per period of the platform
clock. The due-job sweep (`run_due`, in the worker or the app's sweeper) calls
`schedule_periodic`, which writes the period's job under the key `<name>:<period number>`;
keys make it once per period however many processes sweep, and a moved clock starts new
periods at once (tests jump a day and the daily work runs)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from crm_platform.engine import clock
from crm_platform.engine.jobs.api import add_job
from crm_platform.engine.jobs.registry import registered

if TYPE_CHECKING:
    from crm_platform.engine.site import Site

_written: dict[tuple[int, str], str] = {}  # (id(site), job name) -> key last written by this process
_lock = threading.Lock()


def period_key(name: str, every: float) -> str:
    return f"{name}:{int(clock.now().timestamp() // every)}"


def schedule_periodic(site: Site) -> int:
    """Write this period's job of each periodic job function not yet written; returns how many."""
    wanted = [(spec.name, period_key(spec.name, spec.every)) for spec in registered().values()
              if spec.every and (spec.only_if is None or spec.only_if(site))]
    with _lock:
        todo = [(name, key) for name, key in wanted if _written.get((id(site), name)) != key]
    if not todo:
        return 0
    with site.engine.begin() as conn:
        for name, key in todo:
            add_job(site, conn, name, {}, key=key)
    with _lock:
        for name, key in todo:
            _written[(id(site), name)] = key
    return len(todo)
