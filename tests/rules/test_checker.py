"""The static type checker: messages, positions, carets, purposes, and what it records."""

from __future__ import annotations

import pytest

from crm_platform.metadata.model import Registry
from crm_platform.rules import RuleError, check_expression, checked_expression
from crm_platform.rules.context import Relation


def errors(
    registry: Registry,
    text: str,
    entity: str = "deal",
    purpose: str = "condition",
    target: str | None = None,
) -> list[RuleError]:
    return check_expression(text, registry, entity, purpose, target)


def only(registry: Registry, text: str, **kw: str) -> RuleError:
    found = errors(registry, text, **kw)
    assert len(found) == 1, [str(e) for e in found]
    return found[0]


@pytest.mark.parametrize(
    ("text", "entity", "column", "message"),
    [
        ("amout > 5", "deal", 1, "unknown field 'amout' on deal; did you mean 'amount'?"),
        ('stage = "wonn"', "deal", 9, "'wonn' is not a value of deal.stage; did you mean 'won'?"),
        ('"wonn" = stage', "deal", 1, "'wonn' is not a value of deal.stage"),
        (
            'stage in ["won", "lots"]',
            "deal",
            18,
            "'lots' is not a value of deal.stage; did you mean 'lost'?",
        ),
        (
            'case(stage, "opne", 1, 0) = 1',
            "deal",
            13,
            "'opne' is not a value of deal.stage; did you mean 'open'?",
        ),
        (
            'includes(channels, "emial")',
            "company",
            20,
            "'emial' is not a value of company.channels",
        ),
        ('"fax" in channels', "company", 1, "'fax' is not a value of company.channels"),
        ("name + 1 > 2", "company", 6, "cannot add text and number"),
        ("employees - name > 2", "company", 11, "cannot subtract text from number"),
        ("founded * 2 > 1", "company", 9, "cannot multiply date by number"),
        ("active / 2 > 1", "company", 8, "cannot divide boolean by number"),
        ("founded + founded > 1", "company", 9, "cannot add date and date"),
        (
            "last_contact + 1 > now()",
            "company",
            14,
            "cannot add date and time and number; use add_days",
        ),
        ("name > 5", "company", 6, "cannot compare text with number"),
        ("founded = last_contact", "company", 9, "cannot compare date with date and time"),
        ('kind > "dealer"', "company", 6, "picklist values have no order"),
        ("active < true", "company", 8, "'<' cannot order boolean"),
        ('channels = "email"', "company", 10, 'use includes(field, "value")'),
        (
            "employees and active",
            "company",
            1,
            "'and' combines conditions (true/false), but this is number",
        ),
        ("not name", "company", 5, "'not' needs a condition"),
        ("-name = 1", "company", 1, "cannot put a minus sign before text"),
        ("employees in channels", "company", 1, "a multi-picklist holds texts, not number"),
        ("employees in name", "company", 14, "'in' needs a list in [ ] or a multi-picklist"),
        (
            'employees in [1, "a"]',
            "company",
            18,
            "a list holds values of one type: number and text",
        ),
        ("lenght(name) > 3", "company", 1, "unknown function 'lenght'; did you mean 'len'?"),
        ("len(name, 2) > 3", "company", 1, "len() takes 1 argument, not 2"),
        ("if(active) = 1", "company", 1, "if() takes 2 to 3 arguments, not 1"),
        ("today(1) > founded", "company", 1, "today() takes no arguments, not 1"),
        (
            'upper(employees) = "A"',
            "company",
            7,
            "upper() expects text as its argument (text), not number",
        ),
        (
            'left(name, 1.5) = "A"',
            "company",
            12,
            "left() expects a whole number as its second argument (count)",
        ),
        ("if(name, 1, 2) = 1", "company", 4, "the first argument of if() must be a condition"),
        ('if(active, 1, "x") = 1', "company", 15, "if() gives number here but text there"),
        (
            "matches(name, phone)",
            "company",
            15,
            "the pattern of matches() must be written as a text in quotes",
        ),
        ('matches(name, "(a+)+")', "company", 15, "repeats a repetition"),
        ('matches(name, "[a-")', "company", 15, "not a valid regular expression"),
        ('matches(name, "' + "a" * 201 + '")', "company", 15, "the pattern is too long"),
        ('company.nmae = "x"', "deal", 9, "unknown field 'nmae' on company; did you mean 'name'?"),
        ("amount.value > 1", "deal", 8, "'amount' is a money field of deal, not a reference"),
        ('owner_id.name = "x"', "deal", 10, "refers to a user, whose fields rules cannot read"),
        ("lines > 1", "deal", 1, "'lines' holds the deal_line rows of deal: use count(lines)"),
        ("lines.quantity > 1", "deal", 1, "use sum(lines.quantity)"),
        ("count(lines.quantity) > 1", "deal", 13, "count() counts rows"),
        ("sum(lines) > 1", "deal", 5, "sum() needs a field of the child rows"),
        ("sum(lines.item) > 1", "deal", 11, "sum() adds numbers, but item is text"),
        (
            "count(lins) > 1",
            "deal",
            7,
            "'lins' is not a child relation of deal; did you mean 'lines'?",
        ),
        (
            "count(lines where quantity) > 1",
            "deal",
            19,
            "the condition after 'where' must be true or false",
        ),
        ("count(lines where amount > 1) > 1", "deal", 19, "unknown field 'amount' on deal_line"),
        ("min(amount) > 1", "deal", 1, "min() needs two or more values, or child rows"),
        ("$usr.id = 1", "deal", 1, "unknown variable '$usr'; did you mean '$user'?"),
        ('$user.rol = "x"', "deal", 7, "unknown user attribute 'rol'; did you mean 'role'?"),
        (
            'lookup("tagg", "x", "name") = "x"',
            "deal",
            8,
            "unknown entity 'tagg'; did you mean 'tag'?",
        ),
        ('lookup("tag", "nmae", "x", "name") = "x"', "deal", 15, "unknown field 'nmae' on tag"),
        (
            'lookup("tag", "x", "nam") = "x"',
            "deal",
            20,
            "unknown field 'nam' on tag; did you mean 'name'?",
        ),
        (
            'lookup("tag", 5, "name") = "x"',
            "deal",
            15,
            "tag.name is text, but the key given is number",
        ),
        (
            'lookup(title, "x", "name") = "x"',
            "deal",
            8,
            "the first argument of lookup() is the entity's name",
        ),
        ("changed(company.name)", "deal", 9, "changed() takes a field of this record"),
        ('stage = "won" where', "deal", 15, "'where' filters"),
    ],
)
def test_messages_and_positions(
    registry: Registry, text: str, entity: str, column: int, message: str
) -> None:
    found = errors(registry, text, entity)
    assert found, text
    assert message in found[0].message
    assert (found[0].line, found[0].column) == (1, column)


