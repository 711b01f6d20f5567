"""Every function of the library: its value, its null handling, exact decimals, its errors."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from crm_platform.metadata.model import Registry
from crm_platform.rules import FUNCTIONS, Relation, RuleError
from tests.rules.helpers import NOW, TODAY, evaluate

D = Decimal
REC = {
    "name": "Acme Ltd",
    "employees": 12,
    "score": D("2.500"),
    "revenue": D("1234.56"),
    "discount": D("12.5"),
    "active": True,
    "founded": dt.date(2024, 1, 31),
    "last_contact": dt.datetime(2026, 3, 14, 23, 0, tzinfo=dt.UTC),
    "kind": "dealer",
    "channels": ["email", "wechat"],
    "phone": "555-1234",
    "notes": None,
}

# (expression, expected) evaluated on REC; a function is covered when its name appears here.
CASES: list[tuple[str, Any]] = [
    # logic
    ('if(active, "yes", "no")', "yes"),
    ("if(not active, 1, 2)", 2),
    ("if(isblank(notes), 1)", 1),
    ("if(false, 1)", None),
    ("if(null, 1, 2)", 2),
    ('case(kind, "dealer", 1, "customer", 2, 0)', 1),
    ('case(kind, "customer", 2, 0)', 0),
    ('case(kind, "customer", 2)', None),
    ('case(notes, null, "blank", "x")', "blank"),
    ('case(employees, 10 + 2, "dozen", "other")', "dozen"),
    ("coalesce(notes, name)", "Acme Ltd"),
    ("coalesce(notes, null)", None),
    ('coalesce(notes, notes, "x")', "x"),
    ("isblank(notes)", True),
    ("isblank(name)", False),
    ('isblank("")', True),
    # text
    ("len(name)", 8),
    ("len(notes)", 0),
    ("upper(name)", "ACME LTD"),
    ("lower(name)", "acme ltd"),
    ("upper(notes)", None),
    ('trim("  a b ")', "a b"),
    ('trim("   ")', None),
    ('concat(name, ": ", employees, " / ", score)', "Acme Ltd: 12 / 2.500"),
    ("concat(notes, notes)", None),
    ("concat(founded, active)", "2024-01-31true"),
    ("left(name, 4)", "Acme"),
    ("left(name, 0)", None),
    ("left(name, -2)", None),
    ("left(notes, 2)", None),
    ("right(name, 3)", "Ltd"),
    ("right(name, 50)", "Acme Ltd"),
    ("right(name, 0)", None),
    ("mid(name, 6, 3)", "Ltd"),
    ("mid(name, 0, 2)", "Ac"),
    ("mid(name, 20, 2)", None),
    ('find("Ltd", name)', 6),
    ('find("x", name)', 0),
    ('find("x", notes)', None),
    ('replace(name, "Ltd", "Inc")', "Acme Inc"),
    ('replace(name, " Ltd", null)', "Acme"),
    ('replace(name, name, "")', None),
    ('contains(name, "me L")', True),
    ('contains(name, "acme")', False),
    ('contains(notes, "a")', False),
    ('startswith(name, "Ac")', True),
    ('startswith(name, "Lt")', False),
    ('startswith(notes, "a")', False),
    ('matches(phone, "[0-9]{3}-[0-9]{4}")', True),
    ('matches(phone, "[0-9]{3}")', False),
    ('matches(notes, ".*")', False),
    # multi-picklist
    ('includes(channels, "email")', True),
    ('includes(channels, "phone")', False),
    # math
    ("round(score)", 3),
    ("round(-2.5)", -3),
    ("round(2.45, 1)", D("2.5")),
    ("round(revenue, -2)", D("1.2E+3")),
    ("round(employees, 2)", 12),
    ("round(notes2, 2)", None),
    ("floor(score)", 2),
    ("floor(-2.5)", -3),
    ("ceil(score)", 3),
    ("ceil(-2.5)", -2),
    ("abs(-3.25)", D("3.25")),
    ("abs(employees)", 12),
    ("min(3, 1.5, 2)", D("1.5")),
    ("max(employees, 20)", 20),
    ("min(employees, null)", None),
    ('max(founded, d"2025-01-01")', dt.date(2025, 1, 1)),
    ('min("b", "a")', "a"),
    ("mod(7, 3)", 1),
    ("mod(-7, 3)", -1),
    ("mod(revenue, 1)", D("0.56")),
    ("power(2, 10)", D(1024)),
    ("power(score, 2)", D("6.25")),
    ("power(4, 0.5)", D(2)),
    ("sqrt(6.25)", D("2.5")),
    ("exp(0)", D(1)),
    ("ln(1)", D(0)),
    # conversions
    ("text(revenue)", "1234.56"),
    ("text(founded)", "2024-01-31"),
    ("text(active)", "true"),
    ("text(notes)", None),
    ("text(discount)", "0.125"),
    ("text(channels)", "email, wechat"),
    ('value("1,234.5")', D("1234.5")),
    ('value("abc")', None),
    ("value(notes)", None),
    ('is_number(" 42 ")', True),
    ('is_number("4x")', False),
    ("is_number(notes)", False),
    # dates
    ("today()", TODAY),
    ("now()", NOW),
    ('date("2026-02-28")', dt.date(2026, 2, 28)),
    ('date("2026-02-30")', None),
    ("date(2026, 2, 28)", dt.date(2026, 2, 28)),
    ("date(2026, 2, 30)", None),
    ("date(last_contact)", dt.date(2026, 3, 14)),
    ("add_days(founded, 30)", dt.date(2024, 3, 1)),
    ("add_days(founded, -31)", dt.date(2023, 12, 31)),
    ("add_days(last_contact, 1)", dt.datetime(2026, 3, 15, 23, 0, tzinfo=dt.UTC)),
    ("add_days(notes3, 1)", None),
    ("add_months(founded, 1)", dt.date(2024, 2, 29)),
    ("add_months(founded, 13)", dt.date(2025, 2, 28)),
    ("add_months(founded, -2)", dt.date(2023, 11, 30)),
    ("days_between(founded, today())", (TODAY - dt.date(2024, 1, 31)).days),
    ("days_between(today(), founded) < 0", True),
    ("days_between(last_contact, now())", 1),
    ("year(founded)", 2024),
    ("month(founded)", 1),
    ("day(founded)", 31),
    ("weekday(founded)", 3),
    ('weekday(d"2026-03-15")', 7),
    ("year(notes3)", None),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_function_value(registry: Registry, text: str, expected: Any) -> None:
    record = dict(REC)
    if "notes2" in text:  # a blank number
        text, record["score"] = text.replace("notes2", "score"), None
    if "notes3" in text:  # a blank date
        text, record["founded"] = text.replace("notes3", "founded"), None
    value = evaluate(registry, text, record)
    assert value == expected
    assert type(value) is type(expected) or expected is None


def test_every_function_is_covered() -> None:
    covered = {name for name in FUNCTIONS if any(f"{name}(" in text for text, _ in CASES)}
    covered |= {"is_new", "changed", "prior", "lookup", "count", "sum"}  # tested below
    covered |= {"within_unit"}  # needs org units: tests/engine/test_cross_entity_rollups.py
    assert covered == set(FUNCTIONS)


def test_decimals_stay_exact(registry: Registry) -> None:
    assert evaluate(registry, "0.1 + 0.2") == D("0.3")
    assert evaluate(registry, "0.1 + 0.2 = 0.3", purpose="condition") is True
    assert evaluate(registry, "revenue * 3", {"revenue": D("0.10")}) == D("0.30")
    assert evaluate(registry, "1 / 3 * 3") == D("0.99999999999999999999999999999999999999")
    assert evaluate(registry, "revenue / 4", {"revenue": D("10.00")}) == D("2.5")
    assert evaluate(
        registry,
        "sum(lines.quantity)",
        {"id": 1},
        entity="deal",
        children=lambda rel, rec: [{"quantity": D("0.1")}] * 10,
    ) == D("1.0")
    for text in ("score * 3", "score / 3", "sqrt(score)", "power(score, 3)", "round(score / 7, 4)"):
        assert isinstance(evaluate(registry, text, {"score": D("2.5")}), Decimal)


def test_percent_reads_as_a_fraction(registry: Registry) -> None:
    assert evaluate(registry, "discount", {"discount": D("12.5")}) == D("0.125")
    assert (
        evaluate(registry, "discount > 10%", {"discount": D("12.5")}, purpose="condition") is True
    )
    assert evaluate(
        registry, "revenue * (1 - discount)", {"revenue": D("200"), "discount": D("12.5")}
    ) == D("175.000")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("employees / 0", "division by zero"),
        ("mod(employees, 0)", "mod() by zero"),
        ("sqrt(-1)", "square root of a negative number"),
        ("ln(0)", "ln() of zero or a negative number"),
        ("add_days(founded, 9999999)", "the date is out of range"),
        ("add_months(founded, 120000)", "the date is out of range"),
        ("power(10, 100000)", "exponent is too large"),
        ("exp(1000000)", "too large"),
        ("revenue / (employees - 12)", "division by zero"),
    ],
)
def test_evaluation_errors_are_rule_errors(registry: Registry, text: str, message: str) -> None:
    with pytest.raises(RuleError) as caught:
        evaluate(registry, text, REC)
    assert message in caught.value.message
    assert caught.value.code == "rules.evaluation"
    assert caught.value.line == 1 and caught.value.column >= 1


def test_division_error_points_at_the_operator(registry: Registry) -> None:
    with pytest.raises(RuleError) as caught:
        evaluate(registry, "revenue + employees / 0", REC)
    assert (caught.value.line, caught.value.column) == (1, 21)
    assert caught.value.render().endswith("                    ^")


def test_change_detection(registry: Registry) -> None:
    def run(text: str, record: dict[str, Any], prior: dict[str, Any] | None) -> Any:
        return evaluate(
            registry,
            text,
            record,
            purpose="condition" if text != "prior(discount)" else "formula",
            prior=prior,
        )

    assert run("is_new()", {"kind": "dealer"}, None) is True
    assert run("is_new()", {"kind": "dealer"}, {"kind": "dealer"}) is False
    assert run("changed(kind)", {"kind": "dealer"}, {"kind": "customer"}) is True
    assert run("changed(kind)", {"kind": "dealer"}, {"kind": "dealer"}) is False
    assert run("changed(kind)", {"kind": "dealer"}, None) is False
    assert run("changed(notes)", {"notes": None}, {"notes": "x"}) is True
    assert (
        run(
            'prior(kind) = "customer" and kind = "dealer"', {"kind": "dealer"}, {"kind": "customer"}
        )
        is True
    )
    assert run("isblank(prior(kind))", {"kind": "dealer"}, None) is True


def test_prior_percent_is_a_fraction(registry: Registry) -> None:
    value = evaluate(
        registry,
        "prior(discount) < discount",
        {"discount": D("20")},
        purpose="condition",
        prior={"discount": D("10")},
    )
    assert value is True


def test_lookup_calls_the_context(registry: Registry) -> None:
    calls: list[tuple[str, str, Any, str]] = []

    def lookup(entity: str, key_field: str, key: Any, field: str) -> Any:
        calls.append((entity, key_field, key, field))
        return "Hot" if key == "Hot" else None

    assert (
        evaluate(
            registry,
            'lookup("tag", "name", title, "name")',
            {"title": "Hot"},
            entity="deal",
            lookup=lookup,
        )
        == "Hot"
    )
    assert (
        evaluate(
            registry,
            'lookup("tag", title, "name")',
            {"title": "Cold"},
            entity="deal",
            lookup=lookup,
        )
        is None
    )
    assert (
        evaluate(
            registry, 'lookup("tag", title, "name")', {"title": None}, entity="deal", lookup=lookup
        )
        is None
    )
    assert calls == [("tag", "name", "Hot", "name"), ("tag", "name", "Cold", "name")]


def test_lookup_of_a_percent_reads_a_fraction(registry: Registry) -> None:
    value = evaluate(
        registry,
        'lookup("company", "name", title, "discount")',
        {"title": "A"},
        entity="deal",
        lookup=lambda *args: D("12.5"),
    )
    assert value == D("0.125")


def test_rollups(registry: Registry) -> None:
    lines = [
        {"item": "a", "quantity": D("2.00"), "unit_price": D("10.00")},
        {"item": "b", "quantity": D("1.50"), "unit_price": None},
        {"item": "a", "quantity": D("0.50"), "unit_price": D("4.00")},
    ]
    seen: list[Relation] = []

    def children(relation: Relation, record: Any) -> list[dict[str, Any]]:
        seen.append(relation)
        return lines

    def run(text: str) -> Any:
        return evaluate(registry, text, {"id": 1}, entity="deal", children=children)

    assert run("count(lines)") == 3
    assert run('count(lines where item = "a")') == 2
    assert run("sum(lines.quantity)") == D("4.00")
    assert run('sum(lines.quantity where item = "b")') == D("1.50")
    assert run('sum(lines.unit_price where item = "z")') == 0
    assert run("min(lines.unit_price)") == D("4.00")
    assert run("max(lines.item)") == "b"
    assert run('max(lines.unit_price where item = "b")') is None
    assert seen[0] == Relation("child", "deal_line", "lines", "lines")


def test_rollup_over_reverse_references_and_links(registry: Registry) -> None:
    seen: list[Relation] = []

    def children(relation: Relation, record: Any) -> list[dict[str, Any]]:
        seen.append(relation)
        return [{"amount": D("5.00"), "stage": "won", "name": "x"}]

    assert evaluate(
        registry, 'sum(deal.amount where stage = "won")', {"id": 1}, children=children
    ) == D("5.00")
    assert evaluate(registry, "count(tags)", {"id": 1}, entity="deal", children=children) == 1
    assert seen == [
        Relation("reverse", "deal", "company", "deal"),
        Relation("many", "tag", "tags", "tags"),
    ]


def test_paths_follow_references(registry: Registry) -> None:
    records = {
        1: {"name": "Parent", "parent": 2, "discount": D("50")},
        2: {"name": "Grand", "parent": None},
    }

    def fetch(entity: str, record_id: Any) -> Any:
        assert entity == "company"
        return records.get(record_id)

    deal = {"company": 1}
    assert evaluate(registry, "company.name", deal, entity="deal", fetch=fetch) == "Parent"
    assert evaluate(registry, "company.parent.name", deal, entity="deal", fetch=fetch) == "Grand"
    assert (
        evaluate(registry, "company.parent.parent.name", deal, entity="deal", fetch=fetch) is None
    )
    assert evaluate(registry, "company.discount", deal, entity="deal", fetch=fetch) == D("0.5")
    assert evaluate(registry, "company.name", {"company": None}, entity="deal", fetch=fetch) is None
    assert evaluate(registry, "company.name", {"company": 9}, entity="deal", fetch=fetch) is None


def test_user_attributes(registry: Registry) -> None:
    assert (
        evaluate(registry, '$user.role = "sales" and "manager" in $user.roles', purpose="condition")
        is True
    )
    assert evaluate(registry, "owner_id = $user.id", {"owner_id": 7}, purpose="condition") is True
    assert evaluate(registry, "unit_id = $user.unit", {"unit_id": 4}, purpose="condition") is False
    assert evaluate(registry, "$user.name") == "Ann"


def test_readme_documents_every_function() -> None:
    readme = (
        Path(__file__).resolve().parents[2] / "crm_platform" / "rules" / "README.md"
    ).read_text("utf-8")
    missing = [name for name in FUNCTIONS if f"`{name}(" not in readme]
    assert missing == []
