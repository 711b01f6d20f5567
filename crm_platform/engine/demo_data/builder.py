"""Generating rows: a pool, or one root row and everything under it, in profile order.

Each root row has its own random stream (seeded from the run's seed and the row's index), so
the data does not depend on how rows are grouped into batches. A row is filled in the order a
save through the record service would: system columns and owner, the link to the row it is
generated under and references to its other ancestors, the profile's generators (in the order
written), field defaults, workflow on-enter actions, rule defaults, type defaults for required
fields still empty, child rows, formulas, auto-number; then it is checked (see row_rules.py).
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from crm_platform.engine.demo_data.model import (
    DemoDataError,
    EntityPlan,
    FieldPlan,
    OwnerGroup,
    Profile,
)
from crm_platform.engine.demo_data.numbering import Numbering
from crm_platform.engine.demo_data.row_rules import EntityRules
from crm_platform.engine.demo_data.rows import Row, Scope
from crm_platform.metadata.model import Field
from crm_platform.metadata.values import is_blank, parse_value

if TYPE_CHECKING:
    from crm_platform.engine.site import Site

SPAN_DAYS = 730  # created_at of rows the profile gives none: within the last two years


class Builder:
    def __init__(self, site: Site, profile: Profile, scope: Scope, numbering: Numbering, units: dict[int, int | None], seed_base: int) -> None:
        self.profile = profile
        self.scope = scope
        self.numbering = numbering
        self.units = units
        self.seed_base = seed_base
        self.rules: dict[str, EntityRules] = {}
        self.child_field: dict[str, str] = {}
        self.auto_refs: dict[str, list[Field]] = {}
        self.person_refs: dict[str, frozenset[str]] = {}  # user / org-unit fields filled from the owner
        self.numbered: dict[str, list[str]] = {}
        self.defaults: dict[str, list[tuple[str, Any]]] = {}
        self.required: dict[str, list[Field]] = {}
        self.output: dict[str, list[dict[str, Any]]] = {}
        self.taken: dict[tuple[str, str], set[Any]] = {}
        for plan in _all_plans(profile.plans):
            entity = plan.entity
            self.rules[plan.name] = EntityRules(site, entity)
            self.auto_refs[plan.name] = [f for f in entity.fields if f.type == "reference" and f.name not in plan.mentioned and f.name != plan.link]
            self.person_refs[plan.name] = frozenset(f.name for f in self.auto_refs[plan.name] if f.entity in ("user", "org_unit"))
            self.numbered[plan.name] = numbering.fields_of(plan.name)
            self.defaults[plan.name] = [(f.name, parse_value(f, f.default)) for f in entity.fields if f.name not in plan.mentioned and f.default is not None]
            self.required[plan.name] = [f for f in entity.fields if f.required]
            for child in plan.children:
                self.child_field[child.name] = next(f.name for f in entity.fields if f.type == "child_table" and f.entity == child.name)

    # -- what to generate ------------------------------------------------------------------------
    def pool(self, plan: EntityPlan, rows: int) -> None:
        rng = random.Random(self.seed_base ^ 0x5EED_9001 ^ hash_name(plan.name))
        for _ in range(rows):
            self._row(plan, None, rng)

    def roots(self, start: int, stop: int) -> None:
        for index in range(start, stop):
            self.root(index)

    def root(self, index: int) -> None:
        """Root row number `index` of this run and everything generated under it."""
        rng = random.Random((self.seed_base << 24) + index)
        self.scope.new_root()
        self._row(self.profile.root, None, rng)
        for plan in self.profile.plans:
            if plan.mode != "per":
                continue
            for parent in list(self.scope.under_root.get(plan.per or "", ())):
                if plan.when is not None and not plan.when.test(parent.context()):
                    continue
                assert plan.count is not None
                for _ in range(plan.count.draw(rng)):
                    self._row(plan, parent, rng)

    def take_output(self) -> dict[str, list[dict[str, Any]]]:
        out, self.output = self.output, {}
        return out

    # -- one row -------------------------------------------------------------------------------
    def _row(self, plan: EntityPlan, parent: Row | None, rng: random.Random) -> Row:
        entity = plan.entity
        values: dict[str, Any] = {"id": self.scope.allocate(plan.name)}
        row = Row(plan, values, parent, self.scope)
        owner = self._owner(plan, parent, rng)
        values["created_by"] = values["updated_by"] = owner
        if entity.owned:
            values["owner_id"], values["unit_id"] = owner, self.units.get(owner) if owner is not None else None
        if parent is not None:
            values["created_at"] = parent.values["created_at"]
            if plan.link is not None:
                values[plan.link] = parent.id
        else:
            values["created_at"] = self.scope.now - dt.timedelta(seconds=int(rng.random() * SPAN_DAYS * 86400))
        for f in self.auto_refs[plan.name]:
            if f.entity == "user":  # a person field the profile leaves alone: the record's owner
                values[f.name] = owner
                continue
            if f.entity == "org_unit":  # a unit field: the owner's unit
                values[f.name] = self.units.get(owner) if owner is not None else None
                continue
            found = row.ancestor(f.entity or "")
            if found is not None:
                values[f.name] = found.id
        self.scope.batch[(plan.name, values["id"])] = values  # readable by its child rows' rules
        self._fields(plan, row, rng)
        rules = self.rules[plan.name]
        self._defaults(plan, row, rules, rng)
        rules.clear_hidden(row, self.person_refs[plan.name])
        for child in plan.children:
            rows: list[dict[str, Any]] = []
            if child.when is None or child.when.test(row.context()):
                assert child.count is not None
                rows = [self._row(child, row, rng).values for _ in range(child.count.draw(rng))]
            values[self.child_field[child.name]] = rows
        rules.compute_formulas(row)
        created: dt.datetime = values["created_at"]
        for name in self.numbered[plan.name]:
            values[name] = self.numbering.next(plan.name, name, created.date())
        values["updated_at"] = created
        values["version"] = 1
        rules.currencies(values)
        problems = rules.problems(row, plan.mentioned)
        if problems:
            shown = {k: v for k, v in values.items() if not isinstance(v, list) and v is not None and k not in ("created_by", "updated_by", "version", "updated_at")}
            raise DemoDataError(f"{plan.place.where()}: a generated {plan.name} {problems[0]}" + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else "")
                                + f"; the row: {_describe(shown)}")
        self.scope.add(row)
        self.output.setdefault(plan.name, []).append(values)
        return row

    def _owner(self, plan: EntityPlan, parent: Row | None, rng: random.Random) -> int | None:
        group: OwnerGroup | None = plan.owner
        if group is None:
            while parent is not None:
                if parent.values.get("owner_id") is not None or parent.plan.entity.owned:
                    return parent.values.get("owner_id")
                parent = parent.parent
            return None
        ids = group.user_ids
        return ids[int(rng.random() * len(ids))] if ids else None

    def _fields(self, plan: EntityPlan, row: Row, rng: random.Random) -> None:
        values = row.values
        for fp in plan.fields:
            value = self._draw(fp, row, rng)
            if fp.field is not None and fp.field.unique and value is not None:
                value = self._unique(plan, fp, row, rng, value)
            if fp.field is None:  # created_at
                if value is not None:
                    values["created_at"] = min(value, self.scope.now)
            else:
                values[fp.name] = value

    @staticmethod
    def _draw(fp: FieldPlan, row: Row, rng: random.Random) -> Any:
        for alternative in fp.alternatives:
            if alternative.when is not None and not alternative.when.test(row.context()):
                continue
            if alternative.blank and rng.random() < alternative.blank:
                return None
            return alternative.produce(rng, row)
        return None

    def _unique(self, plan: EntityPlan, fp: FieldPlan, row: Row, rng: random.Random, value: Any) -> Any:
        """Draw again until the value is not taken (unique fields); give up after 200 tries."""
        key = (plan.name, fp.name)
        if key not in self.taken:
            self.taken[key] = self.scope.existing_values(plan.name, fp.name)
        taken = self.taken[key]
        for _ in range(200):
            if value is None or value not in taken:
                if value is not None:
                    taken.add(value)
                return value
            value = self._draw(fp, row, rng)
        raise DemoDataError(f"{fp.place.where()}: {plan.name}.{fp.name} must be unique and the profile gives too few different values "
                            f"({len(taken)} taken); widen the word lists or lower the count")

    def _defaults(self, plan: EntityPlan, row: Row, rules: EntityRules, rng: random.Random) -> None:
        values = row.values
        mentioned = plan.mentioned
        for name, default in self.defaults[plan.name]:
            if name not in values:
                values[name] = default
        flow = rules.flow
        if flow is not None and (is_blank(values.get(flow.field)) or flow.state(values[flow.field]) is None) and flow.field not in mentioned:
            values[flow.field] = flow.initial
        rules.enter_state(row, mentioned)
        rules.apply_defaults(row)
        for f in self.required[plan.name]:
            if is_blank(values.get(f.name)):
                value = self._type_default(plan, f, row, rng)
                if value is not None:
                    values[f.name] = value

    def _type_default(self, plan: EntityPlan, f: Field, row: Row, rng: random.Random) -> Any:
        """A value for a required field the profile and the rules leave empty."""
        kind, rid = f.value_type, row.id
        if f.type in ("child_table", "many_to_many", "auto_number", "formula", "file"):
            return None
        if kind == "reference":
            found = row.ancestor(f.entity or "")
            if found is not None:
                return found.id
            pool = self.scope.pool(f.entity or "")
            if not pool:
                raise DemoDataError(f"{plan.place.where()}: {plan.name}.{f.name} is required and there are no {f.entity} records to pick from "
                                    f"(load the seed data with `crm-platform db sync`, or generate {f.entity} in the profile)")
            return pool.draw(rng)
        if kind in ("text", "long_text"):
            return f"{plan.entity.label.zh_cn} {rid}"[: f.max_length or 255]
        if kind == "email":
            return f"{plan.name}{rid}@example.com"
        if kind == "phone":
            return f"1{38000000000 + rid % 1_000_000_000}"
        if kind == "url":
            return f"https://example.com/{plan.name}/{rid}"
        if kind in ("integer", "decimal", "money", "percent"):
            low = Decimal(str(f.min)) if f.min is not None else Decimal(0)
            high = Decimal(str(f.max)) if f.max is not None else low + 1000
            return parse_value(f, low + (high - low) * Decimal(int(rng.random() * 100)) / 100)
        if kind == "boolean":
            return False
        if kind == "date":
            return row.values["created_at"].date()
        if kind == "datetime":
            return row.values["created_at"]
        if kind in ("picklist", "multi_picklist") and f.options:
            return f.options[0].value if kind == "picklist" else [f.options[0].value]
        return None


def _all_plans(plans: list[EntityPlan]) -> Iterator[EntityPlan]:
    for plan in plans:
        yield plan
        yield from _all_plans(plan.children)


def all_plans(profile: Profile) -> list[EntityPlan]:
    """Every plan, child tables right after their parent: the order tables are written in."""
    return list(_all_plans(profile.plans))


def hash_name(name: str) -> int:
    """A stable number for a name (Python's hash() changes between processes)."""
    return int.from_bytes(name.encode("utf-8")[:8].ljust(8, b"\0"), "big")


def _describe(values: dict[str, Any]) -> str:
    parts = []
    for key, value in list(values.items())[:14]:
        text = value.isoformat() if isinstance(value, (dt.date, dt.datetime)) else str(value)
        parts.append(f"{key}={text[:40]}")
    return ", ".join(parts)
