"""Turning Lark's parse failures into RuleErrors an admin can act on.

Known mistakes are recognised first (unclosed strings, unbalanced parentheses, `==`, `&&`,
chained comparisons, a missing operand after an operator), then Lark's `match_examples`
maps statement-level failures to the nearest known mistake, and what is left is described
from the tokens the parser expected.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any

from lark import Lark, Token
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from crm_platform.rules.ast import Span
from crm_platform.rules.errors import SYNTAX, RuleError

STATEMENT_KEYWORDS = ("validate", "formula", "default", "require", "hide", "readonly")
KEYWORDS = frozenset({"and", "or", "not", "in", "true", "false", "null", "where", "when", "on"})
EXPRESSION_START = frozenset(
    {
        "NAME",
        "NUMBER",
        "STRING",
        "DATE",
        "DATETIME",
        "TRUE",
        "FALSE",
        "NULL",
        "VARIABLE",
        "LPAR",
        "LSQB",
        "MINUS",
        "NOT",
    }
)
NEEDS_OPERAND = frozenset(
    {
        "PLUS",
        "MINUS",
        "STAR",
        "SLASH",
        "EQ",
        "NE",
        "LT",
        "LE",
        "GT",
        "GE",
        "AND",
        "OR",
        "NOT",
        "IN",
        "WHERE",
        "WHEN",
        "COMMA",
        "LPAR",
        "LSQB",
    }
)
ENDS_OPERAND = frozenset(
    {
        "NAME",
        "NUMBER",
        "STRING",
        "DATE",
        "DATETIME",
        "TRUE",
        "FALSE",
        "NULL",
        "VARIABLE",
        "RPAR",
        "RSQB",
    }
)
COMPARISONS = frozenset({"EQ", "NE", "LT", "LE", "GT", "GE"})

_TERMINAL_NAMES = {
    "COMMA": "','",
    "DOT": "'.'",
    "RPAR": "')'",
    "RSQB": "']'",
    "EQ": "'='",
    "WHEN": "'when'",
    "ON": "'on'",
    "WHERE": "'where'",
    "STRING": "a text in quotes",
    "NAME": "a name",
    "STAR": "'*'",
    "$END": "the end of the rule",
}

# Statement-level mistakes, matched with Lark's match_examples.
_EXAMPLES: dict[str, list[str]] = {
    "expected the error message in quotes after the entity name, "
    'e.g. validate deal "Amount is required" when ...': [
        "validate deal when x",
        "validate deal on amount when x",
        "validate deal amount",
    ],
    "write the field as entity.field, e.g. formula quote.total = subtotal * 2": [
        "formula total = 1",
        "default total = 1",
        "require total when x",
        "hide total when x",
        "readonly total when x",
        "formula quote total = 1",
        "require deal amount when x",
    ],
    "expected 'when' and a condition, e.g. require contract.signed_on when status = \"signed\"": [
        "require deal.x x",
        "hide deal.x x",
        "readonly deal.* x",
        'validate deal "m" x',
        'validate deal "m" on a x',
    ],
    "expected '=' and an expression, e.g. default lead.source = \"web\"": [
        "formula deal.x x",
        "default deal.x when x",
    ],
}


def explain(
    exc: UnexpectedInput,
    text: str,
    source: str,
    parse: Callable[[str], Any],
    lark: Lark,
    statement: bool = False,
) -> RuleError:
    """The RuleError for a Lark parse failure of `text` (positions refer to `source`)."""
    if isinstance(exc, UnexpectedCharacters):
        return _bad_character(exc, text, source)
    tokens = _tokens(lark, text)
    if isinstance(exc, UnexpectedEOF) or (
        isinstance(exc, UnexpectedToken) and exc.token.type == "$END"
    ):
        return _early_end(exc, tokens, text, source)
    assert isinstance(exc, UnexpectedToken)
    return _unexpected_token(exc, tokens, source, parse if statement else None)


def _error(span: Span, message: str, source: str) -> RuleError:
    return RuleError.at(span, message, source, SYNTAX)


def _span(token: Token) -> Span:
    return Span(token.line or 1, token.column or 1, token.end_line or 1, token.end_column or 1)


def _tokens(lark: Lark, text: str) -> list[Token]:
    """The tokens of `text` up to the first character that cannot be lexed."""
    found: list[Token] = []
    try:
        for token in lark.lex(text):
            found.append(token)
    except UnexpectedInput:
        pass
    return found


def _describe(token: Token) -> str:
    if token.type == "$END":
        return "the end of the rule"
    if token.type == "STRING":
        return f"the text {token}"
    return f"'{token}'"


def _expected(expected: set[str] | frozenset[str] | list[str]) -> str:
    names = set(expected)
    parts: list[str] = []
    if len(names & EXPRESSION_START) >= 3:
        parts.append("an expression")
        names -= EXPRESSION_START
    if len(names & COMPARISONS) >= 3:
        parts.append("a comparison")
        names -= COMPARISONS
    if {"AND", "OR"} <= names:
        parts.append("'and' or 'or'")
        names -= {"AND", "OR"}
    if {"PLUS", "MINUS", "STAR", "SLASH"} & names:
        parts.append("an operator")
        names -= {"PLUS", "MINUS", "STAR", "SLASH"}
    for name in sorted(names):
        parts.append(_TERMINAL_NAMES.get(name, f"'{name.lower()}'"))
    return ", ".join(parts[:6]) if parts else "something else"


def _bad_character(exc: UnexpectedCharacters, text: str, source: str) -> RuleError:
    line, column = exc.line, exc.column
    char = exc.char
    rest = text[exc.pos_in_stream :]
    span = Span(line, column, line, column + 1)
    if char in "\"'":
        closing = rest.split("\n", 1)[0]
        return _error(
            Span(line, column, line, column + len(closing)),
            f"unclosed string: add the closing {char} "
            "(a text must end on the line where it starts)",
            source,
        )
    if rest.startswith("&&") or char == "&":
        return _error(
            span, "use 'and' to combine conditions (and concat(a, b) to join texts)", source
        )
    if char == "|":
        return _error(span, "use 'or' to combine conditions", source)
    if char == "!":
        return _error(span, "use 'not' to negate a condition, and '!=' for 'not equal'", source)
    if char == "%":
        return _error(
            span,
            "'%' must follow a number (40% means 0.40); for the remainder use mod(a, b)",
            source,
        )
    if char == "$":
        return _error(span, "'$' must start a variable such as $user.id or $user.role", source)
    if char in "{};:":
        return _error(
            span,
            f"unexpected '{char}': the rules language has no blocks or statements separators",
            source,
        )
    return _error(span, f"unexpected character '{char}'", source)


def _open_brackets(tokens: list[Token]) -> list[Token]:
    stack: list[Token] = []
    for token in tokens:
        if token.type in ("LPAR", "LSQB"):
            stack.append(token)
        elif token.type in ("RPAR", "RSQB") and stack:
            stack.pop()
    return stack


def _early_end(exc: UnexpectedInput, tokens: list[Token], text: str, source: str) -> RuleError:
    last_line = text.rstrip().count("\n") + 1
    end_column = len(text.rstrip().rsplit("\n", 1)[-1]) + 1
    end = Span(last_line, end_column, last_line, end_column + 1)
    prev = tokens[-1] if tokens else None
    if prev is not None and prev.type == "DOT":
        return _error(_span(prev), "expected a field name after '.'", source)
    if prev is not None and prev.type in NEEDS_OPERAND and prev.type not in ("LPAR", "LSQB"):
        return _error(_span(prev), f"expected an expression after '{prev}'", source)
    still_open = _open_brackets(tokens)
    if still_open:
        opener = still_open[-1]
        closer = ")" if opener.type == "LPAR" else "]"
        kind = "parenthesis" if opener.type == "LPAR" else "bracket"
        return _error(
            _span(opener),
            f"unbalanced {kind}: this '{opener}' is never closed; add '{closer}'",
            source,
        )
    expected = getattr(exc, "expected", None) or set()
    if "WHEN" in expected:
        return _error(end, "expected 'when' and a condition", source)
    if "STRING" in expected:
        return _error(
            end, 'expected the error message in quotes, e.g. "Amount is required"', source
        )
    return _error(end, f"the rule ends too early; expected {_expected(expected)}", source)


def _unexpected_token(
    exc: UnexpectedToken, tokens: list[Token], source: str, parse: Callable[[str], Any] | None
) -> RuleError:
    token = exc.token
    span = _span(token)
    before = [t for t in tokens if (t.start_pos or 0) < (token.start_pos or 0)]
    prev = before[-1] if before else None
    adjacent = prev is not None and prev.end_pos == token.start_pos
    value = str(token)
    if prev is not None and prev.type == "DOT":
        return _error(span, f"expected a field name after '.', found {_describe(token)}", source)
    if token.type in ("RPAR", "RSQB"):
        if prev is not None and prev.type in NEEDS_OPERAND - {"LPAR", "LSQB"}:
            return _error(span, f"expected an expression after '{prev}', found '{value}'", source)
        opener = "(" if token.type == "RPAR" else "["
        if not any(t.type == ("LPAR" if opener == "(" else "LSQB") for t in _open_brackets(before)):
            kind = "parenthesis" if opener == "(" else "bracket"
            return _error(
                span, f"unbalanced {kind}: this '{value}' has no matching '{opener}'", source
            )
        if prev is not None and prev.type == "LPAR":
            return _error(span, "expected an expression inside '( )'", source)
    if (
        token.type == "EQ"
        and prev is not None
        and prev.type in ("EQ", "LT", "GT", "NE")
        and adjacent
    ):
        return _error(_span(prev).to(span), "use a single '=' to compare (not '==')", source)
    if token.type == "GT" and prev is not None and prev.type == "LT" and adjacent:
        return _error(_span(prev).to(span), "use '!=' for 'not equal' (not '<>')", source)
    if token.type == "WHERE":
        return _error(
            span,
            "'where' filters child rows inside count, sum, min or max, "
            "e.g. sum(lines.amount where paid)",
            source,
        )
    if token.type == "NAME" and value.lower() in KEYWORDS and value != value.lower():
        return _error(span, f"write '{value.lower()}' in lower case", source)
    if token.type in COMPARISONS and _comparison_before(before):
        return _error(span, "comparisons cannot be chained: write 'a < b and b < c'", source)
    if prev is not None and prev.type in NEEDS_OPERAND and token.type not in EXPRESSION_START:
        what = "inside '( )'" if prev.type == "LPAR" else f"after '{prev}'"
        return _error(span, f"expected an expression {what}, found {_describe(token)}", source)
    if not before and token.type == "NAME" and "VALIDATE" in exc.expected:
        guess = difflib.get_close_matches(value.lower(), STATEMENT_KEYWORDS, n=1, cutoff=0.6)
        hint = f"; did you mean '{guess[0]}'?" if guess else ""
        return _error(
            span,
            f"unknown statement '{value}'{hint} "
            f"(a statement starts with {', '.join(STATEMENT_KEYWORDS)})",
            source,
        )
    if parse is not None:
        try:
            label = exc.match_examples(parse, _EXAMPLES, use_accepts=True)
        except TypeError:
            # Lark's match_examples formats a debug message with %d over a parser state in
            # some states (a bug in lark 1.3); fall back to the general explanations below.
            label = None
        if label is not None:
            return _error(span, label, source)
    if prev is not None and prev.type in ENDS_OPERAND and token.type in EXPRESSION_START:
        return _error(
            span,
            f"missing operator before {_describe(token)}: "
            "expected 'and', 'or', a comparison or an operator",
            source,
        )
    return _error(
        span, f"unexpected {_describe(token)}; expected {_expected(exc.expected)}", source
    )


def _comparison_before(before: list[Token]) -> bool:
    """Is there a comparison since the last and/or/not/bracket/comma at the current level?"""
    level = 0
    for token in reversed(before):
        if token.type in ("RPAR", "RSQB"):
            level += 1
        elif token.type in ("LPAR", "LSQB"):
            if level == 0:
                return False
            level -= 1
        elif level == 0 and token.type in ("AND", "OR", "NOT", "COMMA", "WHEN", "WHERE", "IN"):
            return False
        elif level == 0 and token.type in COMPARISONS:
            return True
    return False
