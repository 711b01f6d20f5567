"""The workflow engine: which transitions a user may fire on a record, and firing one (who,
guard, required fields, actions on leaving and entering states, history) in one transaction."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from crm_platform.engine import jobs
from crm_platform.engine.column_types import utcnow
from crm_platform.engine.automation import Automation
from crm_platform.engine.workflow_jobs import schedule_timers
from crm_platform.engine.records.actor import Actor
from crm_platform.engine.records.errors import (
    Conflict,
    FieldError,
    Forbidden,
    NotFound,
    ValidationFailed,
)
from crm_platform.metadata.values import is_blank, parse_value
from crm_platform.metadata.workflow_model import Transition, Workflow
from crm_platform.rules import RuleError

if TYPE_CHECKING:
    from crm_platform.engine.site import Site


@dataclass
class Option:
    """A transition leaving the record's current state, as the user sees it."""

    transition: Transition
    allowed: bool
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        t = self.transition
        return {"name": t.name, "label": t.label.as_dict(), "to": t.to, "allowed": self.allowed, "reason": self.reason,
                "required": list(t.required), "comment": t.comment}


class WorkflowService:
    def __init__(self, site: Site) -> None:
        self.site = site
        self.by_entity: dict[str, Workflow] = {w.entity: w for w in site.registry.extra.get("workflows", ())}
        self.history_table = site.schema.system["crm_workflow_history"]

    def of(self, entity: str) -> Workflow | None:
        return self.by_entity.get(entity)

    def _flow(self, entity: str) -> Workflow:
        flow = self.of(entity)
        if flow is None:
            raise NotFound(f"{entity} has no workflow")
        return flow

    def may_fire(self, actor: Actor, flow: Workflow, transition: Transition, record: dict[str, Any]) -> str | None:
        """None when the actor may fire the transition on this record, else why not."""
        if actor.is_admin:
            return None
        state = flow.state(record.get(flow.field))
        if state is not None and state.approval is not None and transition.name == state.approval.approve:  # only the last step's decision approves
            if any(a["status"] == "pending" for a in self.site.approvals.of_record(flow.entity, record["id"])):
                return f"waiting for the approval '{state.approval.label.en}': it is decided step by step on the approvers' work lists"
        entity = self.site.registry.entity(flow.entity)
        if self.site.access.scope(actor, entity, f"transition:{transition.name}") is not None:
            return None
        if not transition.roles and not transition.relations:
            return None if self.site.access.scope(actor, entity, "update") is not None else "your role may not change this record"
        roles = set(self.site.access.store.grants(actor.user_id).roles) if actor.user_id is not None else set()
        if roles & set(transition.roles):
            return None
        if "owner" in transition.relations and record.get("owner_id") == actor.user_id:
            return None
        if "owner_manager" in transition.relations and record.get("owner_id") is not None:
            users = self.site.schema.system["crm_user"]
            with self.site.engine.connect() as conn:
                manager = conn.execute(sa.select(users.c.manager_id).where(users.c.id == record["owner_id"])).scalar()
            if manager is not None and manager == actor.user_id:
                return None
        who = [*(f"role {r}" for r in transition.roles), *(r.replace("_", "'s ") for r in transition.relations)]
        return "only " + ", ".join(who) + " may do this"

    def options(self, actor: Actor, entity: str, record_id: int) -> list[Option]:
        flow = self.of(entity)
        if flow is None:
            return []
        record = self._row(actor, entity, record_id)
        options = []
        for t in flow.leaving(record.get(flow.field)):
            reason = self.may_fire(actor, flow, t, record) or self._guard_refusal(actor, flow, t, record)
            options.append(Option(t, reason is None, reason))
        return options

    def _guard_refusal(self, actor: Actor, flow: Workflow, transition: Transition, record: dict[str, Any]) -> str | None:
        """Why the guard stops the transition on the record as it is (None when it passes, or when
        the transition asks for fields first: the values given then may satisfy it)."""
        guard = self.site.rules.guards.get((flow.name, transition.name))
        if guard is None or transition.required:
            return None
        entity = self.site.registry.entity(flow.entity)
        with self.site.engine.connect() as conn:
            try:
                passed = guard.test(self.site.records.hooks.context(conn, actor, entity, record, record))
            except RuleError as exc:
                return exc.message
        if passed:
            return None
        return transition.guard_message.get(actor.language) if transition.guard_message else f"the condition is not met: {transition.guard}"

    def _row(self, actor: Actor, entity: str, record_id: int) -> dict[str, Any]:
        with self.site.engine.connect() as conn:
            row = self.site.records._visible(conn, actor, self.site.registry.entity(entity), record_id, "read")
        return dict(row)

    def fire(self, actor: Actor, entity_name: str, record_id: int, name: str, values: dict[str, Any] | None = None, comment: str | None = None) -> dict[str, Any]:
        flow = self._flow(entity_name)
        entity = self.site.registry.entity(entity_name)
        transition = flow.transition(name)
        if transition is None:
            raise NotFound(f"the workflow of {entity_name} has no transition '{name}'")
        record = self._row(actor, entity_name, record_id)
        current = record.get(flow.field)
        if current not in transition.from_states and "*" not in transition.from_states:
            raise Conflict(f"'{transition.label.en}' cannot be done from state '{current}'", [FieldError(flow.field, f"the record is in state '{current}'", "workflow_state")])
        refusal = self.may_fire(actor, flow, transition, record)
        if refusal is not None:
            raise Forbidden(f"you may not '{transition.label.en}': {refusal}")
        given = dict(values or {})
        typed: dict[str, Any] = {}
        errors: list[FieldError] = []
        for key, raw in given.items():
            f = entity.field_map.get(key)
            if f is None:
                errors.append(FieldError(key, f"unknown field '{key}' of {entity_name}", "unknown_field"))
                continue
            try:
                typed[key] = parse_value(f, raw)
            except ValueError as exc:
                errors.append(FieldError(key, str(exc)))
        merged = {**record, **typed}
        for required in transition.required:
            if is_blank(merged.get(required)):
                f = entity.field(required)
                errors.append(FieldError(required, f"{f.label.en} is needed to '{transition.label.en}'", "required"))
        if transition.comment == "required" and not (comment or "").strip():
            errors.append(FieldError("comment", f"a comment is needed to '{transition.label.en}'", "required"))
        with self.site.engine.connect() as conn:
            hooks = self.site.records.hooks
            guard = self.site.rules.guards.get((flow.name, transition.name))
            if not errors and guard is not None:
                try:
                    passed = guard.test(hooks.context(conn, actor, entity, merged, record))
                except RuleError as exc:
                    passed, errors = False, [*errors, FieldError(flow.field, exc.message, "rule_error")]
                if not passed and not errors:
                    message = transition.guard_message.en if transition.guard_message else f"the condition of '{transition.label.en}' is not met: {transition.guard}"
                    errors.append(FieldError(flow.field, message, "guard"))
            if errors:
                raise ValidationFailed(errors)
            merged[flow.field] = transition.to
            actions = self._actions(conn, actor, flow, entity, current, transition.to, merged, record)
        payload = {key: _json(value) for key, value in {**typed, **actions}.items()}
        payload[flow.field] = transition.to
        payload["version"] = record["version"]

        timer_jobs: list[int] = []
        target_state = flow.state(transition.to)
        created: dict[str, int] = {}

        def create_related(conn: sa.Connection) -> dict[str, Any]:
            if target_state is None or not target_state.creates:
                return {}
            links, started = Automation(self.site).create(conn, actor, entity, {**record, **merged, **actions}, (flow.name, target_state.name), target_state.creates)
            timer_jobs.extend(started)
            created.update(links)
            return links

        def write_history(conn: sa.Connection, version: int) -> None:
            history_id = conn.execute(self.history_table.insert().values(entity=entity_name, record_id=record_id, workflow=flow.name, transition=transition.name,
                                                           from_state=current, to_state=transition.to, comment=(comment or None), changed_by=actor.user_id, changed_at=utcnow())
                                      .returning(self.history_table.c.id)).scalar_one()
            timer_jobs.extend(schedule_timers(self.site, conn, entity_name, record_id, transition.to, history_id))
            if target_state is not None:
                timer_jobs.extend(Automation(self.site).notify(conn, entity, {**record, **merged, **created}, target_state.notify))
            approvals = self.site.approvals
            approvals.cancel_pending(conn, entity_name, record_id)
            target = flow.state(transition.to)
            if target is not None and target.approval is not None:
                approvals.start(conn, flow, target.name, target.approval, record_id, actor.user_id)

        writer = actor if self.site.access.scope(actor, entity, "update") is not None else Actor(actor.user_id, actor.username, True, actor.unit_id, actor.language, actor.display_name)
        result = self.site.records.update(writer, entity_name, record_id, payload, via_workflow=True, on_write=write_history, before_write=create_related)
        jobs.deliver(self.site, timer_jobs)
        return result

    def start(self, conn: sa.Connection, flow: Workflow, record_id: int, actor: Actor, state: str | None = None) -> list[int]:
        """A new record entered the initial state (or `state`, for loaded seed and demo records):
        history, approval and timers of that state; returns the timer jobs to deliver."""
        state = state or flow.initial
        history_id = conn.execute(self.history_table.insert().values(entity=flow.entity, record_id=record_id, workflow=flow.name, transition="_start",
                                                                    from_state=None, to_state=state, changed_by=actor.user_id, changed_at=utcnow())
                                  .returning(self.history_table.c.id)).scalar_one()
        entered = flow.state(state)
        if entered is not None and entered.approval is not None:
            self.site.approvals.start(conn, flow, entered.name, entered.approval, record_id, actor.user_id)
        return schedule_timers(self.site, conn, flow.entity, record_id, state, history_id)

    def _actions(self, conn: sa.Connection, actor: Actor, flow: Workflow, entity: Any, leaving: str | None, entering: str, record: dict[str, Any], prior: dict[str, Any]) -> dict[str, Any]:
        values: dict[str, Any] = {}
        hooks = self.site.records.hooks
        for state_name, when in ((leaving, "on_exit"), (entering, "on_enter")):
            state = flow.state(state_name) if state_name else None
            if state is None:
                continue
            for action in (state.on_exit if when == "on_exit" else state.on_enter):
                expression = self.site.rules.state_actions[(flow.name, state.name, when, action.field)]
                try:
                    value = expression.evaluate(hooks.context(conn, actor, entity, {**record, **values}, prior))
                    values[action.field] = hooks._stored(entity, action.field, value)
                except (RuleError, ValueError) as exc:
                    raise ValidationFailed([FieldError(action.field, f"cannot set {action.field} on entering {entering}: {getattr(exc, 'message', exc)}", "rule_error")]) from None
        return values

    def history(self, entity: str, record_id: int) -> list[dict[str, Any]]:
        table, users = self.history_table, self.site.schema.system["crm_user"]
        query = (sa.select(table, users.c.username).select_from(table.outerjoin(users, users.c.id == table.c.changed_by))
                 .where(table.c.entity == entity, table.c.record_id == record_id).order_by(table.c.id))
        with self.site.engine.connect() as conn:
            return [{**dict(r), "changed_at": r.changed_at.isoformat()} for r in conn.execute(query).mappings()]


def _json(value: Any) -> Any:
    """A stored value back in the form the record service's payload accepts."""
    if value is None or isinstance(value, (str, int, bool, list)):
        return value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)
