"""In-app notifications (and their emails through the outbox): who a workflow's `notify` action
reaches, each user's unread list, marking them read."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from crm_platform.engine import jobs
from crm_platform.engine.column_types import utcnow
from crm_platform.metadata.workflow_model import NotifyAction

if TYPE_CHECKING:
    from crm_platform.engine.site import Site


class Notifications:
    def __init__(self, site: Site) -> None:
        self.site = site
        self.table = site.schema.system["crm_notification"]
        self.users = site.schema.system["crm_user"]

    def recipients(self, conn: sa.Connection, targets: tuple[str, ...], record: dict[str, Any]) -> list[int]:
        found: list[int] = []
        for target in targets:
            if target == "owner" and record.get("owner_id"):
                found.append(int(record["owner_id"]))
            elif target == "owner_manager" and record.get("owner_id"):
                manager = conn.execute(sa.select(self.users.c.manager_id).where(self.users.c.id == record["owner_id"])).scalar()
                if manager:
                    found.append(int(manager))
            elif target.startswith("role:"):
                policies = self.site.schema.system["crm_policy"]
                subjects = conn.execute(sa.select(policies.c.v0).where(policies.c.ptype == "g", policies.c.v1 == target[5:], policies.c.v0.startswith("user:"))).scalars()
                found += [int(s.split(":", 1)[1]) for s in subjects]
        return sorted(set(found))

    def send(self, conn: sa.Connection, action: NotifyAction, record: dict[str, Any], link: str, title: str) -> list[int]:
        """Write the notifications (and queue their emails) in the caller's transaction; returns job ids to deliver."""
        job_ids: list[int] = []
        now = utcnow()
        for user_id in self.recipients(conn, action.to, record):
            text_en, text_zh = f"{title}: {action.message.en}", f"{title}：{action.message.zh_cn}"
            conn.execute(self.table.insert().values(user_id=user_id, text_en=text_en, text_zh=text_zh, link=link, created_at=now))
            if action.email:
                email = conn.execute(sa.select(self.users.c.email).where(self.users.c.id == user_id)).scalar()
                if email:
                    queued = jobs.queue_email(self.site, email, text_en, f"{text_en}\n{text_zh}\n\n{link}", conn=conn)
                    job_ids.append(queued.job_id)
        return job_ids

    def unread(self, user_id: int | None, limit: int = 50) -> list[dict[str, Any]]:
        if user_id is None:
            return []
        query = sa.select(self.table).where(self.table.c.user_id == user_id, self.table.c.read_at.is_(None)).order_by(self.table.c.id.desc()).limit(limit)
        with self.site.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def mark_read(self, user_id: int, notification_id: int | None = None) -> None:
        with self.site.engine.begin() as conn:
            query = self.table.update().where(self.table.c.user_id == user_id, self.table.c.read_at.is_(None))
            if notification_id is not None:
                query = query.where(self.table.c.id == notification_id)
            conn.execute(query.values(read_at=utcnow()))


__all__ = ["Notifications"]
