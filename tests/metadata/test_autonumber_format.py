"""Auto-number formats such as HT-{YYYY}-{seq:4}: parsing, rendering and the sequence period."""

from __future__ import annotations

import datetime as dt

import pytest

from crm_platform.metadata.autonumber_format import parse_format

DAY = dt.date(2025, 3, 7)


@pytest.mark.parametrize(
    ("text", "width", "rendered", "period"),
    [
        ("HT-{YYYY}-{seq:4}", 4, "HT-2025-0042", "2025"),
        ("{YY}{MM}{DD}-{seq:3}", 3, "250307-042", "250307"),
        ("C{seq}", 1, "C42", ""),
        ("Q-{YYYY}{MM}-{seq:6}", 6, "Q-202503-000042", "202503"),
        ("报价-{seq:2}", 2, "报价-42", ""),
        ("{seq:12}", 12, "000000000042", ""),
    ],
)
def test_good_formats(text: str, width: int, rendered: str, period: str) -> None:
    fmt = parse_format(text)
    assert (fmt.text, fmt.width) == (text, width)
    assert fmt.render(DAY, 42) == rendered
    assert fmt.period_key(DAY) == period


def test_a_number_wider_than_its_width_is_not_cut() -> None:
    assert parse_format("A{seq:2}").render(DAY, 12345) == "A12345"


def test_period_changes_with_the_year_only_for_yearly_formats() -> None:
    yearly = parse_format("HT-{YYYY}-{seq:4}")
    assert yearly.period_key(dt.date(2025, 12, 31)) != yearly.period_key(dt.date(2026, 1, 1))
    assert yearly.period_key(dt.date(2025, 1, 1)) == yearly.period_key(dt.date(2025, 12, 31))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("HT-{YYYY}", "the format must contain a sequence token such as {seq:4}"),
        ("HT-2025", "the format must contain a sequence token"),
        ("{seq:3}-{seq:4}", "the format must contain {seq} only once"),
        ("HT-{yyyy}-{seq:4}", "unknown token {yyyy}; use {YYYY}, {YY}, {MM}, {DD} and one {seq:N}"),
        ("HT-{sq:4}", "unknown token {sq:4}"),
        ("HT-{seq:x}", "unknown token {seq:x}"),
        ("HT-{}-{seq:4}", "unknown token {}"),
        ("HT-{seq:0}", "the width of {seq:N} must be between 1 and 12"),
        ("HT-{seq:13}", "the width of {seq:N} must be between 1 and 12"),
        ("HT-{seq:123}", "the width of {seq:N} must be between 1 and 12"),
        ("HT-{seq:4", "unbalanced braces in the format"),
        ("HT-seq:4}", "unbalanced braces in the format"),
        ("HT-{{seq:4}}", "unbalanced braces in the format"),
    ],
)
def test_bad_formats_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_format(text)
    assert message in str(info.value)
