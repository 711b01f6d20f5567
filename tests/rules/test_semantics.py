"""Null semantics, operator types and results, as documented in crm_platform/rules/README.md."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from crm_platform.metadata.model import Registry
from crm_platform.rules import checked_expression
from tests.rules.helpers import evaluate

D = Decimal
BLANK: dict[str, Any] = {}
FULL = {
    "employees": 5,
    "score": D("1.500"),
    "revenue": D("10.00"),
    "name": "Acme",
    "active": True,
    "founded": dt.date(2026, 1, 31),
    "kind": "dealer",
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # arithmetic with null gives null
        ("employees + 1", None),
        ("employees * 0", None),
        ("-employees", None),
        ("employees / 0", None),
        ("founded + 1", None),
        ('name + "x"', "x"),
        ("name + name", None),
        # comparisons with null are false, except = null / != null
        ("employees > 1", False),
        ("employees < 1", False),
        ("employees >= 0", False),
        ("employees = 0", False),
        ("employees != 0", True),
        ("employees = null", True),
        ("employees != null", False),
        ("null = null", True),
        ('name = ""', True),
        ("name = notes", True),
        # two-valued logic: null counts as false
        ("active", None),
        ("not active", True),
        ("active or true", True),
        ("active and true", False),
        ("active = false", False),
        ("if(active, 1, 2)", 2),
        # in
        ('kind in ["dealer"]', False),
        ('kind not in ["dealer"]', True),
        ('kind in ["dealer", null]', True),
        ('"email" in channels', False),
        # functions
        ("len(name)", 0),
        ("upper(name)", None),
        ('contains(name, "a")', False),
        ("isblank(employees)", True),
        ("coalesce(employees, 7)", 7),
        ("round(score, 1)", None),
        ("year(founded)", None),
        ("concat(name, 1)", "1"),
        ("max(employees, 3)", None),
    ],
)
def test_null_semantics(registry: Registry, text: str, expected: Any) -> None:
    assert evaluate(registry, text, BLANK) == expected


@pytest.mark.parametrize(
    ("text", "type_name", "value"),
    [
        ("employees + 1", "number", 6),
        ("employees / 2", "number", D("2.5")),
        ("employees * 2", "number", 10),
        ("revenue + 1", "money", D("11.00")),
        ("revenue * 2", "money", D("20.00")),
        ("revenue / 4", "money", D("2.5")),
        ("revenue / revenue", "number", D("1")),
        ("revenue * discount", "money", D("1.2500")),
        ("discount + 5%", "percent", D("0.175")),
        ("score - 1", "number", D("0.500")),
        ("founded + 1", "date", dt.date(2026, 2, 1)),
        ("1 + founded", "date", dt.date(2026, 2, 1)),
        ("founded - 31", "date", dt.date(2025, 12, 31)),
        ('founded - d"2026-01-01"', "number", 30),
        ('name + "!"', "text", "Acme!"),
        ('kind + "/" + name', "text", "dealer/Acme"),
    ],
)
def test_operator_results(registry: Registry, text: str, type_name: str, value: Any) -> None:
    record = {**FULL, "discount": D("12.5")}
    assert str(checked_expression(text, registry, "company", "formula").result) == type_name
    result = evaluate(registry, text, record)
    assert result == value
    assert type(result) is type(value)


def test_integer_division_gives_a_decimal(registry: Registry) -> None:
    assert evaluate(registry, "7 / 2") == D("3.5")
    assert evaluate(registry, "6 / 3") == D(2)


def test_comparisons_across_number_kinds(registry: Registry) -> None:
    record = {**FULL, "discount": D("50")}
    assert (
        evaluate(registry, "revenue > employees and discount = 0.5 and score = 1.5", record) is True
    )


def test_dates_and_datetimes(registry: Registry) -> None:
    record = {
        "founded": dt.date(2026, 3, 1),
        "last_contact": dt.datetime(2026, 3, 1, 23, 30, tzinfo=dt.UTC),
    }
    assert (
        evaluate(
            registry, 'founded < d"2026-03-02" and last_contact > dt"2026-03-01T23:00:00Z"', record
        )
        is True
    )
    assert evaluate(registry, "date(last_contact) = founded", record) is True
    assert (
        evaluate(registry, "founded = today()", record, today=lambda: dt.date(2026, 3, 1)) is True
    )
