"""The record service: create, update (with per-field merge), soft delete and restore; reading
(one record, lists, history) is its base class RecordReads (reads.py).

Each write runs the same named steps in one transaction: parse the payload, apply defaults,
check required fields and references, number, write, record history. Nothing is written
when any step fails.
"""

from __future__ import annotations

import builtins
import datetime as dt
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from crm_platform.engine.column_types import utcnow
from crm_platform.engine.duplicates import duplicate_check
from crm_platform.engine.records.actor import Actor
from crm_platform.engine.records.autonumber import next_numbers
from crm_platform.engine.records.errors import (
    BadRequest,
    Conflict,
    FieldError,
    NotFound,
    ValidationFailed,
)
from crm_platform.engine.records.history import (
    fields_changed_since,
    history_rows,
    write_history,
)
from crm_platform.engine.records.payload import ChildRows, Payload, parse_payload
from crm_platform.engine.records.reads import RecordReads
from crm_platform.engine.records.relations import RelationWriter
from crm_platform.engine.records.rule_hooks import RuleHooks
from crm_platform.metadata.model import Entity
from crm_platform.metadata.values import is_blank, parse_value

if TYPE_CHECKING:
    from crm_platform.engine.site import Site


class RecordService(RecordReads):
    def __init__(self, site: Site) -> None:
        self.site = site

    # -- helpers -----------------------------------------------------------------------
    @property
    def registry(self):  # type: ignore[no-untyped-def]
        return self.site.registry

    def entity(self, name: str) -> Entity:
        entity = self.site.registry.entities.get(name)
        if entity is None:
            raise NotFound(f"unknown entity '{name}'")
        return entity

    def table(self, entity: Entity) -> sa.Table:
        return self.site.schema.tables[entity.name]

    def _system(self, name: str) -> sa.Table:
        return self.site.schema.system[name]

    def _relations(self, conn: sa.Connection) -> RelationWriter:
        return RelationWriter(conn, self.site.registry, self.site.schema)

    # -- reads ---------------------------------------------------------------------------
    # -- writes --------------------------------------------------------------------------
    def create(self, actor: Actor, entity_name: str, data: Any, *, check_duplicates: bool = False) -> dict[str, Any]:
        """A new record. `check_duplicates` (the API's and the form's creates): a record that looks
        like one the actor may read (the pack's duplicate rules) is refused with PossibleDuplicate
        (409) and nothing is saved; `"ignore_duplicates": true | false` in `data` overrides it."""
        entity = self.entity(entity_name)
        if entity.child_of:
            raise BadRequest(f"{entity.name} rows are created through their {entity.child_of}")
        self.site.access.require(actor, entity, "create")
        data, duplicates = duplicate_check(self.site, actor, entity, data, check_duplicates)  # engine/duplicates.py
        payload = parse_payload(self.site.registry, entity, data)
        flow = self.site.workflows.of(entity.name)
        if flow is not None:
            given = payload.values.get(flow.field)
            if given is not None and given != flow.initial:
                payload.errors.append(FieldError(flow.field, f"a new {entity.label.en} starts in state '{flow.initial}'; other states are reached through transitions", "workflow"))
            payload.values[flow.field] = flow.initial
        self._check_field_writes(actor, entity, payload)
        timer_jobs: list[int] = []
        with self.site.engine.begin() as conn:
            record_id = self._insert(conn, actor, entity, payload)
            duplicates(conn, record_id)
            if flow is not None:
                timer_jobs = self.site.workflows.start(conn, flow, record_id, actor)
            record = self._get(conn, actor, entity, record_id)
        if timer_jobs:
            from crm_platform.engine import jobs

            jobs.deliver(self.site, timer_jobs)
        return record

    def _computed_writes(self, entity: Entity, sent: dict[str, Any], computed: dict[str, Any]) -> list[FieldError]:
        """Values sent for fields a `formula` rule computes that differ from what it computes:
        refused and named (sending the computed value back, as clients that echo a record do, is fine)."""
        rules = {rule.field for rule in self.site.rules.of(entity.name, "formula") if rule.field}
        return [FieldError(name, f"{entity.field(name).label.en} is computed by a rule ({computed.get(name)}) and cannot be set to {value}", "read_only")
                for name, value in sent.items() if name in rules and value is not None and name in computed and computed[name] != value]

    def _check_field_writes(self, actor: Actor, entity: Entity, payload: Payload) -> None:
        access = self.site.access
        access.check_writes(actor, entity, [*payload.values, *payload.children, *payload.links])
        for rows in payload.children.values():
            for _child_id, values in rows.rows:
                access.check_writes(actor, rows.entity, values)

    def _insert(self, conn: sa.Connection, actor: Actor, entity: Entity, payload: Payload, parent_id: int | None = None) -> int:
        values = self.new_values(conn, actor, entity, payload)
        return self.write_new(conn, actor, entity, [(payload, values)], parent_id)[0]

    def new_values(self, conn: sa.Connection, actor: Actor, entity: Entity, payload: Payload) -> dict[str, Any]:
        """What a new record is stored with (defaults, formulas), checked (required fields,
        references, rules); ValidationFailed naming every problem. Nothing is written."""
        values = dict(payload.values)
        self._apply_defaults(entity, values)
        hooks = self.hooks
        errors = list(payload.errors)
        sent = dict(values)
        errors += hooks.apply_defaults(conn, actor, entity, values)
        child_rows = self._child_rows_with_formulas(conn, actor, entity, payload, {}, errors)
        owned = {"owner_id": actor.user_id, "unit_id": actor.unit_id} if entity.owned else {}
        computed, formula_errors = hooks.compute_formulas(conn, actor, entity, {**values, **owned}, None, child_rows)
        values.update(computed)
        errors += formula_errors + self._computed_writes(entity, sent, computed)
        errors += self._check_required(entity, values, payload, creating=True)
        errors += self._relations(conn).check(entity, values, payload)
        if not errors:
            errors += hooks.check(conn, actor, entity, {**values, "owner_id": actor.user_id, "unit_id": actor.unit_id}, None, set(payload.values), child_rows)
        if errors:
            raise ValidationFailed(errors)
        return values

    def write_new(self, conn: sa.Connection, actor: Actor, entity: Entity, rows: Sequence[tuple[Payload, dict[str, Any]]],
                  parent_id: int | None = None) -> builtins.list[int]:
        """Insert new records checked by `new_values`, in order, with as few statements as they
        allow (an import writes hundreds at once): auto-numbers, system columns, child rows,
        links, history, roll-ups. Returns their ids."""
        now = utcnow()
        today = now.date()
        for f in entity.fields:
            if f.type == "auto_number":
                numbers = next_numbers(conn, self._system("crm_autonumber"), entity.name, f, today, len(rows))
                for (_payload, values), number in zip(rows, numbers, strict=True):
                    values[f.name] = number
        system: dict[str, Any] = {"created_at": now, "updated_at": now, "created_by": actor.user_id, "updated_by": actor.user_id, "version": 1}
        if entity.owned:
            system["owner_id"] = actor.user_id
            system["unit_id"] = actor.unit_id
        if parent_id is not None:
            system["parent_id"] = parent_id
        record_ids = insert_rows(conn, self.table(entity), [{**system, **values} for _payload, values in rows])
        relations = self._relations(conn)
        history: builtins.list[dict[str, Any]] = []
        for record_id, (payload, values) in zip(record_ids, rows, strict=True):
            changes: dict[str, tuple[Any, Any]] = {k: (None, v) for k, v in values.items() if v is not None}
            for name, children in payload.children.items():
                changes[name] = (None, relations.replace_children(actor, entity, record_id, children, self._insert_child))
            for name, ids in payload.links.items():
                changes[name] = (None, relations.replace_links(entity, name, record_id, ids))
            if len(rows) == 1:
                write_history(conn, self._system("crm_history"), entity.name, record_id, 1, "create", changes, actor.user_id, now)
            else:  # a batch: one insert for the history of all its records
                history += history_rows(entity.name, record_id, 1, "create", changes, actor.user_id, now)
        if history:
            conn.execute(self._system("crm_history").insert(), history)
        for record_id, (_payload, values) in zip(record_ids, rows, strict=True):
            self.hooks.propagate(conn, actor, entity, None, {**system, **values, "id": record_id})
        return record_ids

    @property
    def hooks(self) -> RuleHooks:
        return RuleHooks(self.site)

    def _child_rows_with_formulas(self, conn: sa.Connection, actor: Actor, entity: Entity, payload: Payload,
                                  current: dict[str, Any], errors: list[FieldError]) -> dict[str, list[dict[str, Any]]]:
        """The child rows as they will be (existing values merged with the payload's), with their
        formulas computed and written back into the payload so they are stored."""
        result: dict[str, list[dict[str, Any]]] = {}
        for name, rows in payload.children.items():
            existing = {row["id"]: row for row in current.get(name) or []}
            full_rows = []
            for index, (child_id, values) in enumerate(rows.rows):
                merged = {**_stored_row(rows.entity, existing.get(child_id, {})), **values}
                computed, child_errors = self.hooks.compute_formulas(conn, actor, rows.entity, merged, None)
                values.update(computed)
                merged.update(computed)
                errors.extend(FieldError(f"{name}[{index}].{e.field}", e.message, e.code) for e in child_errors)
                full_rows.append(merged)
            result[name] = full_rows
        return result

    def _insert_child(self, conn: sa.Connection, actor: Actor, child: Entity, values: dict[str, Any], parent_id: int) -> int:
        return self._insert(conn, actor, child, Payload(values=values), parent_id=parent_id)

    def _apply_defaults(self, entity: Entity, values: dict[str, Any]) -> None:
        for f in entity.fields:
            if f.name not in values and f.default is not None:
                values[f.name] = parse_value(f, f.default)
            if f.type == "money" and values.get(f.name) is not None and not values.get(f"{f.name}_currency"):
                values[f"{f.name}_currency"] = f.currency

    def _check_required(self, entity: Entity, values: dict[str, Any], payload: Payload, creating: bool) -> list[FieldError]:
        errors = []
        failed = {e.field for e in payload.errors}
        for f in entity.fields:
            if not f.required or f.name in failed:
                continue
            if f.type == "child_table":
                rows = payload.children.get(f.name)
                if creating and (rows is None or not rows.rows):
                    errors.append(FieldError(f.name, f"{f.label.en} needs at least one row", "required"))
            elif f.type == "many_to_many":
                if (creating or f.name in payload.links) and not payload.links.get(f.name):
                    errors.append(FieldError(f.name, f"{f.label.en} is required", "required"))
            elif (creating or f.name in values) and is_blank(values.get(f.name)):
                errors.append(FieldError(f.name, f"{f.label.en} is required", "required"))
        for name, rows in payload.children.items():
            for index, (child_id, row_values) in enumerate(rows.rows):
                for f in rows.entity.fields:
                    path = f"{name}[{index}].{f.name}"
                    if f.required and path not in failed and (child_id is None or f.name in row_values) and is_blank(row_values.get(f.name)):
                        errors.append(FieldError(path, f"{f.label.en} is required", "required"))
        return errors

    def update(self, actor: Actor, entity_name: str, record_id: int, data: Any, *, via_workflow: bool = False,
               on_write: Callable[[sa.Connection, int], None] | None = None,
               before_write: Callable[[sa.Connection], dict[str, Any]] | None = None) -> dict[str, Any]:
        """Apply the fields in `data` if none of them changed since data['version']; else 409.

        A workflow's state field changes only through its transitions (`via_workflow`);
        `before_write(conn)` runs first in the transaction and returns more (stored) values to
        write, e.g. the ids of records a transition created; `on_write(conn, new_version)` runs
        inside the same transaction after the write.
        """
        entity = self.entity(entity_name)
        base = data.get("version") if isinstance(data, dict) else None
        if isinstance(base, bool) or not isinstance(base, int):
            raise BadRequest("'version' is required: send the version of the record your change is based on", [FieldError("version", "required: the version your change is based on", "required")])
        payload = parse_payload(self.site.registry, entity, data)
        flow = self.site.workflows.of(entity.name)
        table = self.table(entity)
        with self.site.engine.begin() as conn:
            row = self._visible(conn, actor, entity, record_id, "update")
            if flow is not None and not via_workflow and flow.field in payload.values and payload.values[flow.field] != row[flow.field]:
                names = ", ".join(t.name for t in flow.leaving(row[flow.field])) or "none"
                raise ValidationFailed([FieldError(flow.field, f"{flow.field} changes only through the workflow's transitions (from {row[flow.field]}: {names})", "workflow")])
            self._check_field_writes(actor, entity, payload)
            current = self._get(conn, Actor.system(), entity, record_id)
            if before_write is not None and not payload.errors:
                payload.values.update(before_write(conn))
            errors = list(payload.errors)
            sent = dict(payload.values)
            prior = dict(row)
            merged = {**prior, **payload.values}
            child_rows = self._child_rows_with_formulas(conn, actor, entity, payload, current, errors)
            computed, formula_errors = self.hooks.compute_formulas(conn, actor, entity, merged, prior, child_rows or None)
            errors += formula_errors + self._computed_writes(entity, sent, computed)
            for name, value in computed.items():
                if prior.get(name) != value or name in payload.values:  # a computed value always wins over a sent one
                    payload.values[name] = value
                    merged[name] = value
            changes = self._diff(entity, row, current, payload)
            errors += self._check_required(entity, payload.values, payload, creating=False)
            errors += self._relations(conn).check(entity, payload.values, payload)
            if not errors and changes:
                written = {name for name in changes if name not in computed}
                errors += self.hooks.check(conn, actor, entity, merged, prior, written, child_rows or None)
            if errors:
                raise ValidationFailed(errors)
            if base > row["version"]:
                raise BadRequest(f"version {base} is newer than the record's version {row['version']}", [FieldError("version", "unknown version", "bad_version")])
            if base < row["version"] and changes:
                others = fields_changed_since(conn, self._system("crm_history"), entity.name, record_id, base)
                clashes = [name for name in changes if name in others or _currency_base(name) in others]
                if clashes:
                    details = [FieldError(name, f"{name} was changed by someone else since version {base}", "conflict",
                                          {"current": current.get(name), "yours": _json_value(changes[name][1])}) for name in clashes]
                    raise Conflict(f"{entity.name} {record_id} changed since version {base}: {', '.join(clashes)}", details)
            if not changes:
                return self._get(conn, actor, entity, record_id)
            now = utcnow()
            version = row["version"] + 1
            column_values = {k: v for k, v in payload.values.items() if k in changes}
            column_values.update(updated_at=now, updated_by=actor.user_id, version=version)
            conn.execute(table.update().where(table.c.id == record_id).values(**column_values))
            relations = self._relations(conn)
            for name, rows in payload.children.items():
                if name in changes:
                    relations.replace_children(actor, entity, record_id, rows, self._insert_child)
            for name, ids in payload.links.items():
                if name in changes:
                    relations.replace_links(entity, name, record_id, ids)
            write_history(conn, self._system("crm_history"), entity.name, record_id, version, "update", changes, actor.user_id, now)
            self.hooks.propagate(conn, actor, entity, prior, merged)
            if on_write is not None:
                on_write(conn, version)
            return self._get(conn, actor, entity, record_id)

    def _diff(self, entity: Entity, row: Any, current: dict[str, Any], payload: Payload) -> dict[str, tuple[Any, Any]]:
        changes: dict[str, tuple[Any, Any]] = {}
        for name, value in payload.values.items():
            if row[name] != value:
                changes[name] = (row[name], value)
        for name, rows in payload.children.items():
            new = [{"id": cid, **values} for cid, values in rows.rows]
            if _children_differ(current.get(name) or [], rows):
                changes[name] = (current.get(name), new)
        for name, ids in payload.links.items():
            if sorted(current.get(name) or []) != ids:
                changes[name] = (current.get(name), ids)
        return changes

    def delete(self, actor: Actor, entity_name: str, record_id: int) -> None:
        self._set_deleted(actor, entity_name, record_id, deleted=True)

    def restore(self, actor: Actor, entity_name: str, record_id: int) -> dict[str, Any]:
        return self._set_deleted(actor, entity_name, record_id, deleted=False)

    def _set_deleted(self, actor: Actor, entity_name: str, record_id: int, deleted: bool) -> dict[str, Any]:
        entity = self.entity(entity_name)
        if entity.child_of:
            raise BadRequest(f"{entity.name} rows are removed by updating their {entity.child_of}")
        table = self.table(entity)
        with self.site.engine.begin() as conn:
            row = self._visible(conn, actor, entity, record_id, "delete", include_deleted=True)
            if (row["deleted_at"] is not None) == deleted:
                state = "in the recycle bin" if not deleted else "found"
                raise NotFound(f"{entity.name} {record_id} not {state}")
            now = utcnow()
            version = row["version"] + 1
            conn.execute(table.update().where(table.c.id == record_id).values(deleted_at=now if deleted else None, version=version, updated_at=now, updated_by=actor.user_id))
            write_history(conn, self._system("crm_history"), entity.name, record_id, version, "delete" if deleted else "restore", {}, actor.user_id, now)
            self.hooks.propagate(conn, actor, entity, dict(row), None)
            return self._get(conn, actor, entity, record_id, include_deleted=True)


