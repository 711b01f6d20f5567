"""Workflow timers: when a record enters a state with timers, a job per timer is scheduled; when
it comes due and the record is still in that same stay in the state, the platform fires the
timer's transition (SLA escalation). A record that moved on makes the job a no-op."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import sqlalchemy as sa

from crm_platform.engine import jobs
from crm_platform.engine.jobs.runner import JobContext
from crm_platform.engine.records.actor import Actor

if TYPE_CHECKING:
    from crm_platform.engine.site import Site

TIMER_JOB = "workflow_timer"


def schedule_timers(site: Site, conn: sa.Connection, entity: str, record_id: int, state: str, history_id: int) -> list[int]:
    """Write the timer jobs of `state` in the caller's transaction; returns their ids to deliver."""
    flow = site.workflows.of(entity)
    target = flow.state(state) if flow else None
    if target is None:
        return []
    ids = []
    for index, timer in enumerate(target.timers):
        key = f"wf:{entity}:{record_id}:{history_id}:{index}"
        payload = {"entity": entity, "record_id": record_id, "history_id": history_id, "transition": timer.fire}
        ids.append(jobs.enqueue(site, TIMER_JOB, payload, key=key, run_at=dt.timedelta(minutes=timer.after_minutes), conn=conn))
    return ids


@jobs.job(TIMER_JOB, max_attempts=3, backoff=60)
def run_timer(ctx: JobContext) -> None:
    site = ctx.site
    payload = ctx.payload
    history = site.schema.system["crm_workflow_history"]
    with site.engine.connect() as conn:
        latest = conn.execute(sa.select(sa.func.max(history.c.id)).where(history.c.entity == payload["entity"], history.c.record_id == payload["record_id"])).scalar()
    if latest != payload["history_id"]:
        return  # the record moved on (or was moved back) since the timer was set
    site.workflows.fire(Actor.system("timer"), payload["entity"], payload["record_id"], payload["transition"], comment="automatic: time ran out")
