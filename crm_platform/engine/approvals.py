"""Approvals: started when a record enters a workflow state that asks for one, decided step by
step by the approver each step names (a role, a role in the record's unit or above, the owner's
manager, a named user); the outcome fires the workflow's approve or reject transition."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from crm_platform.engine.column_types import utcnow
from crm_platform.engine.records.actor import Actor
from crm_platform.engine.records.errors import Conflict, Forbidden, NotFound
from crm_platform.metadata.workflow_model import ApprovalAction, Workflow

if TYPE_CHECKING:
    from crm_platform.engine.site import Site


class ApprovalService:
    def __init__(self, site: Site) -> None:
        self.site = site
        self.table = site.schema.system["crm_approval"]

    # -- lifecycle (called by the workflow engine inside its transaction) --------------------
    def cancel_pending(self, conn: sa.Connection, entity: str, record_id: int) -> None:
        conn.execute(self.table.update().where(self.table.c.entity == entity, self.table.c.record_id == record_id, self.table.c.status == "pending")
                     .values(status="cancelled", decided_at=utcnow()))

    def start(self, conn: sa.Connection, flow: Workflow, state: str, approval: ApprovalAction, record_id: int, requested_by: int | None) -> None:
        self._step(conn, flow, state, approval, record_id, 0, requested_by)

    def _step(self, conn: sa.Connection, flow: Workflow, state: str, approval: ApprovalAction, record_id: int, index: int, requested_by: int | None) -> None:
        step = approval.steps[index]
        conn.execute(self.table.insert().values(entity=flow.entity, record_id=record_id, workflow=flow.name, state=state, name=approval.name,
                                                step=index, steps=len(approval.steps), approver_kind=step.kind, approver_value=step.value,
                                                status="pending", requested_by=requested_by, created_at=utcnow()))

    # -- who decides -------------------------------------------------------------------------
    def may_decide(self, actor: Actor, row: Any, record: dict[str, Any]) -> bool:
        if actor.is_admin:
            return True
        if actor.user_id is None:
            return False
        kind, value = row["approver_kind"], row["approver_value"]
        if kind == "user":
            return actor.username == value
        if kind == "owner_manager":
            users = self.site.schema.system["crm_user"]
            with self.site.engine.connect() as conn:
                manager = conn.execute(sa.select(users.c.manager_id).where(users.c.id == record.get("owner_id"))).scalar()
            return manager is not None and manager == actor.user_id
        roles = set(self.site.access.store.grants(actor.user_id).roles)
        if value not in roles:
            return False
        if kind == "role":
            return True
        units = self.site.schema.system["crm_org_unit"]  # role_in_unit: the record's unit or a unit above it
        with self.site.engine.connect() as conn:
            path = conn.execute(sa.select(units.c.path).where(units.c.id == record.get("unit_id"))).scalar()
        return path is not None and actor.unit_id is not None and f"/{actor.unit_id}/" in path

    def _record(self, row: Any) -> dict[str, Any]:
        table = self.site.schema.tables[row["entity"]]
        with self.site.engine.connect() as conn:
            record = conn.execute(sa.select(table).where(table.c.id == row["record_id"])).mappings().first()
        return dict(record) if record else {}

    def pending_for(self, actor: Actor) -> list[dict[str, Any]]:
        """The pending steps this actor may decide, oldest first, with the record's title."""
        with self.site.engine.connect() as conn:
            rows = conn.execute(sa.select(self.table).where(self.table.c.status == "pending").order_by(self.table.c.created_at, self.table.c.id)).mappings().all()
        result = []
        for row in rows:
            if row["entity"] not in self.site.registry.entities:
                continue
            record = self._record(row)
            if record and record.get("deleted_at") is None and self.may_decide(actor, row, record):
                entity = self.site.registry.entity(row["entity"])
                title = record.get(entity.title_field or "id") or f"#{row['record_id']}"
                flow = self.site.workflows.of(row["entity"])
                state = flow.state(row["state"]) if flow else None
                label = state.approval.label.as_dict() if state and state.approval else {"en": row["name"], "zh-CN": row["name"]}
                result.append({**dict(row), "created_at": row["created_at"].isoformat(), "title": str(title), "entity_label": entity.label.as_dict(), "label": label})
        return result

    def of_record(self, entity: str, record_id: int) -> list[dict[str, Any]]:
        users = self.site.schema.system["crm_user"]
        query = (sa.select(self.table, users.c.username.label("decided_by_name")).select_from(self.table.outerjoin(users, users.c.id == self.table.c.decided_by))
                 .where(self.table.c.entity == entity, self.table.c.record_id == record_id).order_by(self.table.c.id))
        with self.site.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    # -- deciding ---------------------------------------------------------------------------
    def decide(self, actor: Actor, approval_id: int, approve: bool, comment: str | None = None) -> dict[str, Any]:
        with self.site.engine.connect() as conn:
            row = conn.execute(sa.select(self.table).where(self.table.c.id == approval_id)).mappings().first()
        if row is None:
            raise NotFound(f"approval {approval_id} not found")
        record = self._record(row)
        if not record or not self.may_decide(actor, row, record):
            raise NotFound(f"approval {approval_id} not found") if not record else Forbidden("you are not the approver of this step")
        if row["status"] != "pending":
            raise Conflict(f"this approval was already {row['status']}")
        flow = self.site.workflows.of(row["entity"])
        state = flow.state(row["state"]) if flow else None
        action = state.approval if state else None
        if flow is None or action is None:
            raise Conflict("the workflow no longer asks for this approval")
        decider = Actor(actor.user_id, actor.username, True, actor.unit_id, actor.language, actor.display_name)  # the outcome is the approver's to fire
        with self.site.engine.begin() as conn:
            done = conn.execute(self.table.update().where(self.table.c.id == approval_id, self.table.c.status == "pending")
                                .values(status="approved" if approve else "rejected", decided_by=actor.user_id, decided_at=utcnow(), comment=comment or None))
            if done.rowcount == 0:
                raise Conflict("this approval was decided meanwhile")
            if approve and row["step"] + 1 < row["steps"]:
                self._step(conn, flow, row["state"], action, row["record_id"], row["step"] + 1, row["requested_by"])
                return {"status": "approved", "next_step": row["step"] + 1}
        outcome = action.approve if approve else action.reject
        record = self.site.workflows.fire(decider, row["entity"], row["record_id"], outcome, comment=comment)
        return {"status": "approved" if approve else "rejected", "record": record}
