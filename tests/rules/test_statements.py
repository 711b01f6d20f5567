"""Rule files: every statement form, all problems of a file reported with file:line:col."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from crm_platform.metadata.model import Registry
from crm_platform.rules import EvalContext, check_rule_file
from crm_platform.rules.statements import split_statements

FILE = "packs/testkit/rules/deal.rules"


def test_each_statement_form(registry: Registry) -> None:
    text = "\n".join(
        [
            'validate deal "Closed-won needs an amount" on amount '
            'when stage = "won" and isblank(amount)',
            "formula company.revenue = score * (1 - discount)",
            'default deal.stage = "open"',
            'require deal.close_date when stage = "won"',
            'hide company.revenue when kind != "dealer"',
            'readonly deal.* when stage = "won"',
        ]
    )
    rules, errors = check_rule_file(text, registry, FILE)
    assert errors == []
    assert [(r.kind, r.entity, r.field, r.line) for r in rules.rules] == [
        ("validate", "deal", None, 1),
        ("formula", "company", "revenue", 2),
        ("default", "deal", "stage", 3),
        ("require", "deal", "close_date", 4),
        ("hide", "company", "revenue", 5),
        ("readonly", "deal", "*", 6),
    ]
    validation = rules.validations("deal")[0]
    assert validation.message == "Closed-won needs an amount" and validation.on_fields == (
        "amount",
    )
    assert validation.file == FILE
    assert validation.expression.test(EvalContext({"stage": "won"}))
    formula = rules.formulas("company")[0]
    assert formula.expression.evaluate(
        EvalContext({"score": Decimal("2"), "discount": Decimal("25")})
    ) == Decimal("1.50")


def test_all_problems_of_a_file_with_positions(registry: Registry) -> None:
    text = """# rules with mistakes
validate deal "Bad field" when amout > 3
formula deal.amount = title
valdate deal "typo" when true
default company.kind = "dealr"
hide compny.revenue when true
validate deal "unclosed" when title = "x
require deal.close_dat when true
default deal.stage = "open"
default deal.stage = "won"
formula deal.code = "x"
formula deal.lines = 1
validate deal "fine" when true
"""
    rules, errors = check_rule_file(text, registry, FILE)
    assert [str(e) for e in errors] == [
        f"{FILE}:2:32: unknown field 'amout' on deal; did you mean 'amount'?",
        f"{FILE}:3:23: this gives text but deal.amount holds money",
        f"{FILE}:4:1: unknown statement 'valdate'; did you mean 'validate'? "
        "(a statement starts with validate, formula, default, require, hide, readonly)",
        f"{FILE}:5:24: 'dealr' is not a value of company.kind; did you mean 'dealer'?",
        f"{FILE}:6:6: unknown entity 'compny'; did you mean 'company'?",
        f'{FILE}:7:39: unclosed string: add the closing " '
        "(a text must end on the line where it starts)",
        f"{FILE}:8:14: unknown field 'close_dat' on deal; did you mean 'close_date'?",
        f"{FILE}:10:14: deal.stage already has a default (line 9)",
        f"{FILE}:11:14: deal.code is a field of type auto_number; a formula cannot set it",
        f"{FILE}:12:14: deal.lines is a field of type child_table; a formula cannot set it",
    ]
    assert errors[0].render().splitlines()[1:] == [
        '    validate deal "Bad field" when amout > 3',
        "                                   ^^^^^",
    ]
    assert [r.line for r in rules.rules] == [9, 13]


def test_multi_line_statements_and_comments(registry: Registry) -> None:
    text = """validate deal "Open deals need a future close date" on close_date
    when stage = "open"   # only open deals
     and close_date < today()

# a comment between statements
readonly deal.amount
    when stage = "won"
"""
    rules, errors = check_rule_file(text, registry, FILE)
    assert errors == []
    assert [r.line for r in rules.rules] == [1, 6]
    past = EvalContext({"stage": "open", "close_date": dt.date(2000, 1, 1)})
    assert rules.validations("deal")[0].expression.test(past)


def test_errors_on_continuation_lines_have_the_right_line(registry: Registry) -> None:
    text = 'validate deal "x"\n    when stage = "won"\n     and amout > 1\n'
    _rules, errors = check_rule_file(text, registry, FILE)
    assert [(e.line, e.column) for e in errors] == [(3, 10)]
    assert errors[0].render().splitlines()[1] == "         and amout > 1"


def test_split_statements() -> None:
    text = '# head\nvalidate a "m"\n  when x\n\nhide a.b when y\nstray words\n  more\n'
    assert split_statements(text) == [
        (2, 'validate a "m"\n  when x\n'),
        (5, "hide a.b when y"),
        (6, "stray words\n  more\n"),
    ]


def test_circular_formulas(registry: Registry) -> None:
    text = (
        "formula company.revenue = score + 1\n"
        "formula company.score = revenue * 2\n"
        "formula company.employees = 1\n"
    )
    rules, errors = check_rule_file(text, registry, FILE)
    assert len(errors) == 1
    assert (
        "formulas depend on each other: company.revenue -> company.score -> company.revenue"
        in errors[0].message
    )
    assert [r.field for r in rules.formulas("company")] == ["employees"]


def test_formulas_in_dependency_order(registry: Registry) -> None:
    text = "formula company.revenue = score * 2\nformula company.score = employees + 1\n"
    rules, errors = check_rule_file(text, registry, FILE)
    assert errors == []
    assert [r.field for r in rules.formulas("company")] == ["score", "revenue"]


def test_defaults_may_not_target_formula_or_system_fields(registry: Registry) -> None:
    _rules, errors = check_rule_file(
        "default deal.id = 1\nformula deal.created_at = now()\n", registry, FILE
    )
    assert [e.message for e in errors] == [
        "deal.id is a system field; a default cannot set it",
        "deal.created_at is a system field; a formula cannot set it",
    ]


def test_empty_file(registry: Registry) -> None:
    rules, errors = check_rule_file("# nothing yet\n\n", registry, FILE)
    assert rules.rules == [] and errors == []