def _currency_base(name: str) -> str:
    return name[: -len("_currency")] if name.endswith("_currency") else name + "_currency"


def _json_value(value: Any) -> Any:
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if value is not None and not isinstance(value, (str, int, float, bool, list, dict)):
        return str(value)
    return value


def _children_differ(current: list[dict[str, Any]], rows: ChildRows) -> bool:
    if len(current) != len(rows.rows):
        return True
    by_id = {c["id"]: c for c in current}
    for cid, values in rows.rows:
        if cid is None or cid not in by_id:
            return True
        existing = by_id[cid]
        for key, value in values.items():
            if _json_value(value) != existing.get(key) and str(value) != str(existing.get(key)):
                return True
    return False


def _stored_row(entity: Entity, row: dict[str, Any]) -> dict[str, Any]:
    """A child row as returned by the service (JSON forms) back to stored values."""
    result: dict[str, Any] = {}
    for key, value in row.items():
        f = entity.field_map.get(key)
        if f is None or value is None:
            result[key] = value
            continue
        try:
            result[key] = parse_value(f, value) if f.type not in ("child_table", "many_to_many") else value
        except ValueError:
            result[key] = value
    return result


def insert_rows(conn: sa.Connection, table: sa.Table, rows: list[dict[str, Any]]) -> list[int]:
    """INSERT the rows in order, one executemany per run of rows naming the same columns; their ids."""
    ids: list[int] = []
    start = 0
    while start < len(rows):
        end = start + 1
        while end < len(rows) and rows[end].keys() == rows[start].keys():
            end += 1
        if end - start == 1:
            ids.append(conn.execute(table.insert().values(**rows[start]).returning(table.c.id)).scalar_one())
        else:
            ids += conn.execute(table.insert().returning(table.c.id, sort_by_parameter_order=True), rows[start:end]).scalars().all()
        start = end
    return ids
