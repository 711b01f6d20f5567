"""Sales targets against actuals in the standard pack: a target names its rep (a user) or its unit
(an org unit, counting the units below it); its actual is the contracts signed in its period,
computed by the rules and kept current as contracts are signed, moved or cancelled; the sales
dashboard shows each current target against its actual."""

from __future__ import annotations

import re
import time
from decimal import Decimal

import pytest

from crm_platform.engine.records.actor import Actor
from crm_platform.engine.records.errors import ValidationFailed
from crm_platform.engine.records.list_query import ListQuery
from crm_platform.engine.site import Site
from tests.packs.test_crm_standard_model import order_for, people, sign

SYSTEM = Actor.system()


def money(value: object) -> Decimal:
    return Decimal(str(value))


def target(site: Site, actor: Actor = SYSTEM, **values: object) -> dict:
    data = {"name": "T", "period_type": "quarter", "period_start": "2026-04-01", "period_end": "2026-06-30", "target_amount": "10000.00", **values}
    return site.records.create(actor, "sales_target", data)


def actual(site: Site, record: dict) -> Decimal:
    return money(site.records.get(SYSTEM, "sales_target", record["id"])["actual_amount"])


def test_the_demo_targets_show_the_contracts_signed_in_their_period(site: Site) -> None:
    from crm_platform.engine.permissions.org_loader import load_org_chart
    from crm_platform.engine.seeding import load_records

    load_org_chart(site)
    load_records(site, ("seed", "demo"), SYSTEM)
    found = {r["name"]: r for r in site.records.list(SYSTEM, "sales_target", ListQuery(page_size=100)).records}
    # the amounts the demo's notes explain: Tianhe office 481,376 + Jinyu dealer contract 572,000
    assert money(found["广州组 2025 年第四季度目标"]["actual_amount"]) == Decimal("1053376.00")
    assert money(found["李娜 2025 年第四季度目标"]["actual_amount"]) == Decimal("481376.00")
    assert money(found["集团 2026 年度销售目标"]["actual_amount"]) == Decimal("245400.00")  # every unit below the group
    assert money(found["王强 2026 年第一季度目标"]["actual_amount"]) == 0
    assert found["广州组 2025 年第四季度目标"]["achievement"] is not None


def test_signing_moving_and_cancelling_contracts_keeps_targets_current(site: Site) -> None:
    crew = people(site)
    south_rep, east_rep = crew["south_rep"], crew["east_rep"]
    mine = target(site, name="South rep Q2", level="rep", rep=south_rep.user_id)
    unit = target(site, name="South sales Q2", level="department", unit=south_rep.unit_id)
    other = target(site, name="East rep Q2", level="rep", rep=east_rep.user_id)
    earlier = target(site, name="South rep Q1", level="rep", rep=south_rep.user_id, period_start="2026-01-01", period_end="2026-03-31")
    _, order = order_for(site, south_rep, lines=(("10", "100.00"),))
    assert actual(site, mine) == 0  # a draft is not a sale
    signed = sign(site, crew, order)  # signed on 2026-05-04
    assert actual(site, mine) == Decimal("1000.00") and actual(site, unit) == Decimal("1000.00")
    assert actual(site, other) == 0 and actual(site, earlier) == 0
    site.records.update(SYSTEM, "sales_order", signed["id"], {"version": signed["version"], "signed_on": "2026-03-30"})
    assert actual(site, mine) == 0 and actual(site, earlier) == Decimal("1000.00")  # moved to Q1
    history = [(h["old"], h["new"]) for h in site.records.history(SYSTEM, "sales_target", mine["id"]) if h["field"] == "actual_amount" and h["action"] == "update"]
    assert history == [("0.00", "1000.00"), ("1000.00", "0.00")]


def test_a_target_names_its_rep_or_its_unit(site: Site) -> None:
    crew = people(site)
    with pytest.raises(ValidationFailed) as refused:
        target(site, level="rep")
    assert {d.field for d in refused.value.details} == {"rep"}
    with pytest.raises(ValidationFailed) as refused:
        target(site, level="team", rep=crew["south_rep"].user_id)
    assert {d.field for d in refused.value.details} >= {"unit"}
    with pytest.raises(ValidationFailed) as refused:
        target(site, level="rep", rep=999999)
    assert refused.value.details[0].field == "rep"
    assert site.records.list(SYSTEM, "sales_target", ListQuery()).total == 0


def test_the_sales_dashboard_shows_targets_against_actuals(site: Site) -> None:
    from starlette.testclient import TestClient

    from crm_platform.engine.clock import CLOCK
    from crm_platform.ui.app import create_app
    from tests.helpers import log_in

    crew = people(site)
    start = CLOCK.today().replace(day=1)
    target(site, crew["south_lead"], name="This month", level="rep", rep=crew["south_rep"].user_id, status="active",
           period_type="month", period_start=start.isoformat(), period_end=CLOCK.today().isoformat(), target_amount="2000.00")
    _, order = order_for(site, crew["south_rep"], lines=(("10", "100.00"),))
    signed = sign(site, crew, order)
    site.records.update(SYSTEM, "sales_order", order["id"], {"version": signed["version"], "signed_on": start.isoformat()})
    time.sleep(0.6)
    with TestClient(create_app(site), base_url="http://testserver") as client:
        log_in(client, "south_lead", "south_lead-password")
        page = client.get("/dashboards/sales")
    assert page.status_code == 200
    chart = re.search(r'<svg[^>]*class="chart targets".*?</svg>', page.text, re.S)
    assert chart is not None, "no target chart on the sales dashboard"
    assert "This month" in chart.group(0) and "1,000 / 2,000 · 50%" in chart.group(0)


def test_a_target_chart_is_checked_when_the_pack_loads(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from crm_platform.metadata.errors import PackError
    from crm_platform.metadata.loader import load_registry
    from tests.helpers import entity_yaml, write_pack

    goal = entity_yaml("goal", """
        - {name: name, type: text, label: {en: Name, zh-CN: 名称}}
        - {name: aim, type: money, label: {en: Aim, zh-CN: 目标}}
        - {name: done, type: money, label: {en: Done, zh-CN: 完成}}
    """)
    board = """
        name: goals
        label: {en: Goals, zh-CN: 目标}
        widgets:
          - title: {en: Against aims, zh-CN: 完成情况}
            entity: goal
            group_by: [name]
            measure: {aggregate: sum, field: done}
            target: {aggregate: sum, field: aimm}
            chart: target
          - title: {en: No target, zh-CN: 无目标}
            entity: goal
            group_by: [name]
            chart: target
    """
    write_pack(tmp_path, "goals", {"entities/goal.yaml": goal, "dashboards/goals.yaml": board})
    with pytest.raises(PackError) as caught:
        load_registry(["goals"], [tmp_path])
    messages = [p.message for p in caught.value.problems]
    assert any("unknown field 'aimm' of goal; did you mean 'aim'?" in m for m in messages), messages
    assert any("a 'target' chart needs a target measure" in m for m in messages), messages
