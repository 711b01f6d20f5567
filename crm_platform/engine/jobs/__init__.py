"""Background jobs: arq on Redis when CRM_REDIS_URL is set, the same functions in-process without.

The API the platform uses (see `api.py` for the rules about keys and transactions):

    enqueue(site, name, payload, key=None, run_at=None, *, conn=None) -> job id
    cancel(site, key)                       a pending timer
    deliver(site, job_ids)                  after a commit, for jobs written with conn=
    after_commit(site)                      collects jobs written in transactions, delivers them
    queue_email(site, to, subject, body, key=None, *, conn=None) -> QueuedEmail
    run_due(site)                           the due-job sweep (timers, retries, abandoned jobs)
    list_jobs(site, status=None), job_counts(site), get_job(site, id), retry(site, id)
    @job("name", max_attempts=5, backoff=30, timeout=300) def fn(ctx: JobContext) -> None

`crm-platform worker` runs them from Redis (`worker.py`); without Redis the app runs due jobs
with a `Sweeper` thread (`sweeper.py`). Time comes from `crm_platform.engine.clock`.
"""

from crm_platform.engine.jobs.api import (
    AfterCommit,
    add_job,
    after_commit,
    cancel,
    deliver,
    enqueue,
    get_job,
    job_counts,
    list_jobs,
    retry,
)
from crm_platform.engine.jobs.delivery import run_due
from crm_platform.engine.jobs.outbox import QueuedEmail, list_outbox, queue_email, release_held
from crm_platform.engine.jobs.registry import JobSpec, job, registered
from crm_platform.engine.jobs.runner import JobContext, LeaseLost, Outcome
from crm_platform.engine.jobs.sweeper import Sweeper

__all__ = [
    "AfterCommit", "JobContext", "JobSpec", "LeaseLost", "Outcome", "QueuedEmail", "Sweeper", "add_job",
    "after_commit", "cancel", "deliver", "enqueue", "get_job", "job", "job_counts", "list_jobs",
    "list_outbox", "queue_email", "registered", "release_held", "retry", "run_due",
]
