"""Compiling a checked filter to a SQLAlchemy Core boolean expression over an entity table.

Columns are named like the fields. Paths across references become correlated scalar
subqueries on the referenced entity's table, roll-ups become correlated aggregates over the
child table, and subtrees that do not depend on the row (literals, $user, today()) are
computed once in Python and bound as parameters. Tables come from `table_for(entity)`.

A level of the scope may also be a record held in Python (an EvalContext) instead of a table:
its fields are then bound values. That is how the engine runs a roll-up over another entity's
records for one record (`aggregate_select`) and finds the records whose roll-up a changed row
affects (`owners_select`).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from crm_platform.rules import ast
from crm_platform.rules import types as t
from crm_platform.rules.ast import Node
from crm_platform.rules.checker import Checked
from crm_platform.rules.compile_python import compile_node
from crm_platform.rules.context import EvalContext, Relation, SqlContext
from crm_platform.rules.errors import EVALUATION, USAGE, RuleError, RuleErrors
from crm_platform.rules.functions import has_sql_form
from crm_platform.rules.lib_records import AggregateQuery, LookupTarget, Rollup
from crm_platform.rules.lib_text import sql_includes
from crm_platform.rules.resolve import Step
from crm_platform.rules.runtime import EvaluationFailure
from crm_platform.rules.sql_values import Expr, SqlBuilder, SqlValue, decimal_places
from crm_platform.rules.types import RuleType

TableFor = Callable[[str], sa.Table]
Scope = sa.FromClause | EvalContext  # a table, or one record held in Python
Visible = Callable[[str, sa.FromClause], Expr]


def compile_filter(
    checked: Checked,
    table: sa.FromClause,
    table_for: TableFor,
    context: SqlContext | None = None,
    dialect: str = "sqlite",
    visible: Visible | None = None,
) -> Expr:
    """The WHERE condition of a checked filter (purpose "filter") on `table` (the entity's
    table or an alias of it). `dialect` is the database's dialect name (sqlite, postgresql).
    `visible(entity, rows)` limits the rows a roll-up over another entity's records counts
    (to what the user may read)."""
    if checked.errors:
        raise RuleErrors(checked.errors)
    compiler = _SqlCompiler(checked, table, table_for, context or SqlContext(), dialect)
    compiler.visible = visible
    return compiler.condition(compiler.compile(checked.tree))


def aggregate_select(
    query: AggregateQuery,
    record: EvalContext,
    table_for: TableFor,
    context: SqlContext | None = None,
    dialect: str = "sqlite",
) -> tuple[sa.Select[Any], Callable[[Any], Any]]:
    """The SELECT of a roll-up over another entity's records for `record` (whose fields
    `$record` names, bound), and how its one result becomes a value of the language."""
    compiler = _SqlCompiler(query.checked, record, table_for, context or SqlContext(), dialect)
    value = compiler.rollup(query.rollup, _result_type(query.rollup))
    return sa.select(compiler.expr(value)), _reader(value, compiler.sqlite)


def owners_select(
    query: AggregateQuery,
    owners: sa.FromClause,
    row: EvalContext,
    table_for: TableFor,
    context: SqlContext | None = None,
    dialect: str = "sqlite",
) -> sa.Select[Any]:
    """The ids of the records of `owners` (the roll-up's entity) whose roll-up counts `row`, a
    record of the rolled-up entity held in Python: its `where` with `row` bound."""
    compiler = _SqlCompiler(query.checked, owners, table_for, context or SqlContext(), dialect)
    condition = query.rollup.condition
    assert condition is not None
    compiler.scope.append(row)
    match = compiler.condition(compiler.compile(condition))
    return sa.select(owners.c.id).where(match, *compiler.not_deleted(owners))


def _result_type(rollup: Rollup) -> RuleType:
    return t.INTEGER if rollup.aggregate == "count" else rollup.value_type


def _reader(value: SqlValue, sqlite: bool) -> Callable[[Any], Any]:
    """A selected value as the language holds it (SQLite keeps scaled numbers as integers)."""
    if not value.type.numeric:
        return lambda raw: raw
    if value.type.kind == "integer":
        return lambda raw: None if raw is None else int(raw)
    scale = value.scale if sqlite else 0
    return lambda raw: None if raw is None else Decimal(str(raw)).scaleb(-scale)


class _SqlCompiler(SqlBuilder):
    def __init__(
        self,
        checked: Checked,
        table: Scope,
        table_for: TableFor,
        context: SqlContext,
        dialect: str,
    ) -> None:
        super().__init__(dialect, context)
        self.checked = checked
        self.table_for = table_for
        self.scope: list[Scope] = [table]
        self.visible: Visible | None = None
        self.eval_context = EvalContext(
            {}, None, context.user, lambda: context.now, context.current_date
        )

    def fail(self, node: Node, message: str) -> RuleError:
        return RuleError.at(node.span, message, self.checked.source, USAGE)

    def compile(self, node: Node) -> SqlValue:
        rule_type = self.checked.types[node]
        if node in self.checked.constants:
            return self.const(self._constant(node), rule_type)
        method: Callable[[Any], SqlValue] = getattr(self, f"compile_{type(node).__name__}")
        return method(node)

    def _constant(self, node: Node) -> Any:
        try:
            value = compile_node(self.checked, node)(self.eval_context)
        except EvaluationFailure as exc:
            raise RuleError.at(node.span, str(exc), self.checked.source, EVALUATION) from None
        if isinstance(value, tuple):
            value = list(value)
        return value

    # ---- columns ----

    def column_value(self, expr: Expr, column_type: Any, rule_type: RuleType) -> SqlValue:
        """A column (or a subquery selecting one) as a value of the language."""
        if not rule_type.numeric:
            return SqlValue(expr, rule_type)
        scale = getattr(column_type, "scale", None)
        scaled = isinstance(column_type, sa.types.TypeDecorator) and isinstance(scale, int)
        scale = scale if isinstance(scale, int) else 0
        percent = rule_type.kind == "percent"
        if self.sqlite:
            if scaled:
                return SqlValue(
                    sa.type_coerce(expr, sa.BigInteger()), rule_type, scale + (2 if percent else 0)
                )
            return SqlValue(expr, rule_type, 2 if percent else 0)
        value = sa.type_coerce(expr, sa.Numeric()) if scaled else expr
        return SqlValue(value * Decimal("0.01") if percent else value, rule_type)

    def compile_FieldRef(self, node: ast.FieldRef) -> SqlValue:
        return self._path(node, self.checked.paths[node], self.scope[-1])

    def compile_UserRef(self, node: ast.UserRef) -> SqlValue:
        # $user is a constant (bound by compile()); $record is the outermost level of the scope.
        return self._path(node, self.checked.record_paths[node], self.scope[0])

    def _path(self, node: Node, steps: list[Step], level: Scope) -> SqlValue:
        if isinstance(level, EvalContext):
            return self._bound(node, level)
        column = level.c[steps[0].field]
        expr: Expr = column
        column_type = column.type
        for step in steps[1:]:
            target = self.table_for(step.entity).alias()
            selected = target.c[step.field]
            expr = (
                sa.select(selected)
                .where(target.c.id == expr)
                .correlate_except(target)
                .scalar_subquery()
            )
            column_type = selected.type
        return self.column_value(expr, column_type, steps[-1].type)

    def _bound(self, node: Node, record: EvalContext) -> SqlValue:
        """A value of a record held in Python, computed now and bound."""
        try:
            value = compile_node(self.checked, node)(record)
        except EvaluationFailure as exc:
            raise RuleError.at(node.span, str(exc), self.checked.source, EVALUATION) from None
        return self.const(value, self.checked.types[node])

    # ---- operators ----

    def compile_Negative(self, node: ast.Negative) -> SqlValue:
        return self.negative(self.compile(node.operand))

    def compile_Not(self, node: ast.Not) -> SqlValue:
        return self.boolean(sa.not_(self.condition(self.compile(node.operand))))

    def compile_Arithmetic(self, node: ast.Arithmetic) -> SqlValue:
        left, right = self.compile(node.left), self.compile(node.right)
        result = self.checked.types[node]
        kinds = (left.type.kind, right.type.kind)
        if "date" in kinds:
            if kinds == ("date", "date"):
                expr = self.days_between(self.expr(right), right.type, self.expr(left), left.type)
                return SqlValue(expr, t.INTEGER)
            date, days = (left, right) if left.type.kind == "date" else (right, left)
            days_expr = self.expr(days)
            return SqlValue(
                self.add_days(self.expr(date), -days_expr if node.op == "-" else days_expr), t.DATE
            )
        if result.kind == "text":
            joined = sa.func.coalesce(self.expr(left), "").concat(
                sa.func.coalesce(self.expr(right), "")
            )
            return self.text(joined)
        return self.arithmetic(node.op, left, right, result)

    def compile_Compare(self, node: ast.Compare) -> SqlValue:
        return self.compare(node.op, self.compile(node.left), self.compile(node.right))

    def compile_Logical(self, node: ast.Logical) -> SqlValue:
        parts = [self.condition(self.compile(operand)) for operand in node.operands]
        return self.boolean(sa.and_(*parts) if node.op == "and" else sa.or_(*parts))

    def compile_Membership(self, node: ast.Membership) -> SqlValue:
        item = self.compile(node.item)
        collection = node.collection
        collection_type = self.checked.types[collection]
        if collection_type.kind == "multi_picklist":
            result = sql_includes(self, self.compile(collection), item)
        elif collection in self.checked.constants:
            result = self._in_constants(item, self._constant(collection) or [])
        elif isinstance(collection, ast.ListExpr):
            tests = [
                self.condition(self.compare("=", item, self.compile(e))) for e in collection.items
            ]
            result = self.boolean(sa.or_(*tests) if tests else sa.false())
        else:
            raise self.fail(
                collection, "'in' in a list filter needs a list in [ ] or a multi-picklist"
            )
        if node.negated:
            return self.boolean(sa.not_(self.condition(result)))
        return result

    def _in_constants(self, item: SqlValue, values: list[Any]) -> SqlValue:
        present = [v for v in values if v is not None]
        if item.constant:
            hit = item.literal in values
            return self.boolean(sa.true() if hit else sa.false())
        expr = self.expr(item)
        if item.type.numeric and self.sqlite:
            scale = max([item.scale, *(decimal_places(v) for v in present)])
            expr = self.rescaled(item, scale)
            present = [int(Decimal(v).scaleb(scale)) for v in present]
        tests = [sa.and_(expr.is_not(None), expr.in_(present))] if present else []
        if None in values:
            tests.append(expr.is_(None))
        return self.boolean(sa.or_(*tests) if tests else sa.false())

    def compile_ListExpr(self, node: ast.ListExpr) -> SqlValue:
        raise self.fail(node, "a list of field values can only be used after 'in' in a list filter")

    def compile_Call(self, node: ast.Call) -> SqlValue:
        info = self.checked.calls[node]
        if isinstance(info.extra, Rollup):
            return self.rollup(info.extra, info.result)
        if isinstance(info.extra, LookupTarget):
            key = node.args[2] if len(node.args) == 4 else node.args[1]
            return self._lookup(info.extra, self.compile(key))
        spec = info.spec
        if spec.sql is None or not has_sql_form(spec):
            raise self.fail(node, f"{spec.name}() cannot be used in a list filter: {spec.sql_note}")
        problem = spec.sql_check(info) if spec.sql_check else None
        if problem:
            raise self.fail(node, problem)
        return spec.sql(self, [self.compile(arg) for arg in node.args], info)

    # ---- related records ----

    def _rows(self, entity: str) -> sa.FromClause:
        return self.table_for(entity).alias()

    @staticmethod
    def not_deleted(table: sa.FromClause) -> list[Expr]:
        return [table.c.deleted_at.is_(None)] if "deleted_at" in table.c else []

    def _link(self, rows: sa.FromClause, relation: Relation) -> list[Expr]:
        """How the rows of a roll-up are tied to the record they belong to."""
        if relation.kind == "all":
            return []  # only by the roll-up's `where`
        if relation.kind == "many":
            raise RuleError(
                f"roll-ups over the N:N link '{relation.name}' cannot run in a list filter",
                code=USAGE,
            )
        outer = self.scope[-1]
        owner: Expr = (
            sa.literal(outer.record.get("id")) if isinstance(outer, EvalContext) else outer.c.id
        )
        column = rows.c.parent_id if relation.kind == "child" else rows.c[relation.field]
        return [column == owner]

    def rollup(self, rollup: Rollup, result: RuleType) -> SqlValue:
        relation = rollup.relation
        rows = self._rows(relation.entity)
        where = [*self._link(rows, relation), *self.not_deleted(rows)]
        if relation.kind == "all" and self.visible is not None:
            where.append(self.visible(relation.entity, rows))
        self.scope.append(rows)
        try:
            if rollup.condition is not None:
                where.append(self.condition(self.compile(rollup.condition)))
            if rollup.aggregate == "count":
                query = (
                    sa.select(sa.func.count())
                    .select_from(rows)
                    .where(*where)
                    .correlate_except(rows)
                )
                return SqlValue(query.scalar_subquery(), t.INTEGER, 0, False)
            assert rollup.value is not None
            value = self.compile(rollup.value)
        finally:
            self.scope.pop()
        aggregate = getattr(sa.func, rollup.aggregate)(self.expr(value))
        subquery: Expr = (
            sa.select(aggregate)
            .select_from(rows)
            .where(*where)
            .correlate_except(rows)
            .scalar_subquery()
        )
        if self.sqlite and value.type.numeric:
            subquery = sa.type_coerce(subquery, sa.BigInteger())
        if rollup.aggregate == "sum":
            return SqlValue(sa.func.coalesce(subquery, 0), result, value.scale, False)
        return SqlValue(subquery, result, value.scale, True)

    def _lookup(self, target: LookupTarget, key: SqlValue) -> SqlValue:
        rows = self._rows(target.entity)
        key_column = rows.c[target.key_field]
        key_value = self.column_value(key_column, key_column.type, target.key_type)
        match = self.condition(self.compare("=", key_value, key))
        selected = rows.c[target.return_field]
        query = (
            sa.select(selected)
            .where(match, *self.not_deleted(rows))
            .order_by(rows.c.id)
            .limit(1)
            .correlate_except(rows)
        )
        return self.column_value(query.scalar_subquery(), selected.type, target.result)
