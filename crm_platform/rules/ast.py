"""The syntax tree of the rules language: immutable dataclasses, each with its place in the text.

Nodes compare by identity (`eq=False`), so the checker can key its side tables by node.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Span:
    """Where a node is: 1-based line and column of its first character; the end is exclusive."""

    line: int
    column: int
    end_line: int
    end_column: int

    def to(self, other: Span) -> Span:
        """The span from the start of this one to the end of `other`."""
        return Span(self.line, self.column, other.end_line, other.end_column)


@dataclass(frozen=True, eq=False, slots=True)
class Node:
    span: Span

    def children(self) -> tuple[Node, ...]:
        return ()


@dataclass(frozen=True, eq=False, slots=True)
class Literal(Node):
    """A constant. `kind` is integer, decimal, percent, text, boolean, null, date or datetime."""

    value: Any
    kind: str


@dataclass(frozen=True, eq=False, slots=True)
class FieldRef(Node):
    """A field of the record, or a path across references: `amount`, `account.owner.name`."""

    path: tuple[str, ...]
    spans: tuple[Span, ...]  # one per segment, for errors that point at one name

    @property
    def dotted(self) -> str:
        return ".".join(self.path)


@dataclass(frozen=True, eq=False, slots=True)
class UserRef(Node):
    """An attribute of the current user: `$user.role`."""

    variable: str  # without the dollar sign
    path: tuple[str, ...]
    spans: tuple[Span, ...]


@dataclass(frozen=True, eq=False, slots=True)
class Negative(Node):
    """Unary minus."""

    operand: Node

    def children(self) -> tuple[Node, ...]:
        return (self.operand,)


@dataclass(frozen=True, eq=False, slots=True)
class Not(Node):
    operand: Node

    def children(self) -> tuple[Node, ...]:
        return (self.operand,)


@dataclass(frozen=True, eq=False, slots=True)
class Arithmetic(Node):
    """`+ - * /`; `op_span` points at the operator."""

    op: str
    left: Node
    right: Node
    op_span: Span

    def children(self) -> tuple[Node, ...]:
        return (self.left, self.right)


@dataclass(frozen=True, eq=False, slots=True)
class Compare(Node):
    """`= != < <= > >=`."""

    op: str
    left: Node
    right: Node
    op_span: Span

    def children(self) -> tuple[Node, ...]:
        return (self.left, self.right)


@dataclass(frozen=True, eq=False, slots=True)
class Logical(Node):
    """`and` / `or` over two or more operands (a chain of the same operator is flattened)."""

    op: str
    operands: tuple[Node, ...]

    def children(self) -> tuple[Node, ...]:
        return self.operands


@dataclass(frozen=True, eq=False, slots=True)
class Membership(Node):
    """`x in [a, b]`, `x not in [...]`; the right side may also be a multi-picklist."""

    item: Node
    collection: Node
    negated: bool

    def children(self) -> tuple[Node, ...]:
        return (self.item, self.collection)


@dataclass(frozen=True, eq=False, slots=True)
class ListExpr(Node):
    items: tuple[Node, ...]

    def children(self) -> tuple[Node, ...]:
        return self.items


@dataclass(frozen=True, eq=False, slots=True)
class Filtered(Node):
    """`lines.amount where status = "paid"`: only valid as the argument of a roll-up."""

    source: Node
    condition: Node

    def children(self) -> tuple[Node, ...]:
        return (self.source, self.condition)


@dataclass(frozen=True, eq=False, slots=True)
class Call(Node):
    """A function call; `name` is lower-cased (ISBLANK and isblank are the same function)."""

    name: str
    args: tuple[Node, ...]
    name_span: Span

    def children(self) -> tuple[Node, ...]:
        return self.args


def walk(node: Node) -> Iterator[Node]:
    """Every node of the tree, parents before children, without recursion."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(current.children()))


def depth(node: Node) -> int:
    """The depth of the tree (a single node has depth 1), computed without recursion."""
    deepest = 0
    stack: list[tuple[Node, int]] = [(node, 1)]
    while stack:
        current, level = stack.pop()
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in current.children())
    return deepest


@dataclass(frozen=True, eq=False, slots=True)
class Statement(Node):
    """One statement of a `.rules` file.

    `kind` is validate, formula, default, require, hide or readonly. `field` is None for
    validate and "*" for all fields (hide/readonly).
    """

    kind: str
    entity: str
    entity_span: Span
    expr: Node
    field: str | None = None
    field_span: Span | None = None
    message: str | None = None
    on_fields: tuple[str, ...] = ()
    on_spans: tuple[Span, ...] = ()

    def children(self) -> tuple[Node, ...]:
        return (self.expr,)
