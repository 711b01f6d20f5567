"""Checking function calls: names, argument counts, each function's type rule, and the calls
the checker resolves itself (roll-ups over child rows, lookups of other entities), plus what
each purpose allows (change detection only in conditions; only SQL-able calls in filters).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from crm_platform.metadata.errors import did_you_mean
from crm_platform.rules import ast
from crm_platform.rules import types as t
from crm_platform.rules.context import Relation
from crm_platform.rules.errors import UNKNOWN_NAME, USAGE
from crm_platform.rules.function_spec import NOT_LITERAL, CallInfo, FunctionSpec
from crm_platform.rules.functions import FUNCTIONS, function, has_sql_form
from crm_platform.rules.lib_records import LookupTarget, Rollup
from crm_platform.rules.resolve import NameProblem, entity_named, field_of, resolve_relation
from crm_platform.rules.types import RuleType

if TYPE_CHECKING:
    from crm_platform.rules.checker import Checker


class _Call:
    """The CallCheck a FunctionSpec's check sees."""

    def __init__(self, checker: Checker, node: ast.Call, info: CallInfo) -> None:
        self.checker = checker
        self.node = node
        self.info = info

    def fail(self, index: int | None, message: str) -> RuleType:
        span = self.node.name_span if index is None else self.node.args[index].span
        return self.checker.error(span, message)

    def check_value(self, picklist: RuleType, arg: ast.Node) -> None:
        self.checker.check_value(picklist, arg)


def _arity(spec: FunctionSpec) -> str:
    low, high = spec.min_args, spec.max_args
    noun = "argument" if (high or low) == 1 else "arguments"
    if high is None:
        return f"at least {low} {noun}"
    if low == high:
        return "no arguments" if low == 0 else f"{low} {noun}"
    return f"{low} to {high} {noun}"


