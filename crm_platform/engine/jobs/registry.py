"""Job functions by name: `@job("send_email")` registers one; the runner looks them up.

A job function is plain synchronous code `fn(ctx: JobContext) -> None` (it uses the site's
SQLAlchemy engine like the rest of the platform); it runs in the web process (no Redis) or
in `crm-platform worker` (Redis), the same function either way.

Job functions live in modules that must be imported before a job runs: the platform's own
are listed in `BUILTIN_JOB_MODULES`; more (a pack's, a test's) can be named in the
environment variable `CRM_JOB_MODULES` (comma-separated import paths), which the worker and
`load_job_modules()` import.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from crm_platform.engine.jobs.runner import JobContext
    from crm_platform.engine.site import Site

JobFunction = Callable[["JobContext"], Any]

BUILTIN_JOB_MODULES = ("crm_platform.engine.jobs.outbox", "crm_platform.engine.workflow_jobs", "crm_platform.engine.reminders",
                       "crm_platform.engine.scoring", "crm_platform.engine.imports")

DEFAULT_MAX_ATTEMPTS = 5
DEFAULT_BACKOFF = 30.0  # seconds before the 2nd attempt; doubles each time
MAX_BACKOFF = 3600.0
DEFAULT_TIMEOUT = 300.0  # seconds a running job holds its lease


@dataclass(frozen=True)
class JobSpec:
    """A registered job function and how it is retried.

    `timeout` is the lease: how long an attempt may run before the job is considered
    abandoned (its worker died) and another delivery may take it over. `every` (seconds) makes
    it periodic: the due-job sweep adds one run per period (see `periodic.py`).
    """

    name: str
    func: JobFunction
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    backoff: float = DEFAULT_BACKOFF
    timeout: float = DEFAULT_TIMEOUT
    every: float | None = None
    only_if: Callable[[Site], bool] | None = None  # a periodic job runs on sites where this holds

    def delay_after(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based): backoff * 2**(n-1)."""
        return min(self.backoff * 2 ** max(attempt - 1, 0), MAX_BACKOFF)


_REGISTRY: dict[str, JobSpec] = {}


def job(name: str, *, max_attempts: int = DEFAULT_MAX_ATTEMPTS, backoff: float = DEFAULT_BACKOFF,
        timeout: float = DEFAULT_TIMEOUT, every: float | None = None,
        only_if: Callable[[Site], bool] | None = None) -> Callable[[JobFunction], JobFunction]:
    """Register `fn(ctx)` as the job `name` (names are unique across the platform); with
    `every` (seconds) the sweep also runs it once per period of the platform clock."""
    if max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")

    def register(fn: JobFunction) -> JobFunction:
        existing = _REGISTRY.get(name)
        if existing is not None and existing.func is not fn and _qualname(existing.func) != _qualname(fn):
            raise ValueError(f"a job named '{name}' is already registered ({_qualname(existing.func)})")
        _REGISTRY[name] = JobSpec(name, fn, max_attempts, backoff, timeout, every, only_if)
        return fn

    return register


def _qualname(fn: Callable[..., Any]) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


def get_spec(name: str) -> JobSpec | None:
    load_job_modules()
    return _REGISTRY.get(name)


def registered() -> dict[str, JobSpec]:
    load_job_modules()
    return dict(_REGISTRY)


def job_modules() -> tuple[str, ...]:
    extra = tuple(m.strip() for m in os.environ.get("CRM_JOB_MODULES", "").split(",") if m.strip())
    return BUILTIN_JOB_MODULES + extra


def load_job_modules() -> None:
    """Import the modules that register job functions (cheap after the first call)."""
    for module in job_modules():
        importlib.import_module(module)
