"""Rules in the record lifecycle, through the record service: defaults, formula fields and
roll-ups kept current, validations reported on their fields, conditional require / readonly /
hide, list filters, and a pack whose rules do not check never serving."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from crm_platform.engine.records.actor import Actor
from crm_platform.engine.records.errors import BadRequest, ValidationFailed
from crm_platform.engine.records.list_query import ListQuery
from crm_platform.engine.site import Site
from crm_platform.metadata.errors import PackError
from crm_platform.metadata.loader import load_registry
from tests.conftest import FIXTURE_PACKS
from tests.helpers import write_pack

SYSTEM = Actor.system()


@pytest.fixture
def rk(make_site) -> Site:  # type: ignore[no-untyped-def]
    return make_site(["ruleskit"], search=[FIXTURE_PACKS])


def errors_of(caught: pytest.ExceptionInfo[ValidationFailed]) -> dict[str, str]:
    return {d.field: d.message for d in caught.value.details}


def test_defaults_and_formula_fields_are_stored(rk: Site) -> None:
    company = rk.records.create(SYSTEM, "company", {"name": "Big", "employees": 500})
    assert company["size_band"] == "large" and company["deal_count"] == 0
    deal = rk.records.create(SYSTEM, "deal", {"title": "D", "company": company["id"]})
    assert deal["close_date"] == (dt.date.today() + dt.timedelta(days=30)).isoformat()
    updated = rk.records.update(SYSTEM, "company", company["id"], {"version": rk.records.get(SYSTEM, "company", company["id"])["version"], "employees": 5})
    assert updated["size_band"] == "small"
    small = rk.records.list(SYSTEM, "company", ListQuery(filters=(__import__("crm_platform.engine.records.list_query", fromlist=["Filter"]).Filter("size_band", "eq", "small"),)))
    assert small.total == 1  # stored, so it filters and sorts in SQL


def test_rollups_stay_current_when_children_change(rk: Site) -> None:
    company = rk.records.create(SYSTEM, "company", {"name": "Parent"})
    first = rk.records.create(SYSTEM, "deal", {"title": "1", "company": company["id"]})
    rk.records.create(SYSTEM, "deal", {"title": "2", "company": company["id"]})
    assert rk.records.get(SYSTEM, "company", company["id"])["deal_count"] == 2
    rk.records.delete(SYSTEM, "deal", first["id"])
    assert rk.records.get(SYSTEM, "company", company["id"])["deal_count"] == 1
    other = rk.records.create(SYSTEM, "company", {"name": "Other"})
    second = rk.records.list(SYSTEM, "deal", ListQuery(search="2")).records[0]
    rk.records.update(SYSTEM, "deal", second["id"], {"version": second["version"], "company": other["id"]})
    assert rk.records.get(SYSTEM, "company", company["id"])["deal_count"] == 0
    assert rk.records.get(SYSTEM, "company", other["id"])["deal_count"] == 1


def test_validations_are_reported_together_on_their_fields(rk: Site) -> None:
    company = rk.records.create(SYSTEM, "company", {"name": "Co"})
    deal = rk.records.create(SYSTEM, "deal", {"title": "D", "company": company["id"]})
    with pytest.raises(ValidationFailed) as caught:
        rk.records.update(SYSTEM, "deal", deal["id"], {"version": 1, "stage": "won"})
    assert errors_of(caught) == {"amount": "A won deal needs an amount"}
    assert rk.records.get(SYSTEM, "deal", deal["id"])["stage"] == "open"
    with pytest.raises(ValidationFailed) as both:
        rk.records.create(SYSTEM, "company", {"name": "Huge", "employees": 5000, "kind": "dealer"})
    assert set(errors_of(both)) == {"website", "email"}
    assert "required" in errors_of(both)["email"]


def test_readonly_and_hide_conditions_apply_on_the_server(rk: Site) -> None:
    company = rk.records.create(SYSTEM, "company", {"name": "Co"})
    deal = rk.records.create(SYSTEM, "deal", {"title": "D", "company": company["id"]})
    lost = rk.records.update(SYSTEM, "deal", deal["id"], {"version": 1, "stage": "lost"})
    with pytest.raises(ValidationFailed) as locked:
        rk.records.update(SYSTEM, "deal", deal["id"], {"version": lost["version"], "title": "changed"})
    assert "locked by a rule" in errors_of(locked)["title"]
    with pytest.raises(ValidationFailed) as hidden:
        rk.records.create(SYSTEM, "company", {"name": "Not a dealer", "discount": "5"})
    assert "hidden by a rule" in errors_of(hidden)["discount"]
    dealer = rk.records.create(SYSTEM, "company", {"name": "Dealer", "kind": "dealer", "email": "d@x.example", "discount": "5"})
    assert dealer["discount"] == "5.0000"


def test_list_filters_in_the_rules_language_run_in_sql(rk: Site) -> None:
    company = rk.records.create(SYSTEM, "company", {"name": "Co", "employees": 50})
    for title, stage in (("a", "open"), ("b", "lost"), ("c", "open")):
        rk.records.create(SYSTEM, "deal", {"title": title, "company": company["id"], "stage": stage})
    open_deals = rk.records.list(SYSTEM, "deal", ListQuery(expressions=('stage = "open" and company.employees < 100',)))
    assert sorted(r["title"] for r in open_deals.records) == ["a", "c"]
    with pytest.raises(BadRequest) as bad:
        rk.records.list(SYSTEM, "deal", ListQuery(expressions=('stag = "open"',)))
    assert "did you mean 'stage'" in bad.value.details[0].message


def test_a_pack_whose_rule_does_not_check_never_serves(tmp_path: Path, make_site) -> None:  # type: ignore[no-untyped-def]
    write_pack(tmp_path, "broken_rules", {"rules/x.rules": 'validate company "x" on name when employes > 3\n'}, depends=["testkit"])
    registry = load_registry(["broken_rules"], [tmp_path, FIXTURE_PACKS])
    with pytest.raises(PackError) as caught:
        make_site(registry)
    problem = caught.value.problems[0]
    assert (Path(problem.file).name, problem.line, problem.column) == ("x.rules", 1, 35)
    assert "did you mean 'employees'" in problem.message and "^^^^^^^" in problem.message
