"""The packs' rules and workflows applied to each generated row, in memory, as a save through
the record service would: rule defaults, workflow on-enter `set` actions of the row's state,
formulas (roll-ups over the row's child rows and N:N links; roll-ups over other entities'
rows are added up after the load, see recompute.py), then validations, conditional
require / hide, and whether the row's workflow state can be reached."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

from crm_platform.engine.demo_data.rows import Row
from crm_platform.metadata.model import Entity, Field
from crm_platform.metadata.values import is_blank, parse_value
from crm_platform.rules import CompiledExpression, RuleError, percent_to_stored

if TYPE_CHECKING:
    from crm_platform.engine.site import Site

Store = Callable[[Entity, str, Any], Any]
_SCALES = {"money": 2, "percent": 4, "decimal": 4}


class Converters:
    """A rule's result as the record service stores it (RuleHooks._stored), with what depends
    only on the field worked out once per field: generated rows call this for every formula."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, str], Callable[[Any], Any]] = {}

    def __call__(self, entity: Entity, name: str, value: Any) -> Any:
        convert = self._cache.get((entity.name, name))
        if convert is None:
            convert = self._cache[(entity.name, name)] = _converter(entity.field(name))
        return convert(value)


def _converter(f: Field) -> Callable[[Any], Any]:
    kind = f.value_type
    target = f if f.type != "formula" else dataclasses.replace(f, type=f.result_type or "text")
    text_formula = f.type == "formula" and target.type == "text"
    quantum = Decimal(1).scaleb(-(f.scale if f.scale is not None else _SCALES[kind])) if kind in _SCALES else None
    plain = quantum is not None and f.min is None and f.max is None
    limit = Decimal(10) ** ((f.precision or {"money": 18, "percent": 9, "decimal": 18}[kind]) - (f.scale if f.scale is not None else _SCALES[kind])) if quantum is not None else None

    def convert(value: Any) -> Any:
        if value is None:
            return None
        if kind == "percent":
            value = percent_to_stored(value)
        if quantum is not None and isinstance(value, Decimal):
            value = value.quantize(quantum, rounding=ROUND_HALF_UP)
            if plain and limit is not None and -limit < value < limit:
                return value
        elif kind == "reference" and type(value) is int and value > 0:
            return value
        if text_formula and not isinstance(value, str):
            value = str(value)
        return parse_value(target, value)
    return convert


_CONVERTERS = Converters()


def reads_reverse(expression: CompiledExpression) -> bool:
    """True when the expression adds up rows of another entity: rows that point at the record,
    or rows its `where` ties to the record through $record."""
    return any(r.kind in ("reverse", "all") for r in expression.checked.dependencies.relations)


