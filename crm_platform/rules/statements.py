"""Rule files (`rules/*.rules`): statements parsed, checked against the Registry, compiled.

A statement starts at the beginning of a line with one of validate, formula, default,
require, hide, readonly; indented lines continue it; `#` starts a comment. Every statement is
parsed and checked on its own, so one bad statement does not hide the problems of the others.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from crm_platform.metadata.errors import did_you_mean
from crm_platform.metadata.model import Registry
from crm_platform.rules import ast
from crm_platform.rules.checker import check
from crm_platform.rules.compile_python import CompiledExpression, compile_python
from crm_platform.rules.errors import UNKNOWN_NAME, USAGE, RuleError
from crm_platform.rules.parser import parse_statement
from crm_platform.rules.resolve import NameProblem, field_of
from crm_platform.rules.syntax_errors import STATEMENT_KEYWORDS

_PURPOSE = {
    "validate": "condition",
    "formula": "formula",
    "default": "default",
    "require": "condition",
    "hide": "condition",
    "readonly": "condition",
}
_STARTS = re.compile(r"^[ \t]*(" + "|".join(STATEMENT_KEYWORDS) + r")\b|^[^\s#]")


@dataclass(frozen=True)
class Rule:
    """One checked, compiled statement. `field` is None for validations and "*" for all fields."""

    kind: str
    entity: str
    field: str | None
    expression: CompiledExpression
    file: str
    line: int
    message: str | None = None
    on_fields: tuple[str, ...] = ()


@dataclass
class RuleSet:
    """The rules of one or more files, by entity."""

    rules: list[Rule] = field(default_factory=list)

    def of(self, entity: str, kind: str | None = None) -> list[Rule]:
        return [r for r in self.rules if r.entity == entity and (kind is None or r.kind == kind)]

    def validations(self, entity: str) -> list[Rule]:
        return self.of(entity, "validate")

    def defaults(self, entity: str) -> list[Rule]:
        return self.of(entity, "default")

    def formulas(self, entity: str) -> list[Rule]:
        """The entity's formulas in an order where each comes after the formulas it reads."""
        return formula_order(self.of(entity, "formula"))[0]

    def extend(self, other: RuleSet) -> RuleSet:
        return RuleSet([*self.rules, *other.rules])


def split_statements(text: str) -> list[tuple[int, str]]:
    """(first line, text) of each statement: a statement starts where a line starts unindented."""
    chunks: list[tuple[int, list[str]]] = []
    for number, line in enumerate(text.split("\n"), start=1):
        if _STARTS.match(line) and not line.lstrip().startswith("#"):
            chunks.append((number, [line]))
        elif chunks:
            chunks[-1][1].append(line)
    return [(first, "\n".join(lines)) for first, lines in chunks]


def check_rule_file(
    text: str, registry: Registry, filename: str
) -> tuple[RuleSet, list[RuleError]]:
    """Parse, check and compile a whole `.rules` file; reports every problem with file:line:col."""
    errors: list[RuleError] = []
    rules: list[Rule] = []
    seen: dict[tuple[str, str, str], int] = {}
    for first_line, chunk in split_statements(text):
        try:
            statement = parse_statement(chunk, first_line, text)
        except RuleError as error:
            errors.append(error.in_file(filename))
            continue
        problems = _check_target(statement, registry, text)
        if not problems and statement.kind in ("formula", "default"):
            key = (statement.kind, statement.entity, statement.field or "")
            if key in seen:
                problems.append(
                    RuleError.at(
                        statement.field_span,
                        f"{statement.entity}.{statement.field} already has a "
                        f"{statement.kind} (line {seen[key]})",
                        text,
                        USAGE,
                    )
                )
            seen[key] = first_line
        if problems:
            errors.extend(e.in_file(filename) for e in problems)
            continue
        target = None
        if statement.kind in ("formula", "default") and statement.field:
            target = field_of(registry, statement.entity, statement.field)
        checked = check(
            statement.expr,
            text,
            registry,
            statement.entity,
            _PURPOSE[statement.kind],
            target,
            f"{statement.entity}.{statement.field}",
        )
        if checked.errors:
            errors.extend(e.in_file(filename) for e in checked.errors)
            continue
        rules.append(
            Rule(
                statement.kind,
                statement.entity,
                statement.field,
                compile_python(checked),
                filename,
                first_line,
                statement.message,
                statement.on_fields,
            )
        )
    kept = [r for r in rules if r.kind != "formula"]
    for entity in sorted({r.entity for r in rules}):
        ordered, cycles = formula_order(
            [r for r in rules if r.entity == entity and r.kind == "formula"]
        )
        errors.extend(cycles)
        kept.extend(ordered)
    rules = sorted(kept, key=lambda r: r.line)
    errors.sort(key=lambda e: (e.line, e.column))
    return RuleSet(rules), errors


