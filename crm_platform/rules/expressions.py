"""One expression from text to a checked, compiled rule: what the engine, the designer and the
API call for a condition, a formula, a default or a list filter."""

from __future__ import annotations

import functools

import sqlalchemy as sa

from crm_platform.metadata.model import Registry
from crm_platform.rules import ast
from crm_platform.rules.checker import PURPOSES, Checked, check
from crm_platform.rules.compile_python import CompiledExpression, compile_python
from crm_platform.rules.compile_sql import TableFor, compile_filter
from crm_platform.rules.context import SqlContext
from crm_platform.rules.errors import UNKNOWN_NAME, RuleError, RuleErrors
from crm_platform.rules.parser import parse_expression
from crm_platform.rules.resolve import NameProblem, field_of
from crm_platform.rules.sql_values import Expr
from crm_platform.rules.types import RuleType


@functools.lru_cache(maxsize=4096)
def parse_cached(text: str) -> ast.Node:
    """parse_expression with a cache: trees are immutable, so one parse serves every check."""
    return parse_expression(text)


def checked_expression(
    text: str,
    registry: Registry,
    entity: str,
    purpose: str = "condition",
    target_field: str | None = None,
    file: str | None = None,
    target_entity: str | None = None,
) -> Checked:
    """Parse and check `text` on `entity`. Problems are in `.errors` (nothing is raised).

    purpose: "condition" (must be true/false), "filter" (true/false and runnable in SQL),
    "formula" or "default" (must fit `target_field`, a field of `entity` — or of
    `target_entity` when the value is written to another record —, when given).
    """
    if purpose not in PURPOSES:
        raise ValueError(f"unknown purpose {purpose!r}; one of {PURPOSES}")
    try:
        tree = parse_cached(text)
    except RuleError as error:
        checked = Checked(ast.Literal(ast.Span(1, 1, 1, 1), None, "null"), text, entity, purpose)
        checked.errors.append(error.in_file(file) if file else error)
        return checked
    target: RuleType | None = None
    target_name = ""
    owner = target_entity or entity
    if target_field is not None and owner in registry.entities:
        target_name = f"{owner}.{target_field}"
        try:
            target = field_of(registry, owner, target_field)
        except NameProblem as problem:
            checked = Checked(tree, text, entity, purpose)
            checked.errors.append(RuleError(problem.message, code=UNKNOWN_NAME, file=file))
            return checked
    checked = check(tree, text, registry, entity, purpose, target, target_name)
    if file:
        checked.errors = [e.in_file(file) for e in checked.errors]
    return checked


def check_expression(
    text: str,
    registry: Registry,
    entity: str,
    purpose: str = "condition",
    target_field: str | None = None,
    file: str | None = None,
) -> list[RuleError]:
    """Every problem of one expression, with positions (empty when it is fine)."""
    return checked_expression(text, registry, entity, purpose, target_field, file).errors


def compile_expression(
    text: str,
    registry: Registry,
    entity: str,
    purpose: str = "condition",
    target_field: str | None = None,
    file: str | None = None,
) -> CompiledExpression:
    """The compiled expression. Raises RuleErrors with every problem."""
    return compile_python(checked_expression(text, registry, entity, purpose, target_field, file))


def compile_filter_text(
    text: str,
    registry: Registry,
    entity: str,
    table: sa.FromClause,
    table_for: TableFor,
    context: SqlContext | None = None,
    dialect: str = "sqlite",
) -> Expr:
    """A list filter as a WHERE condition on `table`. Raises RuleErrors."""
    checked = checked_expression(text, registry, entity, "filter")
    if checked.errors:
        raise RuleErrors(checked.errors)
    return compile_filter(checked, table, table_for, context, dialect)
