"""Property: for generated records and generated filters over the testkit company, the
compiled Python and the compiled SQL select the same records (SQLite, and PostgreSQL when
CRM_TEST_DATABASE_URL is set)."""

from __future__ import annotations

import datetime as dt
import os
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.rules.sqlkit import NOW, KitDatabase

TEXT_ALPHABET = "aAbZ -"
KINDS = ["customer", "dealer", "public_body"]
CHANNELS = ["phone", "email", "wechat"]


def decimals(places: int, limit: int) -> st.SearchStrategy[Decimal]:
    return st.integers(-limit * 10**places, limit * 10**places).map(
        lambda n: Decimal(n).scaleb(-places)
    )


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), strategy)


small_text = st.text(TEXT_ALPHABET, min_size=1, max_size=6)
dates = st.dates(dt.date(2020, 1, 1), dt.date(2027, 12, 31))


@st.composite
def companies(draw: st.DrawFn) -> list[dict[str, Any]]:
    count = draw(st.integers(1, 6))
    rows = []
    for index in range(1, count + 1):
        rows.append(
            {
                "id": index,
                "name": draw(maybe(small_text)),
                "employees": draw(maybe(st.integers(-1000, 1000))),
                "score": draw(maybe(decimals(3, 1000))),
                "revenue": draw(maybe(decimals(2, 100_000))),
                "discount": draw(maybe(decimals(4, 100).map(abs))),
                "active": draw(maybe(st.booleans())),
                "founded": draw(maybe(dates)),
                "last_contact": draw(
                    maybe(st.integers(-(10**7), 10**7).map(lambda s: NOW + dt.timedelta(seconds=s)))
                ),
                "kind": draw(maybe(st.sampled_from(KINDS))),
                "channels": draw(
                    maybe(st.lists(st.sampled_from(CHANNELS), min_size=1, max_size=3, unique=True))
                ),
                "phone": draw(maybe(st.sampled_from(["555-1234", "x", "+1 2"]))),
                "parent": draw(maybe(st.integers(1, index))),
            }
        )
    return rows


@st.composite
def deals(draw: st.DrawFn, company_count: int) -> list[dict[str, Any]]:
    count = draw(st.integers(0, 4))
    return [
        {
            "id": index,
            "title": draw(small_text),
            "company": draw(st.integers(1, company_count)),
            "amount": draw(maybe(decimals(2, 10_000))),
            "stage": draw(st.sampled_from(["open", "won", "lost"])),
            "close_date": draw(maybe(dates)),
        }
        for index in range(1, count + 1)
    ]


# ---- typed expression generators ----

NUM_FIELDS = ["employees", "score", "revenue", "discount", "parent.employees", "parent.revenue"]
INT_LITERALS = st.integers(-50, 50).map(str)
DEC_LITERALS = decimals(2, 100).map(str)


def num(depth: int) -> st.SearchStrategy[str]:
    leaves = st.one_of(
        st.sampled_from(NUM_FIELDS),
        INT_LITERALS,
        DEC_LITERALS,
        st.sampled_from(["count(deal)", "sum(deal.amount)", "len(name)", "year(founded)"]),
    )
    if depth <= 0:
        return leaves
    sub = num(depth - 1)
    return st.one_of(
        leaves,
        st.tuples(sub, st.sampled_from(["+", "-"]), sub).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(sub, st.sampled_from(["2", "-3", "0.5", "1.25"])).map(
            lambda t: f"({t[0]} * {t[1]})"
        ),
        sub.map(lambda a: f"-({a})"),
        sub.map(lambda a: f"abs({a})"),
        st.tuples(sub, st.integers(0, 3)).map(lambda t: f"round({t[0]}, {t[1]})"),
        sub.map(lambda a: f"round({a})"),
        st.tuples(st.sampled_from(["floor", "ceil"]), sub).map(lambda t: f"{t[0]}({t[1]})"),
        st.tuples(sub, sub).map(lambda t: f"coalesce({t[0]}, {t[1]})"),
        st.tuples(sub, sub, st.sampled_from(["min", "max"])).map(
            lambda t: f"{t[2]}({t[0]}, {t[1]})"
        ),
        st.tuples(sub, st.sampled_from(["3", "7", "2.5"])).map(lambda t: f"mod({t[0]}, {t[1]})"),
        st.tuples(boolean(depth - 1), sub, sub).map(lambda t: f"if({t[0]}, {t[1]}, {t[2]})"),
    )


