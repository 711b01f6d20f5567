"""List filters compiled to SQL give the same records as the compiled Python, on each database."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from tests.rules.sqlkit import NOW, KitDatabase

D = Decimal
COMPANIES = [
    dict(
        id=1,
        name="Acme",
        employees=10,
        score=D("1.500"),
        revenue=D("100.25"),
        discount=D("12.5"),
        active=True,
        founded=dt.date(2020, 5, 1),
        last_contact=NOW,
        kind="dealer",
        channels=["email", "phone"],
        phone="555-1234",
        email="a@acme.test",
        parent=None,
    ),
    dict(
        id=2,
        name="Beta",
        employees=None,
        score=None,
        revenue=None,
        discount=None,
        active=None,
        founded=None,
        last_contact=None,
        kind=None,
        channels=None,
        phone=None,
        email=None,
        parent=1,
    ),
    dict(
        id=3,
        name="Gamma",
        employees=-3,
        score=D("-2.125"),
        revenue=D("5"),
        discount=D("50"),
        active=False,
        founded=dt.date(1999, 12, 31),
        last_contact=NOW - dt.timedelta(days=40),
        kind="customer",
        channels=["wechat"],
        phone="x",
        email=None,
        parent=2,
    ),
    dict(
        id=4,
        name="delta  ",
        employees=0,
        score=D("0.005"),
        revenue=D("-7.50"),
        discount=D("0"),
        active=True,
        founded=dt.date(2026, 3, 15),
        last_contact=NOW + dt.timedelta(hours=3),
        kind="public_body",
        channels=[],
        phone="+86 10 1234",
        email="d@x.test",
        parent=4,
    ),
]
DEALS = [
    dict(
        id=1,
        title="Big",
        company=1,
        amount=D("1000.00"),
        stage="won",
        close_date=dt.date(2026, 3, 1),
    ),
    dict(
        id=2,
        title="Small",
        company=1,
        amount=D("10.50"),
        stage="open",
        close_date=dt.date(2026, 4, 1),
    ),
    dict(id=3, title="None", company=3, amount=None, stage="lost", close_date=None),
]
LINES = [
    dict(id=1, parent_id=1, item="a", quantity=D("2.00"), unit_price=D("100.00")),
    dict(id=2, parent_id=1, item="b", quantity=D("1.50"), unit_price=D("3.33")),
    dict(id=3, parent_id=2, item="a", quantity=D("4.00"), unit_price=None),
]
TAGS = [dict(id=1, name="Hot"), dict(id=2, name="Cold"), dict(id=3, name="Hot")]

COMPANY_FILTERS = [
    "employees > 5",
    "score * 2 > 2.9",
    "revenue + score > 100",
    "discount > 40%",
    "discount = 0.125",
    "not active",
    "active = false",
    "active",
    'kind in ["dealer", "customer"]',
    'kind not in ["dealer"]',
    'kind in ["dealer", null]',
    '"email" in channels',
    'includes(channels, "wechat")',
    "isblank(channels)",
    'parent.name = "Acme"',
    'parent.parent.name = "Acme"',
    'parent.parent.parent.kind = "dealer"',
    "year(founded) = 2020",
    "founded < today()",
    "days_between(founded, today()) > 2000",
    'add_days(founded, 30) > d"2020-05-30"',
    'founded - 1 < d"2000-01-01"',
    "today() - founded > 10",
    "weekday(founded) = 5",
    "month(last_contact) = 3",
    "day(founded) = 31",
    "len(name) = 4",
    'upper(name) = "ACME"',
    'lower(name) = "gamma"',
    'contains(name, "am")',
    'startswith(name, "Ga")',
    'left(name, 2) = "Ac"',
    'right(name, 3) = "mma"',
    "right(name, 0) = null",
    'mid(name, 2, 2) = "cm"',
    'mid(name, -1, 2) = "Ac"',
    'find("m", name) = 3',
    "round(score, 1) = 1.5",
    "round(score, 1) = -2.1",
    "round(score, 2) = 0.01",
    "round(score) = -2",
    "floor(score) = -3",
    "ceil(score) = -2",
    "ceil(score) = 1",
    "abs(score) > 2",
    "mod(employees, 4) = -3",
    "mod(revenue, 2) = -1.5",
    "min(employees, 5) = 5",
    "max(score, revenue) > 50",
    "coalesce(employees, 0) = 0",
    "if(active, employees, 0) > 1",
    'case(kind, "dealer", 1, "customer", 2, 0) = 2',
    'case(kind, "dealer", revenue, 2.5) > 2',
    "isblank(revenue)",
    "employees / 3 > 3",
    "revenue / employees < 0",
    "last_contact > add_days(now(), -10)",
    "date(last_contact) = today()",
    "last_contact > now()",
    'replace(name, "a", "") = "Gmm"',
    'concat(name, "x") = "Acmex"',
    'trim(name) = "delta"',
    "trim(name) = name",
    'name < "B"',
    'name >= "delta"',
    "employees != 10",
    "revenue = score",
    "revenue != score",
    "-employees > 0",
    "count(deal) = 0",
    'count(deal where stage = "won") = 1',
    "sum(deal.amount) > 100",
    'max(deal.close_date) > d"2026-03-02"',
    'min(deal.title) = "Big"',
    'lookup("tag", "name", "Hot", "name") = "Hot"',
    'lookup("tag", name, "id") = null',
    "owner_id = $user.id or id = 2",
    '"manager" in $user.roles and id != 3',
    '$user.role = "sales" and kind = "dealer"',
    "email = null",
    'phone != "x"',
    "not (employees > 1 or revenue < 0)",
    "(employees > 1) = (revenue > 0)",
    "1 = 1",
    "null = null",
    "employees in [10, -3, 2.5]",
    "score in [1.5, 0.005]",
    "id = 4 and parent = id",
    "days_between(last_contact, now()) = 0",
    "1 / 3 > 0.3",
]
DEAL_FILTERS = [
    "count(lines) = 2",
    "count(lines where quantity > 1.5) = 2",
    "sum(lines.quantity) > 3.4",
    'sum(lines.quantity where item = "a") = 4',
    "max(lines.unit_price) > 50",
    'min(lines.item) = "a"',
    "isblank(max(lines.unit_price))",
    'company.name = "Acme" and stage != "lost"',
    'company.parent.name = "Acme"',
    "amount > company.revenue * 5",
    'close_date < today() and stage = "open"',
    'stage in ["won", "lost"]',
    'count(lines where parent_id.company.kind = "dealer") > 0',
]


@pytest.fixture(scope="module")
def db(kit_db: KitDatabase) -> KitDatabase:
    kit_db.load({"company": COMPANIES, "tag": TAGS, "deal": DEALS, "deal_line": LINES})
    return kit_db


@pytest.mark.parametrize("text", COMPANY_FILTERS)
def test_company_filter_python_equals_sql(db: KitDatabase, text: str) -> None:
    sql, python = db.agree("company", text)
    assert sql == python


@pytest.mark.parametrize("text", DEAL_FILTERS)
def test_deal_filter_python_equals_sql(db: KitDatabase, text: str) -> None:
    sql, python = db.agree("deal", text)
    assert sql == python


def test_filters_select_something(db: KitDatabase) -> None:
    """The examples are not vacuous: most of them select some but not all records."""
    mixed = [t for t in COMPANY_FILTERS if 0 < len(db.python_ids("company", t)) < len(COMPANIES)]
    assert len(mixed) > len(COMPANY_FILTERS) * 0.7