class CallChecker:
    def __init__(self, checker: Checker) -> None:
        self.checker = checker

    def check(self, node: ast.Call) -> RuleType:
        c = self.checker
        spec = function(node.name)
        if spec is None:
            for arg in node.args:
                c.visit(arg)
            return c.error(
                node.name_span,
                f"unknown function '{node.name}'{did_you_mean(node.name, FUNCTIONS)}",
                UNKNOWN_NAME,
            )
        count = len(node.args)
        if count < spec.min_args or (spec.max_args is not None and count > spec.max_args):
            for arg in node.args:
                if not isinstance(arg, ast.Filtered):
                    c.visit(arg)
            return c.error(
                node.name_span, f"{spec.name}() takes {_arity(spec)}, not {count}", USAGE
            )
        if spec.special == "rollup" and self._is_rollup(node):
            return self._rollup(node, spec)
        if spec.special == "rollup" and spec.name in ("min", "max") and count == 1:
            c.visit(node.args[0])
            return c.error(
                node.name_span,
                f"{spec.name}() needs two or more values, or child rows: {spec.name}(lines.amount)",
                USAGE,
            )
        if spec.special == "change" and c.checked.purpose != "condition":
            c.error(
                node.name_span,
                f"{spec.name}() can only be used in conditions (validations, "
                "required/hidden/read-only conditions, workflow guards)",
                USAGE,
            )
        types = [c.visit(arg) for arg in node.args]
        literals = [arg.value if isinstance(arg, ast.Literal) else NOT_LITERAL for arg in node.args]
        info = CallInfo(node, spec, types, t.ANY, literals)
        c.checked.calls[node] = info
        if spec.special == "lookup":
            info.result = self._lookup(node, info)
        else:
            info.result = spec.check(_Call(c, node, info))
        self._track(node, spec)
        self._filter_check(node, spec, info)
        return info.result

    def _track(self, node: ast.Call, spec: FunctionSpec) -> None:
        c = self.checker
        deps = c.checked.dependencies
        if spec.name in ("today", "now"):
            deps.clock = True
        if spec.special == "change":
            deps.prior = True
        if spec.special is None:
            c.constant(node, *node.args)

    def _filter_check(self, node: ast.Call, spec: FunctionSpec, info: CallInfo) -> None:
        c = self.checker
        if c.checked.purpose != "filter" or node in c.checked.constants or spec.special == "change":
            return
        if not has_sql_form(spec):
            c.error(
                node.name_span,
                f"{spec.name}() cannot be used in a list filter: {spec.sql_note}",
                USAGE,
            )
        elif spec.sql_check is not None:
            problem = spec.sql_check(info)
            if problem:
                c.error(node.span, problem, USAGE)

    # ---- roll-ups ----

    def _is_rollup(self, node: ast.Call) -> bool:
        if node.name in ("count", "sum"):
            return True
        if len(node.args) != 1:
            return False
        arg = node.args[0]
        source = arg.source if isinstance(arg, ast.Filtered) else arg
        if isinstance(arg, ast.Filtered):
            return True
        if not isinstance(source, ast.FieldRef) or len(source.path) < 2:
            return False
        try:
            self._relation(source.path[0])
        except NameProblem:
            return False
        return True

    def _relation(self, name: str) -> Relation:
        """The relation a roll-up names: one of the record's, or else any entity, whose rows the
        `where` ties to the record through `$record` (kind "all"). Raises NameProblem."""
        c = self.checker
        try:
            return resolve_relation(c.registry, c.entity, name)
        except NameProblem:
            if name in c.registry.entities and not any(
                e.name == name for e, _ in c.registry.references_to(c.entity)
            ):
                return Relation("all", name, "", name)
            raise

    def _rollup(self, node: ast.Call, spec: FunctionSpec) -> RuleType:
        c = self.checker
        arg = node.args[0]
        source, condition = (
            (arg.source, arg.condition) if isinstance(arg, ast.Filtered) else (arg, None)
        )
        example = "count(lines)" if spec.name == "count" else f"{spec.name}(lines.amount)"
        if not isinstance(source, ast.FieldRef):
            return c.error(source.span, f"{spec.name}() works on child rows, e.g. {example}", USAGE)
        try:
            relation = self._relation(source.path[0])
        except NameProblem as problem:
            return c.error(source.spans[0], problem.message, UNKNOWN_NAME)
        if relation.kind == "all" and not _names_record(condition):
            return c.error(
                source.spans[0],
                f"{relation.entity} does not refer to {c.entity}: say which {relation.entity} "
                f"records count with 'where' and $record, e.g. "
                f"{spec.name}({source.dotted} where owner_id = $record.owner_id)",
                USAGE,
            )
        if spec.name == "count" and len(source.path) > 1:
            return c.error(
                source.spans[1],
                "count() counts rows: write count(lines) or count(lines where ...)",
                USAGE,
            )
        if spec.name != "count" and len(source.path) == 1:
            return c.error(
                source.span,
                f"{spec.name}() needs a field of the child rows, "
                f"e.g. {spec.name}({source.path[0]}.amount)",
                USAGE,
            )
        if c.checked.purpose == "filter" and relation.kind == "many":
            c.error(
                source.spans[0],
                f"roll-ups over the N:N link '{relation.name}' cannot run in a list filter",
                USAGE,
            )
        c.scope.append(relation.entity)
        try:
            value = None
            value_type = t.INTEGER
            if len(source.path) > 1:
                value = ast.FieldRef(
                    source.spans[1].to(source.spans[-1]), source.path[1:], source.spans[1:]
                )
                value_type = c.visit(value)
                if spec.name == "sum" and not (value_type.numeric or value_type.vague):
                    c.error(value.span, f"sum() adds numbers, but {value.dotted} is {value_type}")
                elif spec.name != "sum" and not t.ordered(value_type):
                    c.error(
                        value.span,
                        f"{spec.name}() compares numbers, texts or dates, not {value_type}",
                    )
            if condition is not None:
                condition_type = c.visit(condition)
                if not (condition_type.vague or condition_type.kind == "boolean"):
                    c.error(
                        condition.span,
                        f"the condition after 'where' must be true or false, not {condition_type}",
                    )
        finally:
            c.scope.pop()
        if c.outermost:
            c.checked.dependencies.relations.add(relation)
        result = t.INTEGER if spec.name == "count" else value_type
        rollup = Rollup(spec.name, relation, value, condition, value_type)
        c.checked.calls[node] = CallInfo(node, spec, [value_type], result, [NOT_LITERAL], rollup)
        return result

    # ---- lookup ----

    def _lookup(self, node: ast.Call, info: CallInfo) -> RuleType:
        c = self.checker
        call = _Call(c, node, info)
        names = info.literals
        if not isinstance(names[0], str):
            return call.fail(
                0,
                "the first argument of lookup() is the entity's name in quotes, "
                'e.g. "postal_code"',
            )
        try:
            entity = entity_named(c.registry, names[0])
        except NameProblem as problem:
            return call.fail(0, problem.message)
        four = len(node.args) == 4
        key_index, return_index = (2, 3) if four else (1, 2)
        if four:
            if not isinstance(names[1], str):
                return call.fail(
                    1, "the second argument of lookup() is the key field's name in quotes"
                )
            key_field = names[1]
        elif entity.title_field:
            key_field = entity.title_field
        else:
            return call.fail(
                None,
                f"{entity.name} has no title field: name the key field, "
                f'lookup("{entity.name}", "field", value, "return_field")',
            )
        if not isinstance(names[return_index], str):
            return call.fail(
                return_index,
                "the last argument of lookup() is the name of the field to return, in quotes",
            )
        found: list[RuleType] = []
        for index, name in ((1 if four else None, key_field), (return_index, names[return_index])):
            try:
                field_type = field_of(c.registry, entity.name, name)
            except NameProblem as problem:
                return call.fail(index, problem.message)
            if field_type.kind in ("relation", "multi_picklist"):
                return call.fail(index, f"lookup() cannot use '{name}', which holds several values")
            found.append(field_type)
        key_type, result = found
        value_type = info.types[key_index]
        if not t.comparable(key_type, value_type):
            return call.fail(
                key_index,
                f"{entity.name}.{key_field} is {key_type}, but the key given is {value_type}",
            )
        if key_type.kind == "picklist":
            c.check_value(key_type, node.args[key_index])
        info.extra = LookupTarget(entity.name, key_field, names[return_index], result, key_type)
        c.checked.dependencies.lookups.add(entity.name)
        return result



def _names_record(node: ast.Node | None) -> bool:
    """Whether `node` mentions `$record` anywhere (a misspelt variable counts: the checker
    names the typo rather than the missing `$record`)."""
    if node is None:
        return False
    return any(isinstance(n, ast.UserRef) and n.variable != "user" for n in ast.walk(node))
