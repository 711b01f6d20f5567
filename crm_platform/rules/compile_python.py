"""Compiling a checked tree to Python closures (no eval, no exec): each node becomes a function
of the EvalContext. Types are known, so each operator gets the closure for its kinds."""

from __future__ import annotations

import decimal
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from crm_platform.rules import ast
from crm_platform.rules import runtime as rt
from crm_platform.rules.ast import Node, Span
from crm_platform.rules.checker import Checked
from crm_platform.rules.context import EvalContext
from crm_platform.rules.errors import EVALUATION, RuleError, RuleErrors
from crm_platform.rules.function_spec import Closure
from crm_platform.rules.lib_records import AggregateQuery, Rollup, reader, rollup_python
from crm_platform.rules.resolve import Step
from crm_platform.rules.runtime import EvaluationFailure

_FAILURES = (EvaluationFailure, ArithmeticError, ValueError, OverflowError)
_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "<": rt.less,
    "<=": rt.less_equal,
    ">": rt.greater,
    ">=": rt.greater_equal,
}


@dataclass
class CompiledExpression:
    """A checked expression ready to run: `evaluate` gives its value, `test` a condition's truth."""

    checked: Checked
    function: Closure

    def evaluate(self, context: EvalContext) -> Any:
        try:
            return self.function(context)
        except RuleError:
            raise
        except (*_FAILURES, TypeError, AttributeError) as exc:
            message = f"cannot evaluate this rule: {exc}"
            raise RuleError.at(
                self.checked.tree.span, message, self.checked.source, EVALUATION
            ) from None

    def test(self, context: EvalContext) -> bool:
        """A condition's result: null counts as false."""
        return self.evaluate(context) is True


def compile_python(checked: Checked) -> CompiledExpression:
    """The closure of a checked expression. Raises RuleErrors if it did not check."""
    if checked.errors:
        raise RuleErrors(checked.errors)
    return CompiledExpression(checked, _Compiler(checked).compile(checked.tree))


def compile_node(checked: Checked, node: Node) -> Closure:
    """The closure of one checked subtree (the SQL compiler evaluates constants with it)."""
    return _Compiler(checked).compile(node)