def text(depth: int) -> st.SearchStrategy[str]:
    leaves = st.one_of(
        st.sampled_from(["name", "phone", "parent.name", "lower(kind)"]),
        small_text.map(lambda s: f'"{s}"'),
    )
    if depth <= 0:
        return leaves
    sub = text(depth - 1)
    return st.one_of(
        leaves,
        st.tuples(st.sampled_from(["upper", "lower", "trim"]), sub).map(
            lambda t: f"{t[0]}({t[1]})"
        ),
        st.tuples(st.sampled_from(["left", "right"]), sub, st.integers(-1, 4)).map(
            lambda t: f"{t[0]}({t[1]}, {t[2]})"
        ),
        st.tuples(sub, st.integers(-1, 4), st.integers(-1, 4)).map(
            lambda t: f"mid({t[0]}, {t[1]}, {t[2]})"
        ),
        st.tuples(sub, sub).map(lambda t: f"concat({t[0]}, {t[1]})"),
        st.tuples(sub, sub).map(lambda t: f"({t[0]} + {t[1]})"),
        st.tuples(sub, small_text, small_text).map(
            lambda t: f'replace({t[0]}, "{t[1]}", "{t[2]}")'
        ),
    )


def date(depth: int) -> st.SearchStrategy[str]:
    leaves = st.one_of(
        st.sampled_from(["founded", "today()", "date(last_contact)", "parent.founded"]),
        dates.map(lambda d: f'd"{d.isoformat()}"'),
    )
    if depth <= 0:
        return leaves
    sub = date(depth - 1)
    return st.one_of(
        leaves,
        st.tuples(sub, st.integers(-400, 400)).map(lambda t: f"add_days({t[0]}, {t[1]})"),
        st.tuples(sub, st.integers(-40, 40)).map(lambda t: f"({t[0]} + {t[1]})"),
    )


def boolean(depth: int) -> st.SearchStrategy[str]:
    ops = st.sampled_from(["=", "!=", "<", "<=", ">", ">="])
    leaves = st.one_of(
        st.sampled_from(
            ["active", "not active", "isblank(name)", "isblank(channels)", "is_new2"]
        ).map(lambda s: "isblank(parent)" if s == "is_new2" else s),
        st.sampled_from(CHANNELS).map(lambda c: f'includes(channels, "{c}")'),
        st.lists(st.sampled_from([*KINDS, "null"]), min_size=1, max_size=3).map(
            lambda ks: "kind in [" + ", ".join(k if k == "null" else f'"{k}"' for k in ks) + "]"
        ),
        st.tuples(num(0), ops, num(0)).map(" ".join),
        st.tuples(text(0), ops, text(0)).map(" ".join),
        st.tuples(date(0), ops, date(0)).map(" ".join),
        st.tuples(
            st.sampled_from(NUM_FIELDS[:4]), st.lists(DEC_LITERALS, min_size=1, max_size=3)
        ).map(lambda t: f"{t[0]} not in [{', '.join(t[1])}]"),
        st.tuples(text(0), small_text).map(lambda t: f'contains({t[0]}, "{t[1]}")'),
        st.tuples(text(0), small_text).map(lambda t: f'startswith({t[0]}, "{t[1]}")'),
        st.sampled_from(
            [
                'count(deal where stage = "won") > 0',
                "max(deal.close_date) > founded",
                "sum(deal.amount where amount > 0) > revenue",
                "last_contact > now()",
                "days_between(founded, today()) > 365",
                "weekday(founded) > 5",
                "parent = id",
            ]
        ),
    )
    if depth <= 0:
        return leaves
    sub = boolean(depth - 1)
    return st.one_of(
        leaves,
        st.tuples(num(depth - 1), ops, num(depth - 1)).map(" ".join),
        st.tuples(text(depth - 1), ops, text(depth - 1)).map(" ".join),
        st.tuples(date(depth - 1), ops, date(depth - 1)).map(" ".join),
        st.tuples(sub, st.sampled_from(["and", "or"]), sub).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"
        ),
        sub.map(lambda a: f"not ({a})"),
        st.tuples(sub, sub).map(lambda t: f"({t[0]}) = ({t[1]})"),
    )


@st.composite
def datasets(draw: st.DrawFn) -> dict[str, list[dict[str, Any]]]:
    rows = draw(companies())
    return {"company": rows, "deal": draw(deals(len(rows)))}


@settings(
    max_examples=int(os.environ.get("RULES_PROPERTY_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=datasets(), filters=st.lists(boolean(2), min_size=1, max_size=4))
def test_python_and_sql_select_the_same_records(
    kit_db: KitDatabase, data: dict[str, list[dict[str, Any]]], filters: list[str]
) -> None:
    kit_db.load(data)
    for text in filters:
        sql, python = kit_db.agree("company", text)
        assert sql == python, text
