"""Date-based reminders (reminders/*.yaml): a periodic job finds the records whose date has come
near (warranty ending in 30 days, a follow-up due today) and runs the reminder's actions once
per record and date value, logged in crm_reminder_log. The day comes from the platform clock;
a day missed while nothing ran is caught up for `catch_up_days`."""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from crm_platform.engine import clock, jobs
from crm_platform.engine.automation import Automation
from crm_platform.engine.jobs.runner import JobContext
from crm_platform.engine.records.actor import Actor
from crm_platform.metadata.workflow_model import Reminder
from crm_platform.rules import RuleError

if TYPE_CHECKING:
    from crm_platform.engine.site import Site

log = logging.getLogger("crm_platform.reminders")

REMINDER_JOB = "reminder_scan"
SCAN_EVERY_SECONDS = 3600.0
ACTOR = Actor.system("reminder")


def _has_reminders(site: Site) -> bool:
    return bool(site.registry.extra.get("reminders"))


@jobs.job(REMINDER_JOB, max_attempts=3, backoff=120, every=SCAN_EVERY_SECONDS, only_if=_has_reminders)
def run_scan(ctx: JobContext) -> None:
    Reminders(ctx.site).scan()


def _day(value: Any) -> dt.date:
    return value.astimezone(dt.UTC).date() if isinstance(value, dt.datetime) else value


class Reminders:
    def __init__(self, site: Site) -> None:
        self.site = site
        self.log_table = site.schema.system["crm_reminder_log"]

    def all(self) -> tuple[Reminder, ...]:
        return tuple(self.site.registry.extra.get("reminders", ()))

    def window(self, reminder: Reminder, today: dt.date) -> tuple[dt.date, dt.date]:
        """The dates of the field that are due today: date + offset within [today - catch_up, today]."""
        latest = today - dt.timedelta(days=reminder.offset_days)
        return latest - dt.timedelta(days=reminder.catch_up_days), latest

    def candidates(self, conn: sa.Connection, reminder: Reminder, today: dt.date) -> list[dict[str, Any]]:
        table = self.site.schema.tables[reminder.entity]
        column = table.c[reminder.date_field]
        first, last = self.window(reminder, today)
        entity = self.site.registry.entity(reminder.entity)
        if entity.field(reminder.date_field).type == "datetime":
            start = dt.datetime.combine(first, dt.time(), dt.UTC)
            end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), dt.UTC)
            where = sa.and_(column >= start, column < end)
        else:
            where = column.between(first, last)
        rows = [dict(r) for r in conn.execute(sa.select(table).where(where, table.c.deleted_at.is_(None)).order_by(table.c.id)).mappings()]
        if not rows:
            return []
        logged = set(tuple(r) for r in conn.execute(sa.select(self.log_table.c.record_id, self.log_table.c.date_value).where(
            self.log_table.c.reminder == reminder.name, self.log_table.c.record_id.in_([r["id"] for r in rows]))).all())
        return [r for r in rows if (r["id"], _day(r[reminder.date_field]).isoformat()) not in logged]

    def scan(self) -> int:
        """Run every reminder due today; returns how many record reminders fired."""
        today = clock.today()
        fired = 0
        for reminder in self.all():
            with self.site.engine.connect() as conn:
                rows = self.candidates(conn, reminder, today)
                conn.rollback()
            for row in rows:
                fired += self.fire(reminder, row)
        return fired

    def _applies(self, conn: sa.Connection, reminder: Reminder, row: dict[str, Any]) -> bool:
        condition = self.site.rules.reminder_conditions.get(reminder.name)
        if condition is None:
            return True
        entity = self.site.registry.entity(reminder.entity)
        try:
            return bool(condition.test(self.site.records.hooks.context(conn, ACTOR, entity, row, None)))
        except RuleError as exc:
            log.warning("reminder %s: condition failed on %s %s: %s", reminder.name, reminder.entity, row["id"], exc.message)
            return False

    def fire(self, reminder: Reminder, row: dict[str, Any]) -> bool:
        """The reminder's actions for one record, once: False when it did not apply or already ran."""
        entity = self.site.registry.entity(reminder.entity)
        automation = Automation(self.site)
        job_ids: list[int] = []
        try:
            job_ids = self._fire(reminder, row, entity, automation)
        except sa.exc.IntegrityError:
            return False  # a concurrent scan logged it first (PostgreSQL: the unique log row)
        if job_ids is None:
            return False
        jobs.deliver(self.site, job_ids)
        return True

    def _fire(self, reminder: Reminder, row: dict[str, Any], entity: Any, automation: Automation) -> list[int] | None:
        job_ids: list[int] = []
        with self.site.engine.begin() as conn:
            if not self._applies(conn, reminder, row):
                return None
            date_value = _day(row[reminder.date_field]).isoformat()
            done = conn.execute(sa.select(self.log_table.c.id).where(self.log_table.c.reminder == reminder.name, self.log_table.c.record_id == row["id"],
                                                                     self.log_table.c.date_value == date_value)).first()
            if done is not None:
                return None  # another process fired it since the scan read its candidates
            conn.execute(self.log_table.insert().values(reminder=reminder.name, entity=reminder.entity, record_id=row["id"],
                                                        date_value=date_value, fired_at=clock.now()))
            _links, started = automation.create(conn, ACTOR, entity, row, (f"reminder:{reminder.name}", ""), reminder.creates)
            job_ids += started
            job_ids += automation.notify(conn, entity, row, reminder.notify)
        return job_ids


__all__ = ["REMINDER_JOB", "Reminders"]
