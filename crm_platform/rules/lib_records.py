"""Functions that read beyond the record's current values: change detection (is_new, changed,
prior), lookup of another entity's record by a key field, and roll-ups over child rows
(count, sum; min and max are in lib_math and become roll-ups when given a child relation).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from crm_platform.rules import runtime as rt
from crm_platform.rules import types as t
from crm_platform.rules.ast import FieldRef, Node
from crm_platform.rules.context import EvalContext, Relation
from crm_platform.rules.function_spec import CallCheck, CallInfo, Closure, FunctionSpec
from crm_platform.rules.types import RuleType

if TYPE_CHECKING:
    from crm_platform.rules.sql_values import SqlBuilder, SqlValue


def reader(rule_type: RuleType) -> Callable[[Any], Any]:
    """How a stored value becomes a language value (only percents change: 12.5 -> 0.125)."""
    return rt.percent_from_stored if rule_type.kind == "percent" else _same


def _same(value: Any) -> Any:
    return value


@dataclass(frozen=True)
class Rollup:
    """A resolved roll-up: which rows, which value (a path on the child entity), which filter."""

    aggregate: str  # count, sum, min, max
    relation: Relation
    value: FieldRef | None
    condition: Node | None
    value_type: RuleType


@dataclass(frozen=True, eq=False)
class AggregateQuery:
    """A roll-up over records of another entity (relation kind "all"), for the engine to run in
    SQL with `compile_sql.aggregate_select`; `checked` is the whole expression it is part of."""

    checked: Any  # checker.Checked (not imported: the checker imports this module)
    rollup: Rollup


@dataclass(frozen=True)
class LookupTarget:
    entity: str
    key_field: str
    return_field: str
    result: RuleType
    key_type: RuleType


# ---- change detection ----


def _check_field_argument(c: CallCheck) -> RuleType:
    arg = c.node.args[0]
    if not isinstance(arg, FieldRef) or len(arg.path) != 1:
        return c.fail(0, f"{c.node.name}() takes a field of this record, e.g. {c.node.name}(stage)")
    if c.info.types[0].kind == "relation":
        return c.fail(0, f"{c.node.name}() cannot watch child rows")
    c.info.extra = arg.path[0]
    return t.BOOLEAN if c.node.name == "changed" else c.info.types[0]


def _python_is_new(args: list[Closure], info: CallInfo) -> Closure:
    return lambda c: c.prior is None


def _python_changed(args: list[Closure], info: CallInfo) -> Closure:
    name = info.extra

    def run(c: EvalContext) -> bool:
        if c.prior is None:
            return False
        return not rt.equal(c.prior.get(name), c.record.get(name))

    return run


def _python_prior(args: list[Closure], info: CallInfo) -> Closure:
    name = info.extra
    read = reader(info.result)

    def run(c: EvalContext) -> Any:
        return None if c.prior is None else read(c.prior.get(name))

    return run


# ---- lookup ----


def _python_lookup(args: list[Closure], info: CallInfo) -> Closure:
    target: LookupTarget = info.extra
    key = args[2] if len(args) == 4 else args[1]
    read = reader(target.result)

    def run(c: EvalContext) -> Any:
        value = key(c)
        if value is None:
            return None
        return read(c.lookup(target.entity, target.key_field, value, target.return_field))

    return run


# ---- org units ----


def _check_within_unit(c: CallCheck) -> RuleType:
    for index, arg_type in enumerate(c.info.types):
        if not (arg_type.vague or (arg_type.kind == "reference" and arg_type.entity == t.UNIT_ENTITY)):
            return c.fail(index, f"within_unit() takes org units (e.g. unit_id, $user.unit), not {arg_type}")
    return t.BOOLEAN


def _unit_path(c: EvalContext, unit: Any) -> str | None:
    row = c.fetch(t.UNIT_ENTITY, unit) if unit is not None else None
    return None if row is None else row.get("path")


def _python_within_unit(args: list[Closure], info: CallInfo) -> Closure:
    unit, top = args

    def run(c: EvalContext) -> bool:
        inner, outer = _unit_path(c, unit(c)), _unit_path(c, top(c))
        return inner is not None and outer is not None and inner.startswith(outer)

    return run


def _sql_within_unit(s: SqlBuilder, args: list[SqlValue], info: CallInfo) -> SqlValue:
    table_for = s.table_for  # type: ignore[attr-defined]  # the filter compiler has it
    inner, outer = table_for(t.UNIT_ENTITY).alias(), table_for(t.UNIT_ENTITY).alias()
    query = sa.select(inner.c.id).where(
        inner.c.id == s.expr(args[0], inner.c.id),
        outer.c.id == s.expr(args[1], outer.c.id),
        inner.c.path.like(outer.c.path.concat("%")),
    )
    return s.boolean(query.exists())


# ---- roll-ups ----


def rollup_python(value: Closure | None, condition: Closure | None, info: CallInfo) -> Closure:
    """The closure of a roll-up; `value` and `condition` run on each child row's context."""
    rollup: Rollup = info.extra
    relation = rollup.relation

    def rows(c: EvalContext) -> list[EvalContext]:
        contexts = [c.for_row(row) for row in c.children(relation, c.record)]
        if condition is None:
            return contexts
        return [row for row in contexts if condition(row) is True]

    if rollup.aggregate == "count":
        return lambda c: len(rows(c))
    assert value is not None
    if rollup.aggregate == "sum":

        def total(c: EvalContext) -> Any:
            result: Any = 0
            for row in rows(c):
                item = value(row)
                if item is not None:
                    result = rt.add(result, item)
            return result

        return total
    pick = min if rollup.aggregate == "min" else max

    def extreme(c: EvalContext) -> Any:
        values = [v for v in (value(row) for row in rows(c)) if v is not None]
        return pick(values) if values else None

    return extreme