class EntityRules:
    """The compiled rules, formulas and workflow of one entity, ready for generated rows."""

    def __init__(self, site: Site, entity: Entity) -> None:
        rules = site.rules
        name = entity.name
        self.entity = entity
        self.store: Store = _CONVERTERS
        self.defaults = [(r.field, r.expression) for r in rules.of(name, "default") if r.field]
        self.formulas = [*rules.formula_fields.get(name, []), *((r.field, r.expression) for r in rules.of(name, "formula") if r.field)]
        self.rolls_up_others = any(reads_reverse(e) for _, e in self.formulas)
        self.validations = [r for r in rules.of(name, "validate") if not reads_reverse(r.expression)]
        self.requires = [(r.field, r) for r in rules.of(name, "require") if r.field]
        self.hides = [(r.field, r) for r in rules.of(name, "hide") if r.field]
        self.flow = site.workflows.of(name)
        self.entering: dict[str, list[tuple[str, CompiledExpression]]] = {}
        self.ways_in: dict[str, list[tuple[str, tuple[str, ...], CompiledExpression | None]]] = {}
        if self.flow is not None:
            flow = self.flow
            for state in flow.states:
                self.entering[state.name] = [(a.field, rules.state_actions[(flow.name, state.name, "on_enter", a.field)])
                                             for a in state.on_enter if (flow.name, state.name, "on_enter", a.field) in rules.state_actions]
            for t in flow.transitions:
                self.ways_in.setdefault(t.to, []).append((t.name, t.required, rules.guards.get((flow.name, t.name))))
        self.money = [(f.name, f.currency or "CNY") for f in entity.fields if f.type == "money"]
        self.required = [f.name for f in entity.fields if f.required and f.type not in ("child_table", "many_to_many", "auto_number", "formula")]

    # -- filling in --------------------------------------------------------------------------------
    def apply_defaults(self, row: Row) -> None:
        values = row.values
        for name, expression in self.defaults:
            if is_blank(values.get(name)):
                values[name] = self._evaluate(row, name, expression, "default")

    def enter_state(self, row: Row, mentioned: frozenset[str]) -> None:
        """A row generated in a later state gets what entering that state sets (unless the profile
        generates the field itself)."""
        if self.flow is None:
            return
        state = str(row.values.get(self.flow.field))
        if state == self.flow.initial:
            return
        for name, expression in self.entering.get(state, ()):
            if name not in mentioned:
                row.values[name] = self._evaluate(row, name, expression, f"entering {state}")

    def clear_hidden(self, row: Row, names: Collection[str]) -> None:
        """Empty the given fields (filled in by the generator, not the profile) where a hide rule
        hides them for this row, as a save through a form would leave them."""
        for field, rule in self.hides:
            if field in names and not is_blank(row.values.get(field)) and rule.expression.test(row.context()):
                row.values[field] = None

    def compute_formulas(self, row: Row) -> None:
        for name, expression in self.formulas:
            row.values[name] = self._evaluate(row, name, expression, "formula")

    def currencies(self, values: dict[str, Any]) -> None:
        for name, currency in self.money:
            values[f"{name}_currency"] = currency if values.get(name) is not None else None

    def _evaluate(self, row: Row, name: str, expression: CompiledExpression, what: str) -> Any:
        from crm_platform.engine.demo_data.model import DemoDataError

        try:
            return self.store(self.entity, name, row.eval(expression))
        except (RuleError, ValueError) as exc:
            message = exc.message if isinstance(exc, RuleError) else str(exc)
            raise DemoDataError(f"{row.plan.place.where()}: a generated {self.entity.name} cannot compute {name} ({what}): {message}") from None

    # -- checking -----------------------------------------------------------------------------------
    def problems(self, row: Row, generated: frozenset[str]) -> list[str]:
        """What a save through the record service would refuse about this row."""
        values = row.values
        found: list[str] = []
        try:
            for rule in self.validations:
                if rule.expression.test(row.context()):
                    found.append(f"breaks the rule \"{rule.message}\" ({rule.file}:{rule.line})")
            for field, rule in self.requires:
                if is_blank(values.get(field)) and rule.expression.test(row.context()):
                    found.append(f"needs {field} (a require rule at {rule.file}:{rule.line})")
            for field, rule in self.hides:
                names = generated if field == "*" else {field} & generated
                shown = [n for n in sorted(names) if not is_blank(values.get(n))]
                if shown and rule.expression.test(row.context()):
                    found.append(f"sets {', '.join(shown)}, which a hide rule hides for this record ({rule.file}:{rule.line})")
        except RuleError as exc:
            found.append(f"a rule cannot be evaluated: {exc.message}")
        for name in self.required:
            if is_blank(values.get(name)):
                found.append(f"leaves the required field {name} empty")
        found.extend(self._state_problems(row))
        return found

    def _state_problems(self, row: Row) -> list[str]:
        flow = self.flow
        if flow is None:
            return []
        state = str(row.values.get(flow.field))
        entered = flow.state(state)
        if entered is None:
            return [f"is in '{state}', which is not a state of the workflow {flow.name}"]
        if entered.approval is not None:
            return [f"is in '{state}', which starts an approval that generated records do not start"]
        if state == flow.initial:
            return []
        reasons = []
        for name, required, guard in self.ways_in.get(state, ()):
            missing = [f for f in required if is_blank(row.values.get(f))]
            try:
                blocked = guard is not None and not guard.test(row.context())
            except RuleError:
                blocked = True
            if not missing and not blocked:
                return []
            reasons.append(f"{name} needs {', '.join(missing)}" if missing else f"{name}'s guard does not hold")
        why = "; ".join(reasons) or "no transition leads there"
        return [f"is in state '{state}' of {flow.name}, which it could not have reached ({why})"]
