"""From text to syntax tree: the Lark LALR parser with a Transformer that builds `ast` nodes.

The Transformer runs inline, while the LALR parser reduces, so building the tree never
recurses; the depth of the finished tree is then limited (MAX_DEPTH) so that the checker
and compilers can walk it recursively without touching Python's recursion limit.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from decimal import Decimal
from importlib import resources
from typing import Any

from lark import Lark, Token, Transformer
from lark.exceptions import UnexpectedInput

from crm_platform.rules import ast
from crm_platform.rules.errors import SYNTAX, RuleError
from crm_platform.rules.syntax_errors import explain

MAX_LENGTH = 20_000  # characters in one expression or statement
MAX_DEPTH = 100  # nesting levels of one expression


def parse_expression(text: str) -> ast.Node:
    """The syntax tree of one expression. Raises RuleError."""
    return _parse(text, "expression", text)


def parse_statement(text: str, first_line: int = 1, source: str | None = None) -> ast.Statement:
    """One `.rules` statement that starts on line `first_line` of `source` (the whole file)."""
    padded = "\n" * (first_line - 1) + text
    node = _parse(padded, "statement", source if source is not None else padded)
    assert isinstance(node, ast.Statement)
    return node


def _parse(text: str, start: str, source: str) -> ast.Node:
    body = text.lstrip("\n")
    if len(body) > MAX_LENGTH:
        line = len(text) - len(body) + 1
        raise RuleError.at(
            ast.Span(line, 1, line, 2),
            f"this rule is too long ({len(body)} characters; at most {MAX_LENGTH})",
            source,
            SYNTAX,
        )
    if not body.strip():
        raise RuleError("the rule is empty: write an expression", code=SYNTAX, source_line="")
    try:
        node: ast.Node = _lark().parse(text, start=start)  # type: ignore[assignment]
    except UnexpectedInput as exc:
        parse = functools.partial(_lark().parse, start=start)
        raise explain(exc, text, source, parse, _lark(), statement=start == "statement") from None
    except _LiteralError as exc:
        raise RuleError.at(exc.span, exc.message, source, SYNTAX) from None
    if ast.depth(node) > MAX_DEPTH:
        raise RuleError.at(
            node.span,
            f"this expression is nested too deeply (more than {MAX_DEPTH} levels); split it up",
            source,
            SYNTAX,
        )
    return node


@functools.cache
def _lark() -> Lark:
    grammar = resources.files("crm_platform.rules").joinpath("grammar.lark").read_text("utf-8")
    return Lark(
        grammar,
        parser="lalr",
        lexer="contextual",
        propagate_positions=True,
        maybe_placeholders=True,
        start=["expression", "statement"],
        transformer=_TreeBuilder(),
    )


def lexer() -> Lark:
    """The Lark instance (for tools that need its lexer, such as the error explainer)."""
    return _lark()


class _LiteralError(Exception):
    def __init__(self, span: ast.Span, message: str) -> None:
        super().__init__(message)
        self.span = span
        self.message = message


def span_of(token: Token) -> ast.Span:
    return ast.Span(token.line or 1, token.column or 1, token.end_line or 1, token.end_column or 1)


def _first_span(item: Any) -> ast.Span:
    return item.span if isinstance(item, ast.Node) else span_of(item)


def _between(first: Any, last: Any) -> ast.Span:
    return _first_span(first).to(_first_span(last))


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "0": "\0"}
_ESCAPE = re.compile(r"\\(u[0-9a-fA-F]{4}|.)")


def unquote(token: Token) -> str:
    """The text of a string literal, with escapes resolved. Raises _LiteralError."""
    raw = str(token)[1:-1]

    def replace(match: re.Match[str]) -> str:
        code = match.group(1)
        if code in _ESCAPES:
            return _ESCAPES[code]
        if code.startswith("u") and len(code) == 5:
            return chr(int(code[1:], 16))
        raise _LiteralError(
            span_of(token), f"unknown escape '\\{code}' in text; write '\\\\' for a backslash"
        )

    return _ESCAPE.sub(replace, raw)


def _literal(token: Token) -> ast.Literal:
    span = span_of(token)
    kind = token.type
    text = str(token)
    if kind == "NUMBER":
        if text.endswith("%"):
            return ast.Literal(span, Decimal(text[:-1]).scaleb(-2), "percent")
        if "." in text:
            return ast.Literal(span, Decimal(text), "decimal")
        return ast.Literal(span, int(text), "integer")
    if kind == "STRING":
        return ast.Literal(span, unquote(token) or None, "text")
    if kind in ("TRUE", "FALSE"):
        return ast.Literal(span, kind == "TRUE", "boolean")
    if kind == "NULL":
        return ast.Literal(span, None, "null")
    if kind == "DATE":
        body = text[2:-1]
        try:
            return ast.Literal(span, dt.date.fromisoformat(body), "date")
        except ValueError:
            raise _LiteralError(
                span, f'\'{body}\' is not a date; write d"YYYY-MM-DD", e.g. d"2026-01-31"'
            ) from None
    body = text[3:-1]
    try:
        value = dt.datetime.fromisoformat(body)
    except ValueError:
        raise _LiteralError(
            span,
            f"'{body}' is not a date and time; "
            'write dt"YYYY-MM-DDTHH:MM:SS" (UTC unless an offset is given)',
        ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return ast.Literal(span, value.astimezone(dt.UTC), "datetime")


def _present(children: list[Any]) -> list[Any]:
    return [c for c in children if c is not None]


class _TreeBuilder(Transformer[Token, ast.Node]):
    """One method per grammar rule; runs inside the LALR parser (no recursion)."""

    def expression(self, children: list[Any]) -> ast.Node:
        return children[0]

    def statement(self, children: list[Any]) -> ast.Node:
        return children[0]

    def literal(self, children: list[Token]) -> ast.Literal:
        return _literal(children[0])

    def path(self, children: list[Token]) -> ast.FieldRef:
        spans = tuple(span_of(t) for t in children)
        return ast.FieldRef(spans[0].to(spans[-1]), tuple(str(t) for t in children), spans)

    def user_ref(self, children: list[Token]) -> ast.UserRef:
        spans = tuple(span_of(t) for t in children)
        variable = str(children[0])[1:]
        return ast.UserRef(
            spans[0].to(spans[-1]), variable, tuple(str(t) for t in children[1:]), spans
        )

    def parens(self, children: list[Any]) -> ast.Node:
        return children[1]

    def negative(self, children: list[Any]) -> ast.Node:
        minus, operand = children
        span = _between(minus, operand)
        if isinstance(operand, ast.Literal) and operand.kind in ("integer", "decimal", "percent"):
            return ast.Literal(span, -operand.value, operand.kind)
        return ast.Negative(span, operand)

    def negation(self, children: list[Any]) -> ast.Node:
        keyword, operand = children
        return ast.Not(_between(keyword, operand), operand)

    def arithmetic(self, children: list[Any]) -> ast.Node:
        left, op, right = children
        return ast.Arithmetic(_between(left, right), str(op), left, right, span_of(op))

    def compare(self, children: list[Any]) -> ast.Node:
        left, op, right = children
        return ast.Compare(_between(left, right), str(op), left, right, span_of(op))

    def membership(self, children: list[Any]) -> ast.Node:
        negated = len(children) == 4
        return ast.Membership(
            _between(children[0], children[-1]), children[0], children[-1], negated
        )

    def logical(self, children: list[Any]) -> ast.Node:
        left, op, right = children
        name = str(op)
        operands = (
            (*left.operands, right)
            if isinstance(left, ast.Logical) and left.op == name
            else (left, right)
        )
        return ast.Logical(_between(left, right), name, operands)

    def call(self, children: list[Any]) -> ast.Node:
        name, _lpar, *args, rpar = children
        return ast.Call(
            _between(name, rpar), str(name).lower(), tuple(_present(args)), span_of(name)
        )

    def filtered(self, children: list[Any]) -> ast.Node:
        source, _where, condition = children
        return ast.Filtered(_between(source, condition), source, condition)

    def list_expr(self, children: list[Any]) -> ast.Node:
        items = tuple(_present(children[1:-1]))
        return ast.ListExpr(_between(children[0], children[-1]), items)

    # ---- statements ----

    def field_target(self, children: list[Token]) -> tuple[Token, Token]:
        return children[0], children[1]

    def fields_target(self, children: list[Token]) -> tuple[Token, Token]:
        return children[0], children[1]

    def on_fields(self, children: list[Token]) -> list[Token]:
        return children[1:]

    def validate_stmt(self, children: list[Any]) -> ast.Statement:
        keyword, entity, message, on, _when, expr = children
        fields = on or []
        text = unquote(message)
        return ast.Statement(
            _between(keyword, expr),
            "validate",
            str(entity),
            span_of(entity),
            expr,
            message=text,
            on_fields=tuple(str(f) for f in fields),
            on_spans=tuple(span_of(f) for f in fields),
        )

    def _field_statement(self, kind: str, children: list[Any]) -> ast.Statement:
        keyword, (entity, field), _sep, expr = children
        return ast.Statement(
            _between(keyword, expr),
            kind,
            str(entity),
            span_of(entity),
            expr,
            str(field),
            span_of(field),
        )

    def formula_stmt(self, children: list[Any]) -> ast.Statement:
        return self._field_statement("formula", children)

    def default_stmt(self, children: list[Any]) -> ast.Statement:
        return self._field_statement("default", children)

    def require_stmt(self, children: list[Any]) -> ast.Statement:
        return self._field_statement("require", children)

    def hide_stmt(self, children: list[Any]) -> ast.Statement:
        return self._field_statement("hide", children)

    def readonly_stmt(self, children: list[Any]) -> ast.Statement:
        return self._field_statement("readonly", children)
