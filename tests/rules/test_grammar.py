"""The grammar: every literal, operator, precedence level, path and call form parses to the
expected tree, with positions."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from crm_platform.rules import RuleError, ast, parse_expression
from crm_platform.rules.parser import MAX_DEPTH, MAX_LENGTH, parse_statement


def shape(node: ast.Node) -> object:
    """A compact picture of a tree, for comparisons."""
    if isinstance(node, ast.Literal):
        return node.value
    if isinstance(node, ast.FieldRef):
        return node.dotted
    if isinstance(node, ast.UserRef):
        return "$" + ".".join((node.variable, *node.path))
    if isinstance(node, (ast.Arithmetic, ast.Compare)):
        return (node.op, shape(node.left), shape(node.right))
    if isinstance(node, ast.Logical):
        return (node.op, *[shape(o) for o in node.operands])
    if isinstance(node, ast.Not):
        return ("not", shape(node.operand))
    if isinstance(node, ast.Negative):
        return ("neg", shape(node.operand))
    if isinstance(node, ast.Membership):
        return ("not in" if node.negated else "in", shape(node.item), shape(node.collection))
    if isinstance(node, ast.ListExpr):
        return [shape(i) for i in node.items]
    if isinstance(node, ast.Call):
        return (node.name + "()", *[shape(a) for a in node.args])
    if isinstance(node, ast.Filtered):
        return ("where", shape(node.source), shape(node.condition))
    raise AssertionError(node)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("42", 42),
        ("12.5", Decimal("12.5")),
        ("0.10", Decimal("0.10")),
        ("40%", Decimal("0.40")),
        ("12.5%", Decimal("0.125")),
        ("-3", -3),
        ("- 2.5", Decimal("-2.5")),
        ('"text"', "text"),
        ("'single'", "single"),
        ('""', None),
        (r'"a \"quoted\" \\ word"', 'a "quoted" \\ word'),
        (r"'it\'s'", "it's"),
        (r'"tab\tnew\nline"', "tab\tnew\nline"),
        (r'"\u4e2d\u6587"', "中文"),
        ('"中文"', "中文"),
        ("true", True),
        ("false", False),
        ("null", None),
        ('d"2026-01-31"', dt.date(2026, 1, 31)),
        ("d'2026-01-31'", dt.date(2026, 1, 31)),
        ('dt"2026-01-31T10:00:00Z"', dt.datetime(2026, 1, 31, 10, tzinfo=dt.UTC)),
        ('dt"2026-01-31 10:00"', dt.datetime(2026, 1, 31, 10, tzinfo=dt.UTC)),
        ('dt"2026-01-31T10:00:00+08:00"', dt.datetime(2026, 1, 31, 2, tzinfo=dt.UTC)),
    ],
)
def test_literals(text: str, expected: object) -> None:
    node = parse_expression(text)
    assert isinstance(node, ast.Literal)
    assert node.value == expected
    assert type(node.value) is type(expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a + b * c", ("+", "a", ("*", "b", "c"))),
        ("a * b + c", ("+", ("*", "a", "b"), "c")),
        ("a - b - c", ("-", ("-", "a", "b"), "c")),
        ("a / b / c", ("/", ("/", "a", "b"), "c")),
        ("(a + b) * c", ("*", ("+", "a", "b"), "c")),
        ("-a * b", ("*", ("neg", "a"), "b")),
        ("-(a + 1)", ("neg", ("+", "a", 1))),
        ("a - -1", ("-", "a", -1)),
        ("a + b > c * 2", (">", ("+", "a", "b"), ("*", "c", 2))),
        (
            "a = 1 and b != 2 or c < 3",
            ("or", ("and", ("=", "a", 1), ("!=", "b", 2)), ("<", "c", 3)),
        ),
        ("a or b and c", ("or", "a", ("and", "b", "c"))),
        ("a and b and c and d", ("and", "a", "b", "c", "d")),
        ("a or b or c", ("or", "a", "b", "c")),
        ("not a = b", ("not", ("=", "a", "b"))),
        ("not a and b", ("and", ("not", "a"), "b")),
        ("not not a", ("not", ("not", "a"))),
        ("a <= 1 or a >= 2", ("or", ("<=", "a", 1), (">=", "a", 2))),
        ("x in [1, 2, 3]", ("in", "x", [1, 2, 3])),
        ("x not in [\"a\", 'b',]", ("not in", "x", ["a", "b"])),
        ("x in []", ("in", "x", [])),
        ('"email" in channels', ("in", "email", "channels")),
        ("x + 1 in [a, b + 1]", ("in", ("+", "x", 1), ["a", ("+", "b", 1)])),
        ('account.grade = "A"', ("=", "account.grade", "A")),
        ("opportunity.account.region", "opportunity.account.region"),
        ("$user.role", "$user.role"),
        ("owner_id = $user.id", ("=", "owner_id", "$user.id")),
        ("today()", ("today()",)),
        ("ISBLANK(x)", ("isblank()", "x")),
        ('if(a > 1, "big", "small")', ("if()", (">", "a", 1), "big", "small")),
        ("count(lines)", ("count()", "lines")),
        (
            'sum(lines.amount where status = "paid")',
            ("sum()", ("where", "lines.amount", ("=", "status", "paid"))),
        ),
        (
            "max(lines.amount where a and b)",
            ("max()", ("where", "lines.amount", ("and", "a", "b"))),
        ),
        ("f(g(h(1)), [2])", ("f()", ("g()", ("h()", 1)), [2])),
        ("default + on + when", ("+", ("+", "default", "on"), "when")),
        ("a # a comment\n + b", ("+", "a", "b")),
        ("a\n  and\n  b", ("and", "a", "b")),
    ],
)
def test_structure(text: str, expected: object) -> None:
    assert shape(parse_expression(text)) == expected


def test_positions_are_one_based_with_exclusive_ends() -> None:
    node = parse_expression('amount > 1 and\n  stage = "won"')
    assert isinstance(node, ast.Logical)
    first, second = node.operands
    assert (first.span.line, first.span.column, first.span.end_column) == (1, 1, 11)
    assert (second.span.line, second.span.column, second.span.end_line, second.span.end_column) == (
        2,
        3,
        2,
        16,
    )
    assert node.span == ast.Span(1, 1, 2, 16)
    assert isinstance(second, ast.Compare)
    assert second.op_span == ast.Span(2, 9, 2, 10)


def test_path_segments_have_their_own_positions() -> None:
    node = parse_expression("company.parent.name")
    assert isinstance(node, ast.FieldRef)
    assert [s.column for s in node.spans] == [1, 9, 16]


@pytest.mark.parametrize(
    ("text", "kind", "entity", "field"),
    [
        (
            'validate deal "Needs an amount" on amount when isblank(amount)',
            "validate",
            "deal",
            None,
        ),
        ("formula quote.total = subtotal * (1 - discount)", "formula", "quote", "total"),
        ('default lead.source = "web"', "default", "lead", "source"),
        ('require contract.signed_on when status = "signed"', "require", "contract", "signed_on"),
        ('hide account.credit_limit when type != "dealer"', "hide", "account", "credit_limit"),
        ('readonly order.* when status = "approved"', "readonly", "order", "*"),
        ('validate deal "m" on a, b when\n    x > 1\n    and y < 2', "validate", "deal", None),
    ],
)
def test_statements(text: str, kind: str, entity: str, field: str | None) -> None:
    statement = parse_statement(text, first_line=5)
    assert (statement.kind, statement.entity, statement.field) == (kind, entity, field)
    assert statement.span.line == 5
    assert statement.entity_span.line == 5


def test_validate_statement_parts() -> None:
    statement = parse_statement(
        'validate deal "Closed-won needs an amount" on amount, stage when stage = "won"'
    )
    assert statement.message == "Closed-won needs an amount"
    assert statement.on_fields == ("amount", "stage")
    assert shape(statement.expr) == ("=", "stage", "won")


def test_depth_is_limited_without_recursion_errors() -> None:
    assert isinstance(
        parse_expression("(" * 5000 + "1" + ")" * 5000), ast.Literal
    )  # parentheses add no nodes
    with pytest.raises(RuleError, match="nested too deeply"):
        parse_expression("f(" * 3000 + "1" + ")" * 3000)
    with pytest.raises(RuleError, match="nested too deeply"):
        parse_expression(" + ".join(["a"] * 3000))
    with pytest.raises(RuleError, match="nested too deeply"):
        parse_expression("-" * 3000 + "a")
    assert parse_expression("(" * (MAX_DEPTH - 5) + "1" + ")" * (MAX_DEPTH - 5))


def test_length_is_limited() -> None:
    with pytest.raises(RuleError, match="too long"):
        parse_expression("a" * (MAX_LENGTH + 1))


def test_parse_is_deterministic_and_trees_are_immutable() -> None:
    node = parse_expression("a + 1")
    with pytest.raises(AttributeError):
        node.span = ast.Span(1, 1, 1, 1)  # type: ignore[misc]
    assert shape(parse_expression("a + 1")) == shape(node)