def _check_target(statement: ast.Statement, registry: Registry, text: str) -> list[RuleError]:
    """The entity and fields a statement names must exist and suit the statement."""
    entity = registry.entities.get(statement.entity)
    if entity is None:
        hint = did_you_mean(statement.entity, registry.entities)
        message = f"unknown entity '{statement.entity}'{hint}"
        return [RuleError.at(statement.entity_span, message, text, UNKNOWN_NAME)]
    problems: list[RuleError] = []
    names = list(statement.on_fields)
    spans = list(statement.on_spans)
    if statement.field not in (None, "*"):
        names.append(statement.field)
        spans.append(statement.field_span)  # type: ignore[arg-type]
    for name, span in zip(names, spans, strict=True):
        try:
            field_of(registry, entity.name, name)
        except NameProblem as problem:
            problems.append(RuleError.at(span, problem.message, text, UNKNOWN_NAME))
    if problems or statement.kind not in ("formula", "default") or statement.field is None:
        return problems
    spec = entity.field_map.get(statement.field)
    if spec is None or spec.type in ("auto_number", "child_table", "many_to_many", "file"):
        what = "a system field" if spec is None else f"a field of type {spec.type}"
        return [
            RuleError.at(
                statement.field_span,
                f"{statement.entity}.{statement.field} is {what}; a {statement.kind} cannot set it",
                text,
                USAGE,
            )
        ]
    if statement.kind == "formula" and spec.expression:
        return [
            RuleError.at(
                statement.field_span,
                f"{statement.entity}.{statement.field} already has its formula in {spec.place}",
                text,
                USAGE,
            )
        ]
    if statement.kind == "default" and spec.type == "formula":
        return [
            RuleError.at(
                statement.field_span,
                f"{statement.entity}.{statement.field} is a formula field; "
                "it cannot have a default",
                text,
                USAGE,
            )
        ]
    return problems


def formula_order(formulas: Iterable[Rule]) -> tuple[list[Rule], list[RuleError]]:
    """Formulas sorted so that each follows those it reads, leaving out (with an error) the
    formulas that depend on each other in a circle."""
    by_field = {r.field: r for r in formulas}
    order: list[Rule] = []
    errors: list[RuleError] = []
    state: dict[str, str] = {}
    circular: set[str] = set()

    def visit(name: str, trail: list[str]) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "active":
            rule = by_field[name]
            members = trail[trail.index(name) :]
            circular.update(members)
            cycle = " -> ".join(f"{rule.entity}.{n}" for n in [*members, name])
            checked = rule.expression.checked
            errors.append(
                RuleError.at(
                    checked.tree.span,
                    f"formulas depend on each other: {cycle}",
                    checked.source,
                    USAGE,
                ).in_file(rule.file)
            )
            return
        state[name] = "active"
        rule = by_field[name]
        for dependency in sorted(rule.expression.checked.dependencies.fields):
            if dependency in by_field:
                visit(dependency, [*trail, name])
        state[name] = "done"
        order.append(rule)

    for name in by_field:
        visit(name or "", [])
    return [r for r in order if r.field not in circular], errors