def _rollup_python(args: list[Closure], info: CallInfo) -> Closure:
    raise AssertionError("roll-ups are compiled by the compilers from CallInfo.extra")


def _resolved_by_checker(c: CallCheck) -> RuleType:
    raise AssertionError("resolved by the checker")


SPECS = [
    FunctionSpec(
        "within_unit",
        "org",
        "within_unit(unit, top) -> boolean",
        "true when org unit `unit` is `top` or one of the units below it "
        "(e.g. within_unit(unit_id, $user.unit))",
        _check_within_unit,
        _python_within_unit,
        _sql_within_unit,
        min_args=2,
        max_args=2,
    ),
    FunctionSpec(
        "is_new",
        "change",
        "is_new() -> boolean",
        "true while the record is being created",
        lambda c: t.BOOLEAN,
        _python_is_new,
        None,
        "a list has no changes to look at",
        special="change",
    ),
    FunctionSpec(
        "changed",
        "change",
        "changed(field) -> boolean",
        "true when this save changes the field (false on a new record)",
        _check_field_argument,
        _python_changed,
        None,
        "a list has no changes to look at",
        min_args=1,
        max_args=1,
        special="change",
    ),
    FunctionSpec(
        "prior",
        "change",
        "prior(field) -> value",
        "the field's value before this save (null on a new record)",
        _check_field_argument,
        _python_prior,
        None,
        "a list has no changes to look at",
        min_args=1,
        max_args=1,
        special="change",
    ),
    FunctionSpec(
        "lookup",
        "lookup",
        'lookup("entity", "key_field", key, "return_field") -> value',
        "`return_field` of the first record of `entity` whose `key_field` equals `key`; with three "
        'arguments ("entity", key, "return_field") the key field is the entity\'s title field',
        _resolved_by_checker,
        _python_lookup,
        None,
        min_args=3,
        max_args=4,
        special="lookup",
    ),
    FunctionSpec(
        "count",
        "roll-up",
        "count(children) or count(children where condition) -> number",
        "how many child rows (that meet the condition)",
        _resolved_by_checker,
        _rollup_python,
        None,
        min_args=1,
        max_args=1,
        special="rollup",
    ),
    FunctionSpec(
        "sum",
        "roll-up",
        "sum(children.field where condition) -> number",
        "the total of the field over the child rows (0 when there are none)",
        _resolved_by_checker,
        _rollup_python,
        None,
        min_args=1,
        max_args=1,
        special="rollup",
    ),
]
