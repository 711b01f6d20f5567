"""Syntax errors: the language's own RuleError, with a position, a caret and a friendly message."""

from __future__ import annotations

import pytest

from crm_platform.rules import RuleError, parse_expression
from crm_platform.rules.parser import parse_statement


def error_of(text: str) -> RuleError:
    with pytest.raises(RuleError) as caught:
        parse_expression(text)
    assert caught.value.code == "rules.syntax"
    return caught.value


@pytest.mark.parametrize(
    ("text", "line", "column", "message"),
    [
        ("amount > 1 and", 1, 12, "expected an expression after 'and'"),
        ("amount +", 1, 8, "expected an expression after '+'"),
        ("a + * b", 1, 5, "expected an expression after '+', found '*'"),
        ("not", 1, 1, "expected an expression after 'not'"),
        ("x in", 1, 3, "expected an expression after 'in'"),
        ("f(a,", 1, 4, "expected an expression after ','"),
        ('name = "Acme', 1, 8, "unclosed string"),
        ("name = 'Acme", 1, 8, "unclosed string"),
        ("(a + b", 1, 1, "unbalanced parenthesis: this '(' is never closed"),
        ("if(a, (b + c)", 1, 3, "unbalanced parenthesis: this '(' is never closed"),
        ("a + b)", 1, 6, "unbalanced parenthesis: this ')' has no matching '('"),
        ("x in [1, 2", 1, 6, "unbalanced bracket: this '[' is never closed"),
        ("()", 1, 2, "expected an expression inside '( )'"),
        ("a == b", 1, 3, "use a single '=' to compare"),
        ("a <> b", 1, 3, "use '!=' for 'not equal'"),
        ("a < b < c", 1, 7, "comparisons cannot be chained"),
        ("a && b", 1, 3, "use 'and'"),
        ("a || b", 1, 3, "use 'or'"),
        ("!a", 1, 1, "use 'not'"),
        ("a AND b", 1, 3, "write 'and' in lower case"),
        ("a Or b", 1, 3, "write 'or' in lower case"),
        ("amount 5", 1, 8, "missing operator before '5'"),
        ('stage = "won" amount > 5', 1, 15, "missing operator before 'amount'"),
        ("a.", 1, 2, "expected a field name after '.'"),
        ("a.(b)", 1, 3, "expected a field name after '.'"),
        ("a where b", 1, 3, "'where' filters child rows inside count, sum, min or max"),
        ("10 % 3", 1, 4, "for the remainder use mod(a, b)"),
        ("$ + 1", 1, 1, "'$' must start a variable"),
        ("a ; b", 1, 3, "unexpected ';'"),
        ('d"2026-02-30"', 1, 1, "'2026-02-30' is not a date"),
        ('dt"yesterday"', 1, 1, "is not a date and time"),
        (r'"bad \q escape"', 1, 1, "unknown escape"),
        ("", 1, 1, "the rule is empty"),
        ("1 +\n\n  (2 *", 3, 6, "expected an expression after '*'"),
    ],
)
def test_friendly_messages(text: str, line: int, column: int, message: str) -> None:
    error = error_of(text)
    assert message in error.message
    assert (error.line, error.column) == (line, column)


def test_rendering_has_the_line_and_a_caret() -> None:
    error = error_of("amount > 1 and")
    assert error.render() == (
        "<rule>:1:12: expected an expression after 'and'\n    amount > 1 and\n               ^^^"
    )


def test_caret_under_the_second_line() -> None:
    error = error_of('stage = "won" and\n  amount >')
    assert error.line == 2
    assert error.render().splitlines()[1:] == ["      amount >", "             ^"]


def test_caret_after_wide_characters() -> None:
    error = error_of('"名称" = x and')
    rendered = error.render().splitlines()
    assert (
        rendered[2].index("^") == 4 + len('"" = x ') + 2 * 2
    )  # each CJK character is two columns wide


def test_statement_errors_are_friendly() -> None:
    cases = {
        "validate deal when x": "expected the error message in quotes",
        "formula total = 1": "write the field as entity.field",
        "require deal.x x > 1": "expected 'when' and a condition",
        "default deal.x when 3": "expected '=' and an expression",
        'valdate deal "x" when y': "unknown statement 'valdate'; did you mean 'validate'?",
        'validate deal "x" when': "expected an expression after 'when'",
        "hide deal.x": "expected 'when' and a condition",
    }
    for text, message in cases.items():
        with pytest.raises(RuleError) as caught:
            parse_statement(text)
        assert message in caught.value.message, text


def test_as_dict_for_the_api() -> None:
    data = error_of("a +").as_dict()
    assert data["line"] == 1 and data["column"] == 3 and data["code"] == "rules.syntax"
    assert "^" in str(data["rendered"])
