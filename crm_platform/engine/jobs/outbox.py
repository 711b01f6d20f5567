"""Email through an outbox: `queue_email` writes a `crm_outbox` row and a `send_email` job;
the job sends it over SMTP and retries with backoff when the server fails.

SMTP settings come from the environment when the job runs:

    CRM_SMTP_HOST      the server; unset: emails stay in the outbox with status `held` (logged)
    CRM_SMTP_PORT      default 25
    CRM_SMTP_FROM      the sender, default crm@localhost
    CRM_SMTP_USERNAME / CRM_SMTP_PASSWORD   log in when set
    CRM_SMTP_STARTTLS  1 to upgrade the connection with STARTTLS
    CRM_SMTP_TIMEOUT   seconds, default 30

Outbox statuses: queued -> sent, held (no SMTP host), failed (attempts exhausted; last_error kept).
Sending is at least once: a worker killed between the server's "250 OK" and the outbox update
sends that email again on the next attempt.
"""

from __future__ import annotations

import logging
import os
import smtplib
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import TYPE_CHECKING, Any, NamedTuple

import sqlalchemy as sa

from crm_platform.engine import clock
from crm_platform.engine.jobs import store
from crm_platform.engine.jobs.api import add_job, deliver
from crm_platform.engine.jobs.registry import job
from crm_platform.engine.jobs.runner import JobContext

if TYPE_CHECKING:
    from crm_platform.engine.site import Site

log = logging.getLogger("crm_platform.jobs.email")

QUEUED, SENT, HELD, FAILED = "queued", "sent", "held", "failed"


@dataclass(frozen=True)
class SmtpSettings:
    host: str | None
    port: int = 25
    sender: str = "crm@localhost"
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    timeout: float = 30.0

    @classmethod
    def from_env(cls) -> SmtpSettings:
        env = os.environ
        return cls(
            host=env.get("CRM_SMTP_HOST") or None,
            port=int(env.get("CRM_SMTP_PORT") or 25),
            sender=env.get("CRM_SMTP_FROM") or "crm@localhost",
            username=env.get("CRM_SMTP_USERNAME") or None,
            password=env.get("CRM_SMTP_PASSWORD") or None,
            starttls=(env.get("CRM_SMTP_STARTTLS") or "").lower() in ("1", "true", "yes"),
            timeout=float(env.get("CRM_SMTP_TIMEOUT") or 30),
        )


class QueuedEmail(NamedTuple):
    outbox_id: int
    job_id: int


def _table(site: Site) -> sa.Table:
    return site.schema.system["crm_outbox"]


def _addresses(to: str | Iterable[str]) -> list[str]:
    items = [to] if isinstance(to, str) else list(to)
    addresses = [a.strip() for item in items for a in item.split(",") if a.strip()]
    if not addresses:
        raise ValueError("an email needs at least one recipient")
    return addresses


def queue_email(site: Site, to: str | Iterable[str], subject: str, body: str, key: str | None = None,
                *, conn: sa.Connection | None = None) -> QueuedEmail:
    """Put an email in the outbox and enqueue its `send_email` job.

    `key` makes it idempotent: queueing the same key again returns the first email. With
    `conn` both rows are written in your transaction and delivered after it (`deliver`).
    """
    if conn is None:
        with site.engine.begin() as own:
            queued = queue_email(site, to, subject, body, key, conn=own)
        deliver(site, [queued.job_id])
        return queued
    table = _table(site)
    key = key or f"email:{uuid.uuid4().hex}"
    store.insert_ignoring_conflict(conn, table, {
        "key": key, "to_address": ", ".join(_addresses(to)), "subject": subject, "body": body,
        "status": QUEUED, "attempts": 0, "created_at": clock.now(),
    })
    outbox_id = conn.execute(sa.select(table.c.id).where(table.c.key == key)).scalar_one()
    send = add_job(site, conn, "send_email", {"outbox_id": outbox_id}, key=f"send_email:{key}")
    return QueuedEmail(outbox_id, send.id)


def list_outbox(site: Site, status: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
    """Emails newest first, optionally of one status (queued, sent, held, failed)."""
    table = _table(site)
    query = sa.select(table).order_by(table.c.id.desc()).limit(limit)
    if status is not None:
        query = query.where(table.c.status == status)
    with site.engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(query)]
        conn.rollback()
    return rows


def release_held(site: Site) -> int:
    """Queue the held emails again (after CRM_SMTP_HOST was set); returns how many."""
    table = _table(site)
    with site.engine.begin() as conn:
        held = conn.execute(sa.select(table.c.id, table.c.key).where(table.c.status == HELD)).all()
        conn.execute(table.update().where(table.c.status == HELD).values(status=QUEUED))
        stamp = clock.now().strftime("%Y%m%dT%H%M%S%f")
        ids = [add_job(site, conn, "send_email", {"outbox_id": oid}, key=f"send_email:{key}:{stamp}").id
               for oid, key in held]
    deliver(site, ids)
    return len(ids)


def build_message(settings: SmtpSettings, row: Any) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.sender
    message["To"] = row.to_address
    message["Subject"] = row.subject
    message["Date"] = format_datetime(clock.now())
    domain = settings.sender.rpartition("@")[2] or "localhost"
    message["Message-ID"] = make_msgid(domain=domain)
    message.set_content(row.body)
    return message


def _send(settings: SmtpSettings, message: EmailMessage) -> None:
    assert settings.host is not None
    with smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout) as smtp:
        if settings.starttls:
            smtp.starttls()
        if settings.username:
            smtp.login(settings.username, settings.password or "")
        smtp.send_message(message)


@job("send_email", max_attempts=5, backoff=60, timeout=120)
def send_email(ctx: JobContext) -> None:
    """Send one outbox email; a failure is recorded on the email and the job retries."""
    site, table = ctx.site, _table(ctx.site)
    outbox_id = ctx.payload["outbox_id"]
    with site.engine.connect() as conn:
        row = conn.execute(sa.select(table).where(table.c.id == outbox_id)).first()
        conn.rollback()
    if row is None or row.status == SENT:
        return
    settings = SmtpSettings.from_env()
    if not settings.host:
        log.warning("email %s to %s held in the outbox: CRM_SMTP_HOST is not set", outbox_id, row.to_address)
        with site.engine.begin() as conn:
            conn.execute(table.update().where(table.c.id == outbox_id).values(
                status=HELD, last_error="CRM_SMTP_HOST is not set"))
        return
    message = build_message(settings, row)
    try:
        _send(settings, message)
    except (smtplib.SMTPException, OSError) as exc:
        with site.engine.begin() as conn:
            conn.execute(table.update().where(table.c.id == outbox_id).values(
                attempts=table.c.attempts + 1, last_error=f"{type(exc).__name__}: {exc}"[:4000],
                status=FAILED if ctx.last_attempt else QUEUED))
        raise
    with site.engine.begin() as conn:
        conn.execute(table.update().where(table.c.id == outbox_id).values(
            status=SENT, sent_at=clock.now(), attempts=table.c.attempts + 1, last_error=None,
            message_id=message["Message-ID"]))
        ctx.complete(conn)
    log.info("email %s sent to %s", outbox_id, row.to_address)