def test_rendering_puts_carets_under_the_name(registry: Registry) -> None:
    error = only(registry, 'stage = "won" and amout > 5')
    assert error.render() == (
        "<rule>:1:19: unknown field 'amout' on deal; did you mean 'amount'?\n"
        '    stage = "won" and amout > 5\n'
        "                      ^^^^^"
    )


def test_all_errors_are_reported(registry: Registry) -> None:
    found = errors(registry, 'amout > 1 and stag = "x" or lenght(title) > 2')
    assert [e.column for e in found] == [1, 15, 29]


def test_error_names_the_file(registry: Registry) -> None:
    error = check_expression("amout > 1", registry, "deal", file="packs/x/views/deal.yaml")[0]
    assert str(error).startswith("packs/x/views/deal.yaml:1:1: unknown field")


@pytest.mark.parametrize("purpose", ["condition", "filter"])
def test_conditions_must_be_boolean(registry: Registry, purpose: str) -> None:
    error = only(registry, "amount + 1", purpose=purpose)
    assert error.message == "a condition must be true or false, but this gives money"


@pytest.mark.parametrize(
    ("text", "target", "message"),
    [
        ("title", "amount", "this gives text but deal.amount holds money"),
        ("amount", "title", "this gives money but deal.title holds text; use text(x)"),
        ("1.5", "close_date", "this gives number but deal.close_date holds date"),
        ('"wonn"', "stage", "'wonn' is not a value of deal.stage; did you mean 'won'?"),
        ('if(amount > 5, "won", "lots")', "stage", "'lots' is not a value of deal.stage"),
    ],
)
def test_formula_result_must_fit_the_field(
    registry: Registry, text: str, target: str, message: str
) -> None:
    error = only(registry, text, purpose="formula", target=target)
    assert message in error.message


