"""Running the actions that workflow states and reminders share, inside the caller's
transaction: creating related records (owned by the source record's owner, linked back when
the action says so) and notifying people."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from crm_platform.engine.notifications import Notifications
from crm_platform.engine.records.actor import Actor
from crm_platform.engine.records.errors import FieldError, ValidationFailed
from crm_platform.engine.records.payload import Payload
from crm_platform.metadata.model import Entity
from crm_platform.metadata.workflow_model import CreateAction, NotifyAction
from crm_platform.rules import RuleError

if TYPE_CHECKING:
    from crm_platform.engine.site import Site


class Automation:
    def __init__(self, site: Site) -> None:
        self.site = site

    def owner_actor(self, conn: sa.Connection, record: dict[str, Any], fallback: Actor) -> Actor:
        """Who owns what an action creates: the source record's owner, else whoever acted."""
        owner_id = record.get("owner_id")
        if owner_id is None:
            return fallback
        users = self.site.schema.system["crm_user"]
        row = conn.execute(sa.select(users.c.username, users.c.unit_id, users.c.display_name).where(users.c.id == owner_id)).first()
        if row is None:
            return fallback
        return Actor(int(owner_id), row.username, False, row.unit_id, fallback.language, row.display_name or row.username)

    def create(self, conn: sa.Connection, actor: Actor, source: Entity, record: dict[str, Any], key: tuple[str, str],
               actions: tuple[CreateAction, ...]) -> tuple[dict[str, int], list[int]]:
        """Run `actions` (of workflow/reminder `key[0]`, state `key[1]`) for `record`.

        Returns the link values to store on the source record and the timer jobs of the
        created records' workflows (to deliver after the commit). A value that does not fit
        fails the whole transaction with the action's field named.
        """
        links: dict[str, int] = {}
        job_ids: list[int] = []
        if not actions:
            return links, job_ids
        records = self.site.records
        hooks = records.hooks
        owner = self.owner_actor(conn, record, actor)
        working = dict(record)
        for index, action in enumerate(actions):
            if action.link and working.get(action.link) is not None:
                continue  # already done (a lead converted once stays converted)
            target = self.site.registry.entity(action.entity)
            values: dict[str, Any] = {}
            context = hooks.context(conn, actor, source, working, None)
            for value in action.values:
                expression = self.site.rules.create_values[(key[0], key[1], index, value.field)]
                try:
                    values[value.field] = hooks._stored(target, value.field, expression.evaluate(context))
                except (RuleError, ValueError) as exc:
                    raise ValidationFailed([FieldError(f"{action.entity}.{value.field}", f"cannot create {target.label.en}: {value.field}: {getattr(exc, 'message', exc)}", "rule_error")]) from None
            flow = self.site.workflows.of(target.name)
            if flow is not None:
                values[flow.field] = flow.initial
            try:
                new_id = records._insert(conn, owner, target, Payload(values=values))
            except ValidationFailed as exc:
                raise ValidationFailed([FieldError(f"{action.entity}.{e.field}", f"cannot create {target.label.en}: {e.message}", e.code) for e in exc.errors]) from None
            if flow is not None:
                job_ids += self.site.workflows.start(conn, flow, new_id, owner)
            if action.link:
                links[action.link] = new_id
                working[action.link] = new_id
        return links, job_ids

    def notify(self, conn: sa.Connection, entity: Entity, record: dict[str, Any], actions: tuple[NotifyAction, ...]) -> list[int]:
        """Notifications (and queued emails) for `record`; returns the email jobs to deliver."""
        if not actions:
            return []
        title = str(record.get(entity.title_field or "id") or f"#{record.get('id')}")
        notifier = Notifications(self.site)
        job_ids: list[int] = []
        for action in actions:
            job_ids += notifier.send(conn, action, record, f"/app/{entity.name}/{record['id']}", title)
        return job_ids


__all__ = ["Automation"]
