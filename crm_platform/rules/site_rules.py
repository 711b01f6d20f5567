"""All the rules of a Registry, checked and compiled at once: the packs' rules/*.rules files,
formula fields' expressions and list-view filters. A site only serves a Registry whose rules
all compile; every problem is reported with its file, line and column."""

from __future__ import annotations

from dataclasses import dataclass, field

from crm_platform.metadata.errors import PackError, Problem
from crm_platform.metadata.model import Place, Registry
from crm_platform.metadata.workflow_model import CreateAction
from crm_platform.rules.checker import Checked
from crm_platform.rules.compile_python import CompiledExpression, compile_python
from crm_platform.rules.errors import RuleError
from crm_platform.rules.expressions import checked_expression
from crm_platform.rules.statements import Rule, RuleSet, check_rule_file


@dataclass
class SiteRules:
    """The compiled rules of a site, by entity."""

    ruleset: RuleSet = field(default_factory=RuleSet)
    formula_fields: dict[str, list[tuple[str, CompiledExpression]]] = field(default_factory=dict)
    view_filters: dict[tuple[str, str], Checked] = field(default_factory=dict)
    guards: dict[tuple[str, str], CompiledExpression] = field(default_factory=dict)  # (workflow, transition)
    state_actions: dict[tuple[str, str, str, str], CompiledExpression] = field(default_factory=dict)  # (workflow, state, on_enter|on_exit, field)
    # create actions' values: (workflow or "reminder:<name>", state or "", action index, field)
    create_values: dict[tuple[str, str, int, str], CompiledExpression] = field(default_factory=dict)
    reminder_conditions: dict[str, CompiledExpression] = field(default_factory=dict)
    scores: dict[str, tuple[CompiledExpression, CompiledExpression | None]] = field(default_factory=dict)  # scoring -> (score, condition)

    def of(self, entity: str, kind: str) -> list[Rule]:
        if kind == "formula":
            return self.ruleset.formulas(entity)
        return self.ruleset.of(entity, kind)

    def has_any(self, entity: str) -> bool:
        return bool(self.ruleset.of(entity)) or bool(self.formula_fields.get(entity))


def _problem(error: RuleError, place: Place | None = None) -> Problem:
    if place is not None:
        error = error.shifted(place.line or 1, place.column or 1, place.file)
    rendered = error.render()
    message = error.message + rendered[len(str(error)):]  # the message, then the source line and carets
    return Problem(error.file or (place.file if place else "<rule>"), error.line, error.column, message, error.code)


def compile_site_rules(registry: Registry) -> SiteRules:
    """Raises PackError listing every rule that does not parse or type-check."""
    problems: list[Problem] = []
    rules = RuleSet()
    for source in registry.extra.get("rule_sources", ()):
        ruleset, errors = check_rule_file(source.text, registry, source.file)
        problems.extend(_problem(e) for e in errors)
        rules = rules.extend(ruleset)
    formulas: dict[str, list[tuple[str, CompiledExpression]]] = {}
    for entity in registry.entities.values():
        for f in entity.fields:
            if f.type != "formula" or not f.expression:
                continue
            checked = checked_expression(f.expression, registry, entity.name, "formula", target_field=f.name)
            if checked.errors:
                problems.extend(_problem(e, f.expression_place or f.place) for e in checked.errors)
                continue
            formulas.setdefault(entity.name, []).append((f.name, compile_python(checked)))
    filters: dict[tuple[str, str], Checked] = {}
    for view in registry.list_views.values():
        if view.filter:
            checked = checked_expression(view.filter, registry, view.entity, "filter")
            if checked.errors:
                problems.extend(_problem(e, view.filter_place or view.place) for e in checked.errors)
                continue
            filters[(view.entity, view.name)] = checked
    guards: dict[tuple[str, str], CompiledExpression] = {}
    actions: dict[tuple[str, str, str, str], CompiledExpression] = {}
    creates: dict[tuple[str, str, int, str], CompiledExpression] = {}
    for flow in registry.extra.get("workflows", ()):
        for transition in flow.transitions:
            if transition.guard:
                checked = checked_expression(transition.guard, registry, flow.entity, "condition")
                if checked.errors:
                    problems.extend(_problem(e, transition.guard_place or transition.place) for e in checked.errors)
                else:
                    guards[(flow.name, transition.name)] = compile_python(checked)
        for state in flow.states:
            for when, items in (("on_enter", state.on_enter), ("on_exit", state.on_exit)):
                for action in items:
                    checked = checked_expression(action.expression, registry, flow.entity, "formula", target_field=action.field)
                    if checked.errors:
                        problems.extend(_problem(e, action.place) for e in checked.errors)
                    else:
                        actions[(flow.name, state.name, when, action.field)] = compile_python(checked)
            _compile_creates(registry, flow.entity, flow.name, state.name, state.creates, creates, problems)
    conditions: dict[str, CompiledExpression] = {}
    for reminder in registry.extra.get("reminders", ()):
        if reminder.condition:
            checked = checked_expression(reminder.condition, registry, reminder.entity, "condition")
            if checked.errors:
                problems.extend(_problem(e, reminder.condition_place or reminder.place) for e in checked.errors)
            else:
                conditions[reminder.name] = compile_python(checked)
        _compile_creates(registry, reminder.entity, f"reminder:{reminder.name}", "", reminder.creates, creates, problems)
    scores: dict[str, tuple[CompiledExpression, CompiledExpression | None]] = {}
    for scoring in registry.extra.get("scorings", ()):
        score = checked_expression(scoring.score, registry, scoring.entity, "formula", target_field=scoring.score_field)
        problems.extend(_problem(e, scoring.score_place) for e in score.errors)
        condition = checked_expression(scoring.condition, registry, scoring.entity, "condition") if scoring.condition else None
        if condition is not None:
            problems.extend(_problem(e, scoring.condition_place or scoring.place) for e in condition.errors)
        if not score.errors and not (condition and condition.errors):
            scores[scoring.name] = (compile_python(score), compile_python(condition) if condition else None)
    for dashboard in registry.extra.get("dashboards", ()):
        for widget in dashboard.widgets:
            if widget.filter:
                checked = checked_expression(widget.filter, registry, widget.entity, "filter")
                problems.extend(_problem(e, widget.filter_place or dashboard.place) for e in checked.errors)
    if problems:
        raise PackError(problems)
    return SiteRules(rules, formulas, filters, guards, actions, creates, conditions, scores)


def _compile_creates(registry: Registry, entity: str, owner: str, state: str, items: tuple[CreateAction, ...],
                     into: dict[tuple[str, str, int, str], CompiledExpression], problems: list[Problem]) -> None:
    """Each value of a create action: an expression over the source record that fits the new record's field."""
    for index, action in enumerate(items):
        for value in action.values:
            checked = checked_expression(value.expression, registry, entity, "formula", target_field=value.field, target_entity=action.entity)
            if checked.errors:
                problems.extend(_problem(e, value.place) for e in checked.errors)
            else:
                into[(owner, state, index, value.field)] = compile_python(checked)
