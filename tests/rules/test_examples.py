"""Rules admins write in the CRMs they know (after Salesforce's published examples of
validation rules and formula fields), as a testkit rule file, evaluated on records."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from crm_platform.metadata.model import Registry
from crm_platform.rules import EvalContext, RuleSet, UserInfo, check_rule_file

D = Decimal
TODAY = dt.date(2026, 3, 15)
RULES = """
# Validation rules
validate company "A discount over 40% needs a reason in the notes" on discount, notes
    when discount > 40% and isblank(notes)
validate deal "The close date cannot be in the past while the deal is open" on close_date
    when stage = "open" and close_date < today()
validate company "Write the phone as 555-1234" on phone
    when not isblank(phone) and not matches(phone, "[0-9]{3}-[0-9]{4}")
validate deal "Only the owner may change the amount" on amount
    when changed(amount) and owner_id != $user.id
validate deal "A won deal cannot be reopened" on stage
    when prior(stage) = "won" and stage != "won"
validate deal "The amount must cover the lines" on amount
    when stage = "won" and amount < sum(lines.quantity where item != "discount")
validate company "Use the company's e-mail domain" on email
    when not isblank(email) and not contains(lower(email), "@acme.")
validate company "Dealers need at least one channel" on channels
    when kind = "dealer" and isblank(channels)
validate company "Revenue must be a round thousand for public bodies" on revenue
    when kind = "public_body" and mod(revenue, 1000) != 0

# Formula fields, defaults and form conditions
formula company.score = case(kind, "dealer", 1.5, "customer", 1, 0)
formula company.employees = days_between(founded, today())
default deal.stage = "open"
default deal.close_date = add_months(today(), 3)
require deal.close_date when stage = "won"
hide company.revenue when kind != "dealer"
readonly deal.* when stage = "won" and not ("manager" in $user.roles)
"""


@pytest.fixture(scope="module")
def rules(registry: Registry) -> RuleSet:
    ruleset, errors = check_rule_file(RULES, registry, "testkit/rules/examples.rules")
    assert errors == [], "\n".join(e.render() for e in errors)
    return ruleset


def failing(
    rules: RuleSet,
    entity: str,
    record: dict[str, Any],
    prior: dict[str, Any] | None = None,
    children: list[dict[str, Any]] | None = None,
) -> list[str]:
    context = EvalContext(
        record,
        prior,
        UserInfo(id=1, roles=("sales",)),
        today=lambda: TODAY,
        children=lambda rel, rec: children or [],
    )
    return [r.message or "" for r in rules.validations(entity) if r.expression.test(context)]


def test_discount_over_40_percent_needs_a_reason(rules: RuleSet) -> None:
    assert failing(rules, "company", {"discount": D("45")}) == [
        "A discount over 40% needs a reason in the notes"
    ]
    assert failing(rules, "company", {"discount": D("45"), "notes": "partner"}) == []
    assert failing(rules, "company", {"discount": D("40")}) == []


def test_close_date_not_in_the_past_while_open(rules: RuleSet) -> None:
    past = {"stage": "open", "close_date": TODAY - dt.timedelta(days=1), "owner_id": 1}
    assert failing(rules, "deal", past) == [
        "The close date cannot be in the past while the deal is open"
    ]
    assert failing(rules, "deal", {**past, "stage": "lost"}) == []
    assert failing(rules, "deal", {**past, "close_date": TODAY}) == []


def test_phone_format(rules: RuleSet) -> None:
    assert failing(rules, "company", {"phone": "5551234"}) == ["Write the phone as 555-1234"]
    assert failing(rules, "company", {"phone": "555-1234"}) == []
    assert failing(rules, "company", {"phone": None}) == []


def test_change_detection_examples(rules: RuleSet) -> None:
    prior = {"stage": "won", "amount": D("10.00"), "owner_id": 2}
    assert failing(rules, "deal", {**prior, "amount": D("12.00")}, prior) == [
        "Only the owner may change the amount"
    ]
    assert failing(rules, "deal", {**prior, "stage": "open", "close_date": TODAY}, prior) == [
        "A won deal cannot be reopened"
    ]
    assert failing(rules, "deal", dict(prior), None) == []


def test_rollup_example(rules: RuleSet) -> None:
    lines = [{"item": "a", "quantity": D("6")}, {"item": "discount", "quantity": D("100")}]
    record = {"stage": "won", "amount": D("5.00"), "owner_id": 1}
    assert failing(rules, "deal", record, children=lines) == ["The amount must cover the lines"]
    assert failing(rules, "deal", {**record, "amount": D("6.00")}, children=lines) == []


def test_more_validations(rules: RuleSet) -> None:
    assert failing(rules, "company", {"email": "bob@Gmail.com"}) == [
        "Use the company's e-mail domain"
    ]
    assert failing(rules, "company", {"email": "bob@ACME.cn"}) == []
    assert failing(rules, "company", {"kind": "dealer", "channels": []}) == [
        "Dealers need at least one channel"
    ]
    assert failing(rules, "company", {"kind": "public_body", "revenue": D("2500.00")}) == [
        "Revenue must be a round thousand for public bodies"
    ]


def test_formulas_defaults_and_conditions(rules: RuleSet) -> None:
    context = EvalContext({"kind": "dealer", "founded": dt.date(2026, 3, 1)}, today=lambda: TODAY)
    values = {r.field: r.expression.evaluate(context) for r in rules.formulas("company")}
    assert values == {"score": D("1.5"), "employees": 14}
    defaults = {
        r.field: r.expression.evaluate(EvalContext({}, today=lambda: TODAY))
        for r in rules.defaults("deal")
    }
    assert defaults == {"stage": "open", "close_date": dt.date(2026, 6, 15)}
    won = EvalContext({"stage": "won"}, user=UserInfo(roles=("sales",)))
    assert [r.field for r in rules.of("deal", "require") if r.expression.test(won)] == [
        "close_date"
    ]
    assert [r.field for r in rules.of("deal", "readonly") if r.expression.test(won)] == ["*"]
    manager = EvalContext({"stage": "won"}, user=UserInfo(roles=("manager",)))
    assert [r.field for r in rules.of("deal", "readonly") if r.expression.test(manager)] == []
    assert [
        r.field
        for r in rules.of("company", "hide")
        if r.expression.test(EvalContext({"kind": None}))
    ] == ["revenue"]
