"""The rules in the record lifecycle: defaults on new records, formulas recomputed and stored on
save, validations, and conditional require / readonly / hide, all evaluated on the server in the
write's transaction. Also the form conditions the screens re-evaluate as the user types."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from crm_platform.engine import clock
from crm_platform.engine.records.actor import Actor
from crm_platform.engine.records.aggregates import affected_owners, run_aggregate
from crm_platform.engine.records.errors import FieldError
from crm_platform.metadata.model import Entity
from crm_platform.metadata.values import is_blank, parse_value
from crm_platform.rules import EvalContext, Relation, RuleError, UserInfo, percent_to_stored
from crm_platform.rules.types import UNIT_ENTITY

if TYPE_CHECKING:
    from crm_platform.engine.site import Site


@dataclass
class Conditions:
    """Which fields a record's conditions hide, require or make read-only right now."""

    hidden: set[str] = field(default_factory=set)
    required: set[str] = field(default_factory=set)
    readonly: set[str] = field(default_factory=set)  # "*" means every field


class RuleHooks:
    def __init__(self, site: Site) -> None:
        self.site = site

    @property
    def rules(self) -> Any:
        return self.site.rules

    # -- context --------------------------------------------------------------------------
    def user_info(self, actor: Actor) -> UserInfo:
        roles: tuple[str, ...] = ()
        if actor.user_id is not None:  # the assigned roles first, then the roles they include
            store = self.site.access.store
            direct = tuple(store.roles_of(actor.user_id))
            roles = direct + tuple(r for r in store.grants(actor.user_id).roles if r not in direct)
        return UserInfo(actor.user_id, actor.display_name or actor.username, None, roles[0] if roles else ("admin" if actor.is_admin else None), roles, actor.unit_id)

    def context(self, conn: sa.Connection, actor: Actor, entity: Entity, record: dict[str, Any], prior: dict[str, Any] | None,
                child_rows: dict[str, list[dict[str, Any]]] | None = None) -> EvalContext:
        tables = self.site.schema.tables

        def fetch(entity: str, record_id: Any) -> dict[str, Any] | None:
            if record_id is not None and entity == UNIT_ENTITY:
                units = self.site.schema.system["crm_org_unit"]
                unit = conn.execute(sa.select(units.c.id, units.c.name, units.c.path).where(units.c.id == record_id)).mappings().first()
                return dict(unit) if unit else None
            if record_id is None or entity not in tables:
                return None
            row = conn.execute(sa.select(tables[entity]).where(tables[entity].c.id == record_id, tables[entity].c.deleted_at.is_(None))).mappings().first()
            return dict(row) if row else None

        def lookup(entity: str, key_field: str, key_value: Any, return_field: str) -> Any:
            table = tables.get(entity)
            if table is None or key_field not in table.c or return_field not in table.c:
                return None
            query = sa.select(table.c[return_field]).where(table.c[key_field] == key_value, table.c.deleted_at.is_(None)).order_by(table.c.id).limit(1)
            return conn.execute(query).scalar()

        def children(relation: Relation, owner: dict[str, Any]) -> Sequence[dict[str, Any]]:
            if child_rows is not None and relation.kind == "child" and relation.field in child_rows and owner is record:
                return child_rows[relation.field]
            table = tables.get(relation.entity)
            owner_id = owner.get("id")
            if table is None or owner_id is None:
                return ()
            if relation.kind == "child":
                query = sa.select(table).where(table.c.parent_id == owner_id)
            elif relation.kind == "reverse":
                query = sa.select(table).where(table.c[relation.field] == owner_id)
            else:
                junction = self.site.schema.junctions.get((entity.name, relation.field))
                if junction is None:
                    return ()
                query = sa.select(table).where(table.c.id.in_(sa.select(junction.c.target_id).where(junction.c.source_id == owner_id)))
            return [dict(r) for r in conn.execute(query.where(table.c.deleted_at.is_(None))).mappings()]

        def aggregate(query: Any, context: EvalContext) -> Any:
            return run_aggregate(self.site, conn, query, context)

        return EvalContext(record, prior, self.user_info(actor), clock=clock.now, fetch=fetch, lookup=lookup, children=children,
                           aggregate=aggregate)

    # -- lifecycle --------------------------------------------------------------------------
    def apply_defaults(self, conn: sa.Connection, actor: Actor, entity: Entity, values: dict[str, Any]) -> list[FieldError]:
        errors = []
        for rule in self.rules.of(entity.name, "default"):
            name = rule.field
            if name is None or not is_blank(values.get(name)):
                continue
            try:
                value = rule.expression.evaluate(self.context(conn, actor, entity, dict(values), None))
                values[name] = self._stored(entity, name, value)
            except (RuleError, ValueError) as exc:
                errors.append(FieldError(name, f"default of {name} failed: {_message(exc)}", "rule_error"))
        return errors

    def compute_formulas(self, conn: sa.Connection, actor: Actor, entity: Entity, record: dict[str, Any], prior: dict[str, Any] | None,
                         child_rows: dict[str, list[dict[str, Any]]] | None = None) -> tuple[dict[str, Any], list[FieldError]]:
        """New values of the entity's formula fields and `formula` statements (in dependency order)."""
        computed: dict[str, Any] = {}
        errors: list[FieldError] = []
        working = dict(record)
        expressions = [(name, expr) for name, expr in self.rules.formula_fields.get(entity.name, [])]
        expressions += [(rule.field, rule.expression) for rule in self.rules.of(entity.name, "formula") if rule.field]
        for name, expression in expressions:
            try:
                value = expression.evaluate(self.context(conn, actor, entity, working, prior, child_rows))
                stored = self._stored(entity, name, value)
            except (RuleError, ValueError) as exc:
                errors.append(FieldError(name, f"cannot compute {name}: {_message(exc)}", "rule_error"))
                continue
            working[name] = stored
            computed[name] = stored
            f = entity.field_map.get(name)
            if f is not None and f.type == "money" and stored is not None and not working.get(f"{name}_currency"):
                computed[f"{name}_currency"] = f.currency
                working[f"{name}_currency"] = f.currency
        return computed, errors

    def dependents(self, entity_name: str) -> list[tuple[Entity, str]]:
        """(entity, reference field) pairs whose formulas roll up rows of `entity_name` through
        that reference (e.g. company.deal_count = count(deal) depends on deal.company)."""
        found: set[tuple[str, str]] = set()
        for owner, items in self.rules.formula_fields.items():
            for _name, expression in items:
                for relation in expression.checked.dependencies.relations:
                    if relation.kind == "reverse" and relation.entity == entity_name:
                        found.add((owner, relation.field))
        for rule in self.rules.ruleset.rules:
            if rule.kind == "formula":
                for relation in rule.expression.checked.dependencies.relations:
                    if relation.kind == "reverse" and relation.entity == entity_name:
                        found.add((rule.entity, relation.field))
        return [(self.site.registry.entity(owner), ref) for owner, ref in sorted(found)]

    def propagate(self, conn: sa.Connection, actor: Actor, entity: Entity, before: dict[str, Any] | None, after: dict[str, Any] | None) -> None:
        """Recompute the roll-up formulas of the records this row points at (before and after the change)."""
        from crm_platform.engine.column_types import utcnow
        from crm_platform.engine.records.history import write_history

        targets: dict[str, set[Any]] = {}
        for owner, ref in self.dependents(entity.name):
            targets.setdefault(owner.name, set()).update({row.get(ref) for row in (before, after) if row is not None} - {None})
        states = [row for row in (before, after) if row is not None and row.get("deleted_at") is None]
        if states:
            context = self.context(conn, actor, entity, states[-1], None)
            for name, ids in affected_owners(self.site, conn, context, entity.name, states).items():
                targets.setdefault(name, set()).update(ids)
        for owner_name, ids in sorted(targets.items()):
            owner = self.site.registry.entity(owner_name)
            table = self.site.schema.tables[owner.name]
            for owner_id in sorted(ids):
                row = conn.execute(sa.select(table).where(table.c.id == owner_id)).mappings().first()
                if row is None:
                    continue
                prior = dict(row)
                computed, errors = self.compute_formulas(conn, actor, owner, dict(prior), prior)
                changes = {k: (prior.get(k), v) for k, v in computed.items() if prior.get(k) != v}
                if errors or not changes:
                    continue
                version = prior["version"] + 1
                conn.execute(table.update().where(table.c.id == owner_id).values(**{k: v for k, (_, v) in changes.items()}, version=version, updated_at=utcnow()))
                write_history(conn, self.site.schema.system["crm_history"], owner.name, owner_id, version, "update", changes, None, utcnow())

    def _stored(self, entity: Entity, name: str, value: Any) -> Any:
        f = entity.field(name)
        if value is None:
            return None
        if f.value_type == "percent":
            value = percent_to_stored(value)
        if isinstance(value, Decimal) and f.value_type in ("decimal", "money", "percent"):
            default_scale = {"money": 2, "percent": 4}.get(f.value_type, 4)
            scale = f.scale if f.scale is not None else default_scale
            value = value.quantize(Decimal(1).scaleb(-scale), rounding=ROUND_HALF_UP)
        return parse_value(f, value) if f.type != "formula" else _coerce_formula(f, value)

    def check(self, conn: sa.Connection, actor: Actor, entity: Entity, record: dict[str, Any], prior: dict[str, Any] | None,
              written: set[str], child_rows: dict[str, list[dict[str, Any]]] | None = None) -> list[FieldError]:
        """Failing validations, unmet conditional requirements, writes to read-only or hidden fields."""
        errors: list[FieldError] = []
        ctx = self.context(conn, actor, entity, record, prior, child_rows)
        for rule in self.rules.of(entity.name, "validate"):
            try:
                failed = rule.expression.test(ctx)
            except RuleError as exc:
                errors.append(FieldError(rule.on_fields[0] if rule.on_fields else "_record", f"{rule.message}: {_message(exc)}", "rule_error"))
                continue
            if failed:
                target = rule.on_fields[0] if rule.on_fields else "_record"
                errors.append(FieldError(target, rule.message or "this record breaks a rule", "rule", {"rule": f"{rule.file}:{rule.line}"}))
        conditions = self.conditions(conn, actor, entity, record, prior)
        for name in sorted(conditions.required):
            if is_blank(record.get(name)) and not any(e.field == name for e in errors):
                f = entity.field_map.get(name)
                errors.append(FieldError(name, f"{f.label.en if f else name} is required now", "required"))
        if prior is not None and conditions.readonly:
            locked = written if "*" in conditions.readonly else written & conditions.readonly
            for name in sorted(locked):
                errors.append(FieldError(name, f"{name} cannot be changed now: the record is locked by a rule", "read_only"))
        for name in sorted(written & conditions.hidden):
            if not is_blank(record.get(name)):
                errors.append(FieldError(name, f"{name} does not apply to this record (it is hidden by a rule)", "hidden"))
        return errors

    def conditions(self, conn: sa.Connection, actor: Actor, entity: Entity, record: dict[str, Any], prior: dict[str, Any] | None) -> Conditions:
        """hide/require are evaluated on the record as it would be; readonly on the record as it was."""
        result = Conditions()
        ctx = self.context(conn, actor, entity, record, prior)
        before = self.context(conn, actor, entity, prior, None) if prior is not None else None
        for kind, target in (("hide", result.hidden), ("require", result.required), ("readonly", result.readonly)):
            for rule in self.rules.of(entity.name, kind):
                context = before if kind == "readonly" else ctx
                if context is None or rule.field is None:
                    continue
                try:
                    if rule.expression.test(context):
                        target.add(rule.field)
                except RuleError:
                    continue
        return result


def _coerce_formula(f: Any, value: Any) -> Any:
    """A formula field's computed value in its result type."""
    import dataclasses

    shadow = dataclasses.replace(f, type=f.result_type or "text")
    if shadow.type == "text" and not isinstance(value, str):
        value = str(value)
    return parse_value(shadow, value)


def _message(exc: Exception) -> str:
    return exc.message if isinstance(exc, RuleError) else str(exc)


__all__ = ["Conditions", "RuleHooks"]
