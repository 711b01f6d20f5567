"""Roll-ups over records that do not refer to the record (`sum(deal.amount where region =
$record.region)`): computed in SQL on save, kept current when the totalled records change
(before and after the change), usable in list filters, and checked with clear errors."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from crm_platform.engine.records.actor import Actor
from crm_platform.engine.records.list_query import ListQuery
from crm_platform.engine.site import Site
from crm_platform.metadata.errors import PackError
from crm_platform.metadata.loader import load_registry
from crm_platform.rules import check_expression
from tests.helpers import entity_yaml, write_pack

SYSTEM = Actor.system()

DEAL = entity_yaml("deal", """
    - {name: title, type: text, label: {en: Title, zh-CN: 标题}}
    - {name: region, type: text, label: {en: Region, zh-CN: 区域}}
    - {name: amount, type: money, label: {en: Amount, zh-CN: 金额}}
    - {name: closed_on, type: date, label: {en: Closed, zh-CN: 成交日}}
    - name: stage
      type: picklist
      label: {en: Stage, zh-CN: 阶段}
      options:
        - {value: open, label: {en: Open, zh-CN: 进行中}}
        - {value: won, label: {en: Won, zh-CN: 赢单}}
""", "title_field: title\n")

TARGET = entity_yaml("target", """
    - {name: name, type: text, label: {en: Name, zh-CN: 名称}}
    - {name: region, type: text, label: {en: Region, zh-CN: 区域}}
    - {name: period_start, type: date, label: {en: From, zh-CN: 开始}}
    - {name: period_end, type: date, label: {en: To, zh-CN: 结束}}
    - name: actual
      type: formula
      label: {en: Actual, zh-CN: 实际}
      result_type: money
      expression: >-
        sum(deal.amount where stage = "won" and region = $record.region
        and closed_on >= $record.period_start and closed_on <= $record.period_end)
    - name: open_deals
      type: formula
      label: {en: Open deals, zh-CN: 进行中商机}
      result_type: integer
      expression: count(deal where stage = "open" and region = $record.region)
    - name: unit_actual
      type: formula
      label: {en: Unit actual, zh-CN: 单元实际}
      result_type: money
      expression: sum(deal.amount where stage = "won" and within_unit(unit_id, $record.unit_id))