class _Compiler:
    def __init__(self, checked: Checked) -> None:
        self.checked = checked

    def compile(self, node: Node) -> Closure:
        method: Callable[[Any], Closure] = getattr(self, f"compile_{type(node).__name__}")
        return method(node)

    def failing(self, closure: Closure, span: Span, what: str) -> Closure:
        """`closure`, turning evaluation failures into RuleErrors that point at `span`."""
        source = self.checked.source

        def guarded(c: EvalContext) -> Any:
            try:
                return closure(c)
            except _FAILURES as exc:
                text = (
                    str(exc)
                    if isinstance(exc, EvaluationFailure)
                    else f"{what} failed ({type(exc).__name__})"
                )
                if isinstance(exc, decimal.DivisionByZero):
                    text = "division by zero"
                raise RuleError.at(span, text, source, EVALUATION) from None

        return guarded

    # ---- leaves ----

    def compile_Literal(self, node: ast.Literal) -> Closure:
        value = node.value
        return lambda c: value

    def compile_FieldRef(self, node: ast.FieldRef) -> Closure:
        return _follow(self.checked.paths[node], lambda c: c.record)

    def compile_UserRef(self, node: ast.UserRef) -> Closure:
        if node.variable == "record":
            return _follow(self.checked.record_paths[node], lambda c: c.this)
        name = node.path[0]
        return lambda c: c.user.attribute(name)

    # ---- operators ----

    def compile_Negative(self, node: ast.Negative) -> Closure:
        operand = self.compile(node.operand)
        return lambda c: rt.negate(operand(c))

    def compile_Not(self, node: ast.Not) -> Closure:
        operand = self.compile(node.operand)
        return lambda c: operand(c) is not True

    def compile_Arithmetic(self, node: ast.Arithmetic) -> Closure:
        left, right = self.compile(node.left), self.compile(node.right)
        types = self.checked.types
        lt, rt_ = types[node.left].kind, types[node.right].kind
        op = node.op
        fn: Callable[[Any, Any], Any]
        if "date" in (lt, rt_):
            if lt == "date" and rt_ == "date":
                return lambda c: rt.days_between(right(c), left(c))
            if rt_ == "date":
                left, right = right, left
            fn = rt.date_plus_days if op == "+" else rt.date_minus_days
            return self.failing(lambda c: fn(left(c), right(c)), node.op_span, "date arithmetic")
        if op == "+" and (types[node].kind == "text"):
            return lambda c: rt.concat2(left(c), right(c))
        fn = {"+": rt.add, "-": rt.subtract, "*": rt.multiply, "/": rt.divide}[op]
        closure: Closure = lambda c: fn(left(c), right(c))  # noqa: E731
        return self.failing(closure, node.op_span, "the calculation")

    def compile_Compare(self, node: ast.Compare) -> Closure:
        left, right = self.compile(node.left), self.compile(node.right)
        op = node.op
        if isinstance(node.right, ast.Literal) and node.right.value is not None:
            const = node.right.value
            if op == "=":
                return lambda c: left(c) == const
            if op == "!=":
                return lambda c: left(c) != const
            order = _ORDER[op]
            return lambda c: order(left(c), const)
        if op == "=":
            return lambda c: rt.equal(left(c), right(c))
        if op == "!=":
            return lambda c: not rt.equal(left(c), right(c))
        order = _ORDER[op]
        return lambda c: order(left(c), right(c))

    def compile_Logical(self, node: ast.Logical) -> Closure:
        parts = [self.compile(operand) for operand in node.operands]
        if node.op == "and":
            if len(parts) == 2:
                a, b = parts
                return lambda c: a(c) is True and b(c) is True
            return lambda c: all(p(c) is True for p in parts)
        if len(parts) == 2:
            a, b = parts
            return lambda c: a(c) is True or b(c) is True
        return lambda c: any(p(c) is True for p in parts)

    def compile_Membership(self, node: ast.Membership) -> Closure:
        item = self.compile(node.item)
        collection = node.collection
        test: Closure
        if isinstance(collection, ast.ListExpr) and all(
            isinstance(e, ast.Literal) for e in collection.items
        ):
            values = frozenset(e.value for e in collection.items if isinstance(e, ast.Literal))
            test = lambda c: item(c) in values  # noqa: E731
        elif isinstance(collection, ast.ListExpr):
            elements = [self.compile(e) for e in collection.items]

            def test(c: EvalContext) -> bool:
                value = item(c)
                return any(rt.equal(value, e(c)) for e in elements)
        else:  # a multi-picklist, or a list such as $user.roles
            values_of = self.compile(collection)

            def test(c: EvalContext) -> bool:
                value = item(c)
                return value is not None and value in (values_of(c) or ())

        if node.negated:
            return lambda c: not test(c)
        return test

    def compile_ListExpr(self, node: ast.ListExpr) -> Closure:
        elements = [self.compile(e) for e in node.items]
        return lambda c: [e(c) for e in elements]

    def compile_Call(self, node: ast.Call) -> Closure:
        info = self.checked.calls[node]
        if isinstance(info.extra, Rollup) and info.extra.relation.kind == "all":
            query = AggregateQuery(self.checked, info.extra)
            return lambda c: c.aggregate(query, c)
        if isinstance(info.extra, Rollup):
            rollup = info.extra
            value = self.compile(rollup.value) if rollup.value is not None else None
            condition = self.compile(rollup.condition) if rollup.condition is not None else None
            return rollup_python(value, condition, info)
        closure = info.spec.python([self.compile(arg) for arg in node.args], info)
        if info.spec.may_fail:
            return self.failing(closure, node.span, f"{node.name}()")
        return closure


def _follow(steps: list[Step], start: Callable[[EvalContext], Any]) -> Closure:
    """The value at the end of a path of fields, from the record `start` picks."""
    read = reader(steps[-1].type)
    first = steps[0].field
    if len(steps) == 1:
        if read is rt.percent_from_stored:
            return lambda c: read(start(c).get(first))
        return lambda c: start(c).get(first)
    hops = [(step.entity, step.field) for step in steps[1:]]

    def follow(c: EvalContext) -> Any:
        value = start(c).get(first)
        for entity, name in hops:
            if value is None:
                return None
            related = c.fetch(entity, value)
            if related is None:
                return None
            value = related.get(name)
        return read(value)

    return follow
