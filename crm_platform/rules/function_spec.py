"""What a function of the language is: its signature and type rule, its Python form and its
SQL form. The checker and both compilers read the same FunctionSpec (see functions.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from crm_platform.rules import types as t
from crm_platform.rules.ast import Call, Node
from crm_platform.rules.context import EvalContext
from crm_platform.rules.types import RuleType

if TYPE_CHECKING:
    from crm_platform.rules.sql_values import SqlBuilder, SqlValue

Closure = Callable[[EvalContext], Any]


class _NotLiteral:
    def __repr__(self) -> str:
        return "NOT_LITERAL"


NOT_LITERAL: Any = _NotLiteral()


@dataclass
class CallInfo:
    """What the checker learnt about one call, handed to the compilers."""

    node: Call
    spec: FunctionSpec
    types: list[RuleType]
    result: RuleType
    literals: list[Any]  # the value of each literal argument, else NOT_LITERAL
    extra: Any = None  # per-function data: a compiled regex, a Relation, a lookup target ...


class CallCheck(Protocol):
    """The checker's side of a call, as a function's `check` sees it."""

    node: Call
    info: CallInfo

    def fail(self, index: int | None, message: str) -> RuleType:
        """Report an error at argument `index` (None: the function name); returns ANY."""
        ...

    def check_value(self, picklist: RuleType, arg: Node) -> None:
        """Report literal texts in `arg` that are not values of the picklist."""
        ...


PythonBuilder = Callable[[list[Closure], CallInfo], Closure]
SqlForm = Callable[["SqlBuilder", list["SqlValue"], CallInfo], "SqlValue"]

# What a parameter accepts, with the words used in error messages.
ACCEPTS: dict[str, tuple[Callable[[RuleType], bool], str]] = {
    "number": (lambda x: x.numeric, "a number"),
    "integer": (lambda x: x.kind == "integer", "a whole number"),
    "text": (lambda x: x.textual, "text"),
    "boolean": (lambda x: x.kind == "boolean", "a condition (true/false)"),
    "date": (lambda x: x.kind == "date", "a date"),
    "temporal": (lambda x: x.kind in ("date", "datetime"), "a date or a date and time"),
    "multi": (lambda x: x.kind == "multi_picklist", "a multi-picklist field"),
    "scalar": (lambda x: x.kind not in ("list", "relation", "multi_picklist"), "a single value"),
    "any": (lambda x: x.kind != "relation", "a value"),
}


@dataclass(frozen=True)
class Param:
    name: str
    accepts: str  # a key of ACCEPTS


@dataclass(frozen=True)
class FunctionSpec:
    """One function. `check` returns the result type (reporting problems through CallCheck);
    `python` builds the evaluation closure from the argument closures; `sql` builds the SQL
    form from the arguments' SQL forms, and is None when the function cannot run in a filter
    (`sql_note` says why). `sql_check` may refuse particular uses (e.g. non-literal digits).
    """

    name: str
    category: str
    signature: str
    summary: str
    check: Callable[[CallCheck], RuleType]
    python: PythonBuilder
    sql: SqlForm | None = None
    sql_note: str = "this function cannot run in the database"
    sql_check: Callable[[CallInfo], str | None] | None = None
    min_args: int = 0
    max_args: int | None = 0
    may_fail: bool = False  # can raise EvaluationFailure / ArithmeticError at run time
    special: str | None = None  # "rollup", "change", "lookup": resolved by the checker itself
    lazy: bool = False  # evaluates its arguments itself (if, case, coalesce)
    aliases: tuple[str, ...] = field(default=())


def ordinal(index: int) -> str:
    return ("first", "second", "third", "fourth", "fifth")[index] if index < 5 else f"#{index + 1}"


def typed(
    params: Sequence[Param],
    result: RuleType | Callable[[list[RuleType]], RuleType],
    variadic: bool = False,
) -> Callable[[CallCheck], RuleType]:
    """A check for a plain signature: each argument must be what its Param accepts."""

    def check(c: CallCheck) -> RuleType:
        types = c.info.types
        ok = True
        for index, arg_type in enumerate(types):
            param = params[min(index, len(params) - 1)] if variadic else params[index]
            test, words = ACCEPTS[param.accepts]
            if arg_type.vague or test(arg_type):
                continue
            ok = False
            where = (
                "its argument"
                if len(params) == 1 and not variadic
                else f"its {ordinal(index)} argument"
            )
            c.fail(
                index, f"{c.node.name}() expects {words} as {where} ({param.name}), not {arg_type}"
            )
        if not ok:
            return t.ANY
        return result(types) if callable(result) else result

    return check


def first_numeric(types: list[RuleType]) -> RuleType:
    """The result kind of abs(), round(x, n) ...: that of the first argument (decimal if null)."""
    first = types[0] if types else t.DECIMAL
    return first if first.numeric else t.DECIMAL


def unified(c: CallCheck, indexes: Sequence[int]) -> RuleType:
    """One type for the arguments at `indexes` (the branches of if/case/coalesce)."""
    result = t.NULL
    for index in indexes:
        arg_type = c.info.types[index]
        merged = t.unify(result, arg_type)
        if merged is None:
            return c.fail(
                index,
                f"{c.node.name}() gives {result} here but {arg_type} there; "
                "all results must have one type",
            )
        result = merged
    return result


# ---- Python builders ----


def strict(fn: Callable[..., Any]) -> PythonBuilder:
    """A builder for a function that gives null when any argument is null."""

    def build(args: list[Closure], info: CallInfo) -> Closure:
        if len(args) == 0:
            return lambda c: fn()
        if len(args) == 1:
            (a,) = args

            def one(c: EvalContext) -> Any:
                v = a(c)
                return None if v is None else fn(v)

            return one
        if len(args) == 2:
            a, b = args

            def two(c: EvalContext) -> Any:
                x = a(c)
                if x is None:
                    return None
                y = b(c)
                return None if y is None else fn(x, y)

            return two

        def many(c: EvalContext) -> Any:
            values = [arg(c) for arg in args]
            return None if any(v is None for v in values) else fn(*values)

        return many

    return build


def plain(fn: Callable[..., Any]) -> PythonBuilder:
    """A builder for a function that handles null arguments itself."""

    def build(args: list[Closure], info: CallInfo) -> Closure:
        if len(args) == 1:
            (a,) = args
            return lambda c: fn(a(c))
        if len(args) == 2:
            a, b = args
            return lambda c: fn(a(c), b(c))
        return lambda c: fn(*[arg(c) for arg in args])

    return build