""", "title_field: name\n")


@pytest.fixture
def sales(make_site, tmp_path: Path) -> Site:  # type: ignore[no-untyped-def]
    write_pack(tmp_path, "targets", {"entities/deal.yaml": DEAL, "entities/target.yaml": TARGET})
    return make_site(["targets"], search=[tmp_path])


def deal(site: Site, region: str, amount: str, closed_on: str, stage: str = "won", actor: Actor = SYSTEM) -> dict:
    return site.records.create(actor, "deal", {"title": f"{region} {amount}", "region": region, "amount": amount, "closed_on": closed_on, "stage": stage})


def target(site: Site, region: str, start: str = "2026-01-01", end: str = "2026-03-31", actor: Actor = SYSTEM) -> dict:
    return site.records.create(actor, "target", {"name": f"{region} Q1", "region": region, "period_start": start, "period_end": end})


def fresh(site: Site, record: dict) -> dict:
    return site.records.get(SYSTEM, "target", record["id"])


def test_a_new_target_totals_the_matching_deals_exactly(sales: Site) -> None:
    deal(sales, "north", "1000.10", "2026-01-15")
    deal(sales, "north", "234.45", "2026-03-31")
    deal(sales, "north", "99.99", "2026-04-01")  # after the period
    deal(sales, "south", "500.00", "2026-02-01")  # another region
    deal(sales, "north", "70.00", "2026-02-01", stage="open")  # not won
    north = target(sales, "north")
    assert Decimal(north["actual"]) == Decimal("1234.55")
    assert north["open_deals"] == 1
    assert Decimal(target(sales, "west")["actual"]) == 0


def test_targets_follow_the_deals_they_total(sales: Site) -> None:
    north, south = target(sales, "north"), target(sales, "south")
    first = deal(sales, "north", "100.00", "2026-02-01")
    assert Decimal(fresh(sales, north)["actual"]) == Decimal("100.00")
    # Moved to another region: the old target drops it, the new one counts it.
    moved = sales.records.update(SYSTEM, "deal", first["id"], {"version": first["version"], "region": "south", "amount": "150.00"})
    assert Decimal(fresh(sales, north)["actual"]) == 0
    assert Decimal(fresh(sales, south)["actual"]) == Decimal("150.00")
    sales.records.delete(SYSTEM, "deal", moved["id"])
    assert Decimal(fresh(sales, south)["actual"]) == 0
    changed = [(row["old"], row["new"]) for row in sales.records.history(SYSTEM, "target", south["id"])
               if row["field"] == "actual" and row["action"] == "update"]
    assert changed == [("0.00", "150.00"), ("150.00", "0.00")]  # each recomputation is in its history

def test_a_list_filter_may_compare_each_row_with_other_records(sales: Site) -> None:
    target(sales, "north"), target(sales, "south")
    deal(sales, "north", "10.00", "2026-01-02", stage="open")
    deal(sales, "north", "20.00", "2026-01-03", stage="open")
    deal(sales, "south", "30.00", "2026-01-04", stage="open")
    page = sales.records.list(SYSTEM, "target", ListQuery(expressions=('count(deal where region = $record.region and amount >= 10) >= 2',)))
    assert [r["region"] for r in page.records] == ["north"]


def test_within_unit_totals_a_unit_and_the_units_below_it(sales: Site) -> None:
    perms = sales.permissions
    region = perms.create_unit("East region", "subsidiary")
    team = perms.create_unit("Team A", "team", region)
    other = perms.create_unit("West region", "subsidiary")
    people = {}
    for name, unit in (("boss", region), ("rep", team), ("far", other)):
        user_id = sales.users.create_user(name, "pw-123456789", unit_id=unit)
        people[name] = Actor(user_id, name, is_admin=True, unit_id=unit)
    deal(sales, "x", "100.00", "2026-01-10", actor=people["rep"])
    deal(sales, "x", "5.00", "2026-01-10", actor=people["boss"])
    deal(sales, "x", "1000.00", "2026-01-10", actor=people["far"])
    east = target(sales, "east", actor=people["boss"])
    team_target = target(sales, "team", actor=people["rep"])
    assert Decimal(east["unit_actual"]) == Decimal("105.00")
    assert Decimal(team_target["unit_actual"]) == Decimal("100.00")
    deal(sales, "x", "1.00", "2026-01-11", actor=people["rep"])
    assert Decimal(fresh(sales, east)["unit_actual"]) == Decimal("106.00")
    assert Decimal(fresh(sales, team_target)["unit_actual"]) == Decimal("101.00")


@pytest.mark.parametrize(("expression", "expected"), [
    ("sum(deal.amount)", "say which deal records count with 'where' and $record"),
    ("sum(deal.amount where region = $record.regoin)", "unknown field 'regoin' on target; did you mean 'region'?"),
    ("sum(deal.amount where region = $recrod.region)", "did you mean '$record'?"),
    ("count(deal where within_unit(region, $record.unit_id)) > 0", "within_unit() takes org units"),
    ("$record", "write $record.field"),
])
def test_mistakes_are_named(sales: Site, expression: str, expected: str) -> None:
    errors = check_expression(expression, sales.registry, "target", "formula")
    assert errors and expected in errors[0].message, [e.message for e in errors]


def test_a_pack_whose_cross_entity_rollup_has_no_where_never_serves(tmp_path: Path, make_site) -> None:  # type: ignore[no-untyped-def]
    broken = TARGET.replace('count(deal where stage = "open" and region = $record.region)', "count(deal)")
    write_pack(tmp_path, "broken", {"entities/deal.yaml": DEAL, "entities/target.yaml": broken})
    with pytest.raises(PackError) as caught:
        make_site(load_registry(["broken"], [tmp_path]))
    problem = caught.value.problems[0]
    assert Path(problem.file).name == "target.yaml" and problem.line == 20  # the expression's line
    assert "deal does not refer to target" in problem.message


def test_formulas_recompute_fills_a_formula_added_to_existing_records(make_site, tmp_path: Path, database_url: str,  # type: ignore[no-untyped-def]
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from crm_platform.cli import app

    plain = TARGET[:TARGET.index("  - name: actual")]
    write_pack(tmp_path / "v1", "targets", {"entities/deal.yaml": DEAL, "entities/target.yaml": plain})
    before = make_site(["targets"], search=[tmp_path / "v1"])
    deal(before, "north", "40.00", "2026-01-05")
    old = target(before, "north")
    assert "actual" not in old
    write_pack(tmp_path / "v2", "targets", {"entities/deal.yaml": DEAL, "entities/target.yaml": TARGET})
    after = make_site(["targets"], search=[tmp_path / "v2"])
    assert fresh(after, old)["actual"] is None  # a new formula column starts empty
    monkeypatch.setenv("CRM_DATABASE_URL", database_url)
    monkeypatch.setenv("CRM_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("CRM_PACKS", "targets")
    monkeypatch.setenv("CRM_PACKS_PATH", str(tmp_path / "v2"))
    result = CliRunner().invoke(app, ["formulas", "recompute", "target"])
    assert result.exit_code == 0, result.output
    assert "target: 1 record(s), 1 changed" in result.output
    refreshed = fresh(after, old)
    assert Decimal(refreshed["actual"]) == Decimal("40.00") and refreshed["version"] == old["version"] + 1
    again = CliRunner().invoke(app, ["formulas", "recompute"])
    assert "target: 1 record(s), 0 changed" in again.output
    wrong = CliRunner().invoke(app, ["formulas", "recompute", "nope"])
    assert wrong.exit_code == 1 and "nope: not an entity with stored formulas" in wrong.output


def test_user_roles_in_rules_include_the_roles_a_role_includes(sales: Site) -> None:
    from crm_platform.rules import compile_expression

    perms = sales.permissions
    for role in ("manager", "senior_manager", "clerk"):
        perms.create_role(role, role.title())
        perms.grant(role, "*", "*", "all")
    perms.include_role("senior_manager", "manager")
    senior = sales.users.create_user("senior", "pw-123456789")
    clerk = sales.users.create_user("clerk", "pw-123456789")
    perms.assign_role(senior, "senior_manager")
    perms.assign_role(clerk, "clerk")
    info = sales.records.hooks.user_info(sales.users.actor(senior))
    assert info.role == "senior_manager" and info.roles == ("senior_manager", "manager")
    # what a validation "only managers close big deals" would test: a senior manager is a manager
    condition = compile_expression('amount > 1000 and not ("manager" in $user.roles)', sales.registry, "deal")
    context = sales.records.hooks.context
    with sales.engine.connect() as conn:
        entity = sales.registry.entity("deal")
        assert condition.test(context(conn, sales.users.actor(clerk), entity, {"amount": Decimal("5000")}, None))
        assert not condition.test(context(conn, sales.users.actor(senior), entity, {"amount": Decimal("5000")}, None))
