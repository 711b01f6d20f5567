"""The static type checker: a syntax tree against the Registry and an entity.

It reports every problem it finds (not only the first) as RuleErrors with positions, and
records what the compilers need: the type of each node, the resolved field paths, what each
call resolved to, and which nodes are constant (do not depend on the record).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from crm_platform.metadata.errors import closest, did_you_mean
from crm_platform.metadata.model import Registry
from crm_platform.rules import ast
from crm_platform.rules import types as t
from crm_platform.rules.ast import Node, Span
from crm_platform.rules.check_calls import CallChecker
from crm_platform.rules.context import Relation
from crm_platform.rules.errors import TYPE, UNKNOWN_NAME, USAGE, VALUE, RuleError
from crm_platform.rules.function_spec import CallInfo
from crm_platform.rules.resolve import NameProblem, Step, resolve_path
from crm_platform.rules.types import RuleType

PURPOSES = ("condition", "filter", "formula", "default")
_VERBS = {
    "+": "add {l} and {r}",
    "-": "subtract {r} from {l}",
    "*": "multiply {l} by {r}",
    "/": "divide {l} by {r}",
}


@dataclass
class Dependencies:
    """What an expression reads, so the engine knows when to re-evaluate it."""

    fields: set[str] = field(default_factory=set)  # fields of the record itself
    paths: set[tuple[str, ...]] = field(default_factory=set)  # paths across references
    relations: set[Relation] = field(default_factory=set)  # child rows rolled up
    lookups: set[str] = field(default_factory=set)  # entities looked up
    user: bool = False
    clock: bool = False
    prior: bool = False


@dataclass
class Checked:
    """A checked expression and everything the compilers need to know about it."""

    tree: Node
    source: str
    entity: str
    purpose: str
    result: RuleType = t.ANY
    types: dict[Node, RuleType] = field(default_factory=dict)
    paths: dict[ast.FieldRef, list[Step]] = field(default_factory=dict)
    record_paths: dict[ast.UserRef, list[Step]] = field(default_factory=dict)  # $record.x
    calls: dict[ast.Call, CallInfo] = field(default_factory=dict)
    constants: set[Node] = field(default_factory=set)
    dependencies: Dependencies = field(default_factory=Dependencies)
    errors: list[RuleError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def check(
    tree: Node,
    source: str,
    registry: Registry,
    entity: str,
    purpose: str = "condition",
    target: RuleType | None = None,
    target_name: str = "",
) -> Checked:
    """Check `tree` for `purpose` on `entity`; `target`: the type a formula/default fills."""
    if purpose not in PURPOSES:
        raise ValueError(f"unknown purpose {purpose!r}; one of {PURPOSES}")
    checked = Checked(tree, source, entity, purpose)
    if entity not in registry.entities:
        message = f"unknown entity '{entity}'{did_you_mean(entity, registry.entities)}"
        checked.errors.append(RuleError.at(tree.span, message, source, UNKNOWN_NAME))
        return checked
    checker = Checker(registry, checked)
    result = checker.visit(tree)
    checked.result = result
    checker.check_result(tree, result, target, target_name)
    return checked


class Checker:
    """One pass over the tree; `scope` is the entity whose fields bare names refer to."""

    def __init__(self, registry: Registry, checked: Checked) -> None:
        self.registry = registry
        self.checked = checked
        self.scope = [checked.entity]
        self.calls = CallChecker(self)

    # ---- reporting ----

    def error(self, span: Span | None, message: str, code: str = TYPE) -> RuleType:
        self.checked.errors.append(RuleError.at(span, message, self.checked.source, code))
        return t.ANY

    def check_value(self, picklist: RuleType, node: Node) -> None:
        """Report literal texts in `node` that are not values of `picklist`."""
        items = node.items if isinstance(node, ast.ListExpr) else (node,)
        for item in items:
            if (
                isinstance(item, ast.Literal)
                and isinstance(item.value, str)
                and picklist.options
                and item.value not in picklist.options
            ):
                hint = did_you_mean(item.value, picklist.options)
                self.error(
                    item.span, f"'{item.value}' is not a value of {picklist.owner}{hint}", VALUE
                )

    @property
    def entity(self) -> str:
        return self.scope[-1]

    @property
    def outermost(self) -> bool:
        return len(self.scope) == 1

    # ---- the walk ----

    def visit(self, node: Node) -> RuleType:
        method = getattr(self, f"visit_{type(node).__name__}")
        result: RuleType = method(node)
        self.checked.types[node] = result
        return result

    def constant(self, node: Node, *parts: Node) -> None:
        if all(p in self.checked.constants for p in parts):
            self.checked.constants.add(node)

    def visit_Literal(self, node: ast.Literal) -> RuleType:
        self.checked.constants.add(node)
        kinds = {
            "integer": t.INTEGER,
            "decimal": t.DECIMAL,
            "percent": t.PERCENT,
            "text": t.TEXT,
            "boolean": t.BOOLEAN,
            "null": t.NULL,
            "date": t.DATE,
            "datetime": t.DATETIME,
        }
        return kinds[node.kind]

    def visit_FieldRef(self, node: ast.FieldRef) -> RuleType:
        try:
            steps = resolve_path(self.registry, self.entity, node.path)
        except NameProblem as problem:
            return self.error(
                node.spans[min(problem.index, len(node.spans) - 1)], problem.message, UNKNOWN_NAME
            )
        self.checked.paths[node] = steps
        if self.outermost:
            deps = self.checked.dependencies
            deps.fields.add(node.path[0])
            if len(node.path) > 1:
                deps.paths.add(node.path)
        return steps[-1].type

    def visit_UserRef(self, node: ast.UserRef) -> RuleType:
        if node.variable == "record":
            return self._record_ref(node)
        if node.variable != "user":
            hint = closest(node.variable, ["user", "record"])
            hint = f"; did you mean '${hint}'?" if hint else " (known: $user, $record)"
            return self.error(
                node.spans[0], f"unknown variable '${node.variable}'{hint}", UNKNOWN_NAME
            )
        names = ", ".join(f"$user.{name}" for name in t.USER_ATTRIBUTES)
        if len(node.path) != 1:
            span = node.spans[2] if len(node.path) > 1 else node.span
            return self.error(span, f"write one of {names}", UNKNOWN_NAME)
        attribute = node.path[0]
        if attribute not in t.USER_ATTRIBUTES:
            hint = did_you_mean(attribute, t.USER_ATTRIBUTES)
            return self.error(
                node.spans[1],
                f"unknown user attribute '{attribute}'{hint} (known: {names})",
                UNKNOWN_NAME,
            )
        self.checked.constants.add(node)
        self.checked.dependencies.user = True
        return t.USER_ATTRIBUTES[attribute]

    def _record_ref(self, node: ast.UserRef) -> RuleType:
        """`$record.field`: a field of the rule's own record, also inside a roll-up's `where`."""
        root = self.scope[0]
        if not node.path:
            return self.error(
                node.span, f"write $record.field, a field of {root} (e.g. $record.id)", USAGE
            )
        try:
            steps = resolve_path(self.registry, root, node.path)
        except NameProblem as problem:
            return self.error(
                node.spans[min(problem.index + 1, len(node.spans) - 1)],
                problem.message,
                UNKNOWN_NAME,
            )
        self.checked.record_paths[node] = steps
        deps = self.checked.dependencies
        deps.fields.add(node.path[0])
        if len(node.path) > 1:
            deps.paths.add(node.path)
        return steps[-1].type

    def visit_Negative(self, node: ast.Negative) -> RuleType:
        operand = self.visit(node.operand)
        self.constant(node, node.operand)
        if operand.vague or operand.numeric:
            return operand if operand.numeric else t.ANY
        return self.error(node.span, f"cannot put a minus sign before {operand}")

    def visit_Not(self, node: ast.Not) -> RuleType:
        operand = self.visit(node.operand)
        self.constant(node, node.operand)
        if not (operand.vague or operand.kind == "boolean"):
            self.error(node.operand.span, f"'not' needs a condition (true/false), not {operand}")
        return t.BOOLEAN

    def visit_Arithmetic(self, node: ast.Arithmetic) -> RuleType:
        left, right = self.visit(node.left), self.visit(node.right)
        self.constant(node, node.left, node.right)
        result = t.arithmetic_result(node.op, left, right)
        if result is not None:
            return result
        message = "cannot " + _VERBS[node.op].format(l=left, r=right)
        if node.op == "+" and (left.textual or right.textual):
            message += "; use concat(a, b) to join a text and another value"
        elif "datetime" in (left.kind, right.kind) or (
            left.kind == "date" and right.kind != "date"
        ):
            message += "; use add_days(date, days) or days_between(start, end)"
        return self.error(node.op_span, message)

    def visit_Compare(self, node: ast.Compare) -> RuleType:
        left, right = self.visit(node.left), self.visit(node.right)
        self.constant(node, node.left, node.right)
        if "multi_picklist" in (left.kind, right.kind) and not (left.vague or right.vague):
            return self.error(node.op_span, 'use includes(field, "value") to test a multi-picklist')
        if not t.comparable(left, right):
            return self.error(node.op_span, f"cannot compare {left} with {right}")
        if node.op not in ("=", "!="):
            for side in (left, right):
                if side.kind == "picklist":
                    return self.error(
                        node.op_span, "picklist values have no order; compare them with = or in"
                    )
                if not t.ordered(side):
                    return self.error(node.op_span, f"'{node.op}' cannot order {side}; use = or !=")
        for side, other in ((left, node.right), (right, node.left)):
            if side.kind == "picklist":
                self.check_value(side, other)
        return t.BOOLEAN

    def visit_Logical(self, node: ast.Logical) -> RuleType:
        for operand in node.operands:
            operand_type = self.visit(operand)
            if not (operand_type.vague or operand_type.kind == "boolean"):
                self.error(
                    operand.span,
                    f"'{node.op}' combines conditions (true/false), but this is {operand_type}",
                )
        self.constant(node, *node.operands)
        return t.BOOLEAN

    def visit_Membership(self, node: ast.Membership) -> RuleType:
        item = self.visit(node.item)
        collection = self.visit(node.collection)
        self.constant(node, node.item, node.collection)
        if collection.kind == "multi_picklist":
            if not (item.vague or item.textual):
                return self.error(node.item.span, f"a multi-picklist holds texts, not {item}")
            self.check_value(collection, node.item)
            return t.BOOLEAN
        if collection.kind != "list" and not collection.unknown:
            return self.error(
                node.collection.span,
                f"'in' needs a list in [ ] or a multi-picklist on its right, not {collection}",
            )
        if isinstance(node.collection, ast.ListExpr):
            for element in node.collection.items:
                element_type = self.checked.types.get(element, t.ANY)
                if not t.comparable(item, element_type):
                    self.error(element.span, f"cannot compare {item} with {element_type}")
            if item.kind == "picklist":
                self.check_value(item, node.collection)
        elif collection.item is not None and not t.comparable(item, collection.item):
            self.error(node.item.span, f"cannot look for {item} in a {collection}")
        return t.BOOLEAN

    def visit_ListExpr(self, node: ast.ListExpr) -> RuleType:
        result = t.NULL
        for element in node.items:
            element_type = self.visit(element)
            merged = t.unify(result, element_type)
            if merged is None:
                self.error(
                    element.span,
                    f"a list holds values of one type: {result} and {element_type} do not mix",
                )
                return t.list_of(t.ANY)
            result = merged
        self.constant(node, *node.items)
        return t.list_of(result)

    def visit_Filtered(self, node: ast.Filtered) -> RuleType:
        return self.error(
            node.span, "'where' filters child rows only inside count, sum, min or max", USAGE
        )

    def visit_Call(self, node: ast.Call) -> RuleType:
        return self.calls.check(node)

    # ---- the whole expression ----

    def check_result(
        self, tree: Node, result: RuleType, target: RuleType | None, target_name: str
    ) -> None:
        purpose = self.checked.purpose
        if purpose in ("condition", "filter"):
            if not (result.unknown or result.kind == "boolean"):
                self.error(tree.span, f"a condition must be true or false, but this gives {result}")
            return
        if target is None:
            return
        if not t.fits(result, target):
            message = f"this gives {result} but {target_name or 'the field'} holds {target}"
            if target.kind == "integer" and result.numeric:
                message += "; use round(x), floor(x) or ceil(x)"
            elif target.textual and not result.textual:
                message += "; use text(x)"
            self.error(tree.span, message)
            return
        if target.kind in ("picklist", "multi_picklist"):
            for node in _result_literals(tree):
                self.check_value(target, node)


def _result_literals(tree: Node) -> list[Node]:
    """The literal results an expression may give (through if/case/coalesce branches)."""
    if isinstance(tree, (ast.Literal, ast.ListExpr)):
        return [tree]
    if isinstance(tree, ast.Call) and tree.name in ("if", "coalesce"):
        start = 1 if tree.name == "if" else 0
        return [n for arg in tree.args[start:] for n in _result_literals(arg)]
    if isinstance(tree, ast.Call) and tree.name == "case":
        results: list[Any] = list(tree.args[2::2])
        if (len(tree.args) - 1) % 2 == 1:
            results.append(tree.args[-1])
        return [n for arg in results for n in _result_literals(arg)]
    return []
