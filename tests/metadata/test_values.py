"""values.parse_value: what each field type accepts, what it stores, and what it says when it refuses."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from crm_platform.metadata.model import Field, Label, Option, Place
from crm_platform.metadata.values import is_blank, parse_currency, parse_value, to_json


def make(type_: str, **settings: Any) -> Field:
    return Field(name="f", type=type_, label=Label("F", "F"), place=Place("test.yaml", 1, 1), **settings)


OPTIONS = (Option("low", Label("Low", "低")), Option("mid", Label("Mid", "中")), Option("high", Label("High", "高")))


def accepts(field: Field, raw: Any, expected: Any) -> None:
    value = parse_value(field, raw)
    assert value == expected and type(value) is type(expected), f"{raw!r} -> {value!r}"


def refuses(field: Field, raw: Any, *words: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_value(field, raw)
    for word in words:
        assert word in str(info.value), f"{word!r} not in {info.value}"


@pytest.mark.parametrize("type_", ["text", "long_text", "integer", "decimal", "money", "boolean", "date", "picklist", "multi_picklist", "reference", "email"])
@pytest.mark.parametrize("blank", [None, "", "   ", []])
def test_blank_is_none(type_: str, blank: Any) -> None:
    assert is_blank(blank)
    assert parse_value(make(type_, options=OPTIONS), blank) is None


def test_false_and_zero_are_not_blank() -> None:
    assert not is_blank(False) and not is_blank(0)
    accepts(make("boolean"), False, False)
    accepts(make("integer"), 0, 0)


def test_text() -> None:
    f = make("text")
    accepts(f, "Acme", "Acme")
    accepts(f, 42, "42")
    accepts(f, "x" * 255, "x" * 255)
    refuses(f, "x" * 256, "at most 255 characters allowed, got 256")
    refuses(make("text", max_length=5), "abcdef", "at most 5 characters allowed, got 6")
    refuses(f, True, "expected text")
    refuses(f, ["a"], "expected text")
    refuses(f, {"a": 1}, "expected text")


def test_long_text() -> None:
    f = make("long_text")
    accepts(f, "x" * 100_000, "x" * 100_000)
    accepts(f, 2024, "2024")
    refuses(f, ["a"], "expected text")


def test_integer() -> None:
    f = make("integer")
    accepts(f, 7, 7)
    accepts(f, "-12", -12)
    accepts(f, " 1,000 ", 1000)
    accepts(f, 3.0, 3)
    accepts(f, Decimal("5"), 5)
    refuses(f, "lots", "expected a whole number, got 'lots'")
    refuses(f, 2.5, "expected a whole number, got 2.5")
    refuses(f, "1.5", "expected a whole number")
    refuses(f, True, "expected a whole number")
    refuses(f, 2**63, "number too large")


def test_integer_bounds() -> None:
    f = make("integer", min=1, max=10)
    accepts(f, 1, 1)
    accepts(f, 10, 10)
    refuses(f, 0, "must be at least 1")
    refuses(f, 11, "must be at most 10")
    refuses(make("integer", min="0.5"), 0, "must be at least 0.5")
    refuses(make("integer", max="lots"), 3, "the field's max ('lots') is not a number")


def test_decimal() -> None:
    f = make("decimal", precision=6, scale=2)
    accepts(f, "12.5", Decimal("12.50"))
    accepts(f, 0.1, Decimal("0.10"))
    accepts(f, "1,234.5", Decimal("1234.50"))
    accepts(f, 3, Decimal("3.00"))
    accepts(f, "1.500", Decimal("1.50"))  # trailing zeros are not extra places
    accepts(f, "9999.99", Decimal("9999.99"))
    refuses(f, "1.005", "at most 2 decimal places allowed")
    refuses(f, "10000", "too large: at most 4 digits before the decimal point")
    refuses(f, "abc", "expected a number, got 'abc'")
    refuses(f, "NaN", "expected a finite number")
    refuses(f, "Infinity", "expected a finite number")
    refuses(f, True, "expected a number")
    refuses(make("decimal", min=0), "-1", "must be at least 0")


def test_decimal_defaults_to_four_places() -> None:
    accepts(make("decimal"), "1.2345", Decimal("1.2345"))
    refuses(make("decimal"), "1.23456", "at most 4 decimal places")


def test_money() -> None:
    f = make("money")
    accepts(f, "1999.9", Decimal("1999.90"))
    accepts(f, 12, Decimal("12.00"))
    refuses(f, "0.001", "at most 2 decimal places")
    refuses(f, "1e17", "too large: at most 16 digits")
    refuses(f, "¥12", "expected a number")


def test_percent() -> None:
    f = make("percent", min=0, max=100)
    accepts(f, "12.5%", Decimal("12.5000"))
    accepts(f, 100, Decimal("100.0000"))
    refuses(f, "101", "must be at most 100")
    refuses(f, "-1%", "must be at least 0")
    refuses(make("percent"), "0.00001", "at most 4 decimal places")


@pytest.mark.parametrize(("raw", "expected"), [(True, True), (False, False), ("yes", True), ("No", False), ("1", True), ("0", False), (" on ", True), ("off", False), (1, True), (0, False)])
def test_boolean_accepts(raw: Any, expected: bool) -> None:
    accepts(make("boolean"), raw, expected)


@pytest.mark.parametrize("raw", ["maybe", 2, 1.5, ["yes"]])
def test_boolean_refuses(raw: Any) -> None:
    refuses(make("boolean"), raw, "expected true or false")


def test_date() -> None:
    f = make("date")
    accepts(f, "2024-02-29", dt.date(2024, 2, 29))
    accepts(f, dt.date(2024, 1, 2), dt.date(2024, 1, 2))
    accepts(f, dt.datetime(2024, 1, 2, 15, 30), dt.date(2024, 1, 2))
    refuses(f, "2023-02-29", "expected a date as YYYY-MM-DD, got '2023-02-29'")
    refuses(f, "31/12/2024", "expected a date as YYYY-MM-DD")
    refuses(f, 20240101, "expected a date")


def test_datetime() -> None:
    f = make("datetime")
    utc = dt.UTC
    accepts(f, "2024-03-01T08:30:00Z", dt.datetime(2024, 3, 1, 8, 30, tzinfo=utc))
    accepts(f, "2024-03-01T16:30+08:00", dt.datetime(2024, 3, 1, 8, 30, tzinfo=utc))
    accepts(f, "2024-03-01 08:30", dt.datetime(2024, 3, 1, 8, 30, tzinfo=utc))  # naive is UTC
    accepts(f, dt.datetime(2024, 3, 1, 8, 30), dt.datetime(2024, 3, 1, 8, 30, tzinfo=utc))
    refuses(f, "yesterday", "expected a date and time as YYYY-MM-DDTHH:MM[:SS][+hh:mm], got 'yesterday'")
    refuses(f, dt.date(2024, 3, 1), "expected a date and time")


def test_picklist() -> None:
    f = make("picklist", options=OPTIONS)
    accepts(f, "mid", "mid")
    refuses(f, "Mid", "'Mid' is not one of the allowed values: low, mid, high")
    refuses(f, 1, "1 is not one of the allowed values")


def test_multi_picklist() -> None:
    f = make("multi_picklist", options=OPTIONS)
    accepts(f, ["high", "low"], ["low", "high"])  # option order
    accepts(f, "high; low;mid", ["low", "mid", "high"])
    accepts(f, ["low", "low"], ["low"])
    accepts(f, ("mid", "low"), ["low", "mid"])  # a default from the Registry is a tuple
    accepts(f, "low;", ["low"])  # a trailing separator is not a value
    refuses(f, ["low", "top"], "'top' is not one of the allowed values: low, mid, high")
    refuses(f, 3, "expected a list of values")


def test_reference() -> None:
    f = make("reference", entity="account")
    accepts(f, 12, 12)
    accepts(f, "12", 12)
    accepts(f, {"id": 3, "title": "Acme"}, 3)
    refuses(f, 0, "expected the id of an account record")
    refuses(f, "acme", "expected the id of an account record")
    refuses(f, True, "expected the id of an account record")


def test_file() -> None:
    f = make("file")
    accepts(f, 5, 5)
    refuses(f, "logo.png", "expected the id of an uploaded file")
    refuses(f, -1, "expected the id of an uploaded file")


def test_email() -> None:
    f = make("email")
    accepts(f, " li.lei@example.cn ", "li.lei@example.cn")
    refuses(f, "li.lei@", "'li.lei@' is not a valid email address")
    refuses(f, "a b@example.com", "not a valid email address")
    refuses(f, "a@" + "x" * 260 + ".com", "not a valid email address")


def test_phone() -> None:
    f = make("phone")
    accepts(f, "+86 (10) 6552-1234", "+86 (10) 6552-1234")
    accepts(f, "010-12345678 ext 12", "010-12345678 ext 12")
    accepts(f, 13800138000, "13800138000")
    refuses(f, "call me", "'call me' is not a valid phone number")
    refuses(f, "12", "not a valid phone number")


def test_url() -> None:
    f = make("url")
    accepts(f, "https://example.com/a?b=1", "https://example.com/a?b=1")
    refuses(f, "ftp://example.com", "'ftp://example.com' is not a valid http(s) URL")
    refuses(f, "example.com", "not a valid http(s) URL")
    refuses(f, "https://" + "x" * 2050, "not a valid http(s) URL")


@pytest.mark.parametrize("type_", ["auto_number", "child_table", "many_to_many"])
def test_computed_and_relation_fields_cannot_be_set(type_: str) -> None:
    refuses(make(type_, entity="x", format="A{seq:3}"), "A001", f"fields of type {type_} cannot be set directly")


def test_formula_values_follow_the_result_type() -> None:
    accepts(make("formula", expression="a + b", result_type="money"), "1.5", Decimal("1.50"))
    accepts(make("formula", expression="a", result_type="boolean"), "yes", True)
    refuses(make("formula", expression="a", result_type="text"), "x" * 300, "at most 255 characters")
    accepts(make("formula", expression="a"), "text by default", "text by default")


def test_currency() -> None:
    assert parse_currency("USD") == "USD"
    for bad in ("usd", "US", "USDT", 840):
        with pytest.raises(ValueError, match="is not a currency code"):
            parse_currency(bad)


def test_to_json() -> None:
    f = make("text")
    assert to_json(f, None) is None
    assert to_json(f, Decimal("1.50")) == "1.50"
    assert to_json(f, dt.date(2024, 1, 2)) == "2024-01-02"
    assert to_json(f, dt.datetime(2024, 1, 2, 3, 4)) == "2024-01-02T03:04:00+00:00"
    assert to_json(f, ["a"]) == ["a"]


def test_a_computed_money_field_may_name_its_currency(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from crm_platform.metadata.errors import PackError
    from crm_platform.metadata.loader import load_registry
    from tests.helpers import entity_yaml, write_pack

    fields = """
        - {name: price, type: money, currency: USD, label: {en: Price, zh-CN: 价格}}
        - {name: net, type: formula, expression: price * 0.9, result_type: money, currency: USD, label: {en: Net, zh-CN: 净价}}
    """
    write_pack(tmp_path, "usd", {"entities/item.yaml": entity_yaml("item", fields)})
    net = load_registry(["usd"], [tmp_path]).entity("item").field("net")
    from crm_platform.ui.display import currency_sign

    assert net.currency == "USD" and currency_sign(net, {"net": "9.00"}) == "$"  # shown as the pack says
    wrong = fields.replace("result_type: money, currency: USD", "result_type: decimal, currency: USD")
    write_pack(tmp_path / "bad", "usd", {"entities/item.yaml": entity_yaml("item", wrong)})
    with pytest.raises(PackError) as caught:
        load_registry(["usd"], [tmp_path / "bad"])
    assert "currency applies to a formula whose result_type is money" in str(caught.value)
