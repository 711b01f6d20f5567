"""Fuzzing: random text and random token soups never raise anything but the language's own
errors (RuleError, or RuleErrors for a rule that does not check) when parsed, checked,
compiled and evaluated."""

from __future__ import annotations

import contextlib
import datetime as dt
from decimal import Decimal

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm_platform.metadata.model import Registry
from crm_platform.rules import (
    EvalContext,
    RuleError,
    check_rule_file,
    checked_expression,
    compile_filter,
    compile_python,
)
from crm_platform.rules.functions import FUNCTIONS
from crm_platform.rules.syntax_errors import STATEMENT_KEYWORDS

FIELDS = [
    "name",
    "employees",
    "score",
    "revenue",
    "discount",
    "active",
    "founded",
    "last_contact",
    "kind",
    "channels",
    "phone",
    "parent",
    "notes",
    "id",
    "owner_id",
    "deal",
    "lines",
    "amount",
    "stage",
]
TOKENS = [
    *FIELDS,
    *FUNCTIONS,
    *STATEMENT_KEYWORDS,
    "and",
    "or",
    "not",
    "in",
    "where",
    "when",
    "on",
    "true",
    "false",
    "null",
    "$user",
    "$user.id",
    "$user.roles",
    ".",
    ",",
    "(",
    ")",
    "[",
    "]",
    "+",
    "-",
    "*",
    "/",
    "=",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "==",
    "&&",
    "%",
    "0",
    "1",
    "-1",
    "2.5",
    "40%",
    "1e5",
    '"dealer"',
    '"x"',
    "'a'",
    '""',
    '"',
    'd"2026-01-31"',
    'd"2026-02-30"',
    'dt"2026-01-31T10:00:00Z"',
    '"[0-9]+"',
    '"(a+)+"',
    "#",
    "\n",
    "company.",
    "parent.name",
    "deal.amount",
    "company.*",
    "\\",
    "'",
    "AND",
    "中文",
    "\t",
    "99999999999999999999",
]
RECORD = {
    "id": 1,
    "name": "Acme",
    "employees": 3,
    "score": Decimal("1.5"),
    "revenue": Decimal("0.00"),
    "discount": Decimal("0"),
    "active": True,
    "founded": dt.date(2024, 2, 29),
    "last_contact": dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    "kind": "dealer",
    "channels": ["email"],
    "phone": "555",
    "parent": 1,
    "notes": None,
    "owner_id": 1,
}


TABLE = sa.Table(
    "ent_company", sa.MetaData(), *(sa.Column(n) for n in [*FIELDS, "deleted_at", "parent_id"])
)


def exercise(registry: Registry, text: str) -> None:
    """Parse, check, compile and evaluate `text` every way; only rule errors may come out."""
    for purpose in ("condition", "formula", "filter"):
        checked = checked_expression(text, registry, "company", purpose)
        for error in checked.errors:
            assert isinstance(error, RuleError)
            error.render()
        if checked.errors:
            continue
        compiled = compile_python(checked)
        context = EvalContext(
            RECORD,
            RECORD,
            fetch=lambda entity, id: RECORD,
            lookup=lambda *args: None,
            children=lambda relation, record: [RECORD],
        )
        with contextlib.suppress(RuleError):
            compiled.evaluate(context)
        if purpose == "filter":
            with contextlib.suppress(RuleError):
                compile_filter(checked, TABLE, lambda entity: TABLE)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=80))
def test_random_text(registry: Registry, text: str) -> None:
    exercise(registry, text)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(TOKENS), max_size=14))
def test_token_soup(registry: Registry, tokens: list[str]) -> None:
    exercise(registry, " ".join(tokens))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.sampled_from(TOKENS), max_size=14), st.lists(st.sampled_from(TOKENS), max_size=14)
)
def test_token_soup_rule_files(registry: Registry, first: list[str], second: list[str]) -> None:
    text = " ".join(first) + "\n" + " ".join(second)
    rules, errors = check_rule_file(text, registry, "fuzz.rules")
    for error in errors:
        assert isinstance(error, RuleError)
        error.render()
    assert all(rule.expression.checked.ok for rule in rules.rules)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.sampled_from([f"{name}(" for name in FUNCTIONS] + FIELDS + ["1", ",", ")", '"x"', "-2"]),
        max_size=12,
    )
)
def test_function_call_soup(registry: Registry, tokens: list[str]) -> None:
    text = " ".join(tokens)
    exercise(registry, text + ")" * text.count("("))