def test_formula_into_integer_needs_rounding(registry: Registry) -> None:
    error = only(registry, "score * 2", entity="company", purpose="formula", target="employees")
    assert (
        error.message
        == "this gives number but company.employees holds number; use round(x), floor(x) or ceil(x)"
    )
    assert (
        errors(
            registry, "round(score * 2)", entity="company", purpose="formula", target="employees"
        )
        == []
    )
    assert (
        errors(
            registry, "employees * 2 + 1", entity="company", purpose="formula", target="employees"
        )
        == []
    )


def test_formula_fits(registry: Registry) -> None:
    fine = [
        ("amount", "deal", "amount"),
        ("null", "deal", "amount"),
        ('"won"', "deal", "stage"),
        ("add_days(today(), 30)", "deal", "close_date"),
        ('["email", "phone"]', "company", "channels"),
        ("revenue * (1 - discount)", "company", "revenue"),
        ("discount / 2", "company", "discount"),
        ("parent", "company", "parent"),
        ("title", "deal", "title"),
        ("stage", "deal", "title"),
    ]
    for text, entity, target in fine:
        assert errors(registry, text, entity=entity, purpose="formula", target=target) == [], text


@pytest.mark.parametrize("purpose", ["formula", "default", "filter"])
def test_change_detection_only_in_conditions(registry: Registry, purpose: str) -> None:
    found = errors(
        registry,
        "if(is_new(), 1, 2)",
        purpose=purpose,
        target="amount" if purpose != "filter" else None,
    )
    assert any("is_new() can only be used in conditions" in e.message for e in found)
    assert errors(registry, 'is_new() or changed(stage) or prior(stage) = "open"') == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('matches(title, "a.*")', "matches() cannot be used in a list filter: regular expressions"),
        ("power(amount, 2) > 1", "power() cannot be used in a list filter"),
        ("add_months(close_date, 1) > today()", "add_months() cannot be used in a list filter"),
        ('text(amount) = "1"', "text() cannot be used in a list filter"),
        ("round(amount, len(title)) > 1", "round() in a list filter needs its number of digits"),
        ('concat(title, amount) = "x"', "concat() in a list filter takes text only"),
        ("date(title) = today()", "date() in a list filter must take a date and time"),
        ("count(tags) > 1", "roll-ups over the N:N link 'tags' cannot run in a list filter"),
    ],
)
def test_filters_refuse_what_sql_cannot_do(registry: Registry, text: str, message: str) -> None:
    found = errors(registry, text, purpose="filter")
    assert found and message in found[0].message
    assert errors(registry, text, purpose="condition") == []


def test_constant_calls_are_fine_in_filters(registry: Registry) -> None:
    fine = [
        "close_date > add_months(today(), -1)",
        "title = text(year(today()))",
        'matches("abc", "a.c")',
        "amount > power(10, 3)",
        'title = concat("a", 1)',
    ]
    for text in fine:
        assert errors(registry, text, purpose="filter") == [], text


def test_unknown_entity_and_purpose(registry: Registry) -> None:
    assert (
        "unknown entity 'dael'; did you mean 'deal'?"
        in errors(registry, "true", entity="dael")[0].message
    )
    with pytest.raises(ValueError):
        check_expression("true", registry, "deal", "guard")


def test_what_the_checker_records(registry: Registry) -> None:
    checked = checked_expression(
        'company.name = "x" and sum(lines.quantity where item = "a") > 1 and owner_id = $user.id '
        'and close_date < today() and lookup("tag", title, "name") = "t"',
        registry,
        "deal",
    )
    assert checked.ok
    deps = checked.dependencies
    assert deps.fields == {"company", "owner_id", "close_date", "title"}
    assert deps.paths == {("company", "name")}
    assert deps.relations == {Relation("child", "deal_line", "lines", "lines")}
    assert deps.lookups == {"tag"} and deps.user and deps.clock and not deps.prior
    assert str(checked.result) == "boolean"


def test_reference_and_id_comparisons(registry: Registry) -> None:
    assert errors(registry, "company = 5 and id != 3 and company.parent = company") == []
    assert (
        "cannot compare reference to company with reference to crm_user"
        in errors(registry, "company = owner_id")[0].message
    )
