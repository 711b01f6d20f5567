"""Reports: grouping, date buckets and aggregates in SQL, scoped by the viewer's permissions,
drill-down parameters that list exactly the counted records, and clear errors."""

from __future__ import annotations

from decimal import Decimal

import pytest

from crm_platform.engine.records.actor import Actor
from crm_platform.engine.records.errors import BadRequest
from crm_platform.engine.records.list_query import parse_list_params
from crm_platform.engine.reports import Measure, Reports, ReportSpec, bucket_range
from crm_platform.engine.site import Site
from tests.packs.test_crm_standard_flows import staff

SYSTEM = Actor.system()


@pytest.fixture
def pipeline(site: Site) -> dict[str, Actor]:
    people = staff(site)
    account = site.records.create(SYSTEM, "account", {"name": "Harbour Hotel"})
    deals = [("rep", "Lobby", "100000", "2027-05-10"), ("rep", "Rooms", "250000.50", "2027-05-28"), ("rep", "Spa", "40000", "2027-07-02"),
             ("lead", "Tower", "900000", "2027-06-15")]
    for who, name, amount, close in deals:
        site.records.create(people[who], "opportunity", {"name": name, "account": account["id"], "amount": amount, "expected_close": close})
    lobby = next(r for r in site.records.list(SYSTEM, "opportunity", parse_list_params(site.registry.entity("opportunity"), [("q", "Lobby")])).records)
    site.workflows.fire(people["rep"], "opportunity", lobby["id"], "to_proposal")
    return people


def test_pipeline_by_stage_sums_exactly_within_the_viewers_scope(site: Site, pipeline: dict[str, Actor]) -> None:
    spec = ReportSpec("opportunity", ("stage",), (Measure("count"), Measure("sum", "amount")))
    mine = Reports(site).run(pipeline["rep"], spec)
    assert [(r["keys"][0], r["values"]["count"], r["values"]["sum_amount"]) for r in mine.rows] == [
        ("proposal", 1, Decimal("100000.00")), ("prospecting", 2, Decimal("290000.50"))]
    assert mine.totals == {"count": 3, "sum_amount": Decimal("390000.50")}
    assert mine.rows[0]["labels"][0] == {"en": "Proposal / quote", "zh-CN": "方案报价"}
    team = Reports(site).run(pipeline["lead"], spec)  # the sales manager sees the rep's deals too
    assert team.totals == {"count": 4, "sum_amount": Decimal("1290000.50")}


def test_month_buckets_and_drill_down_list_the_counted_records(site: Site, pipeline: dict[str, Actor]) -> None:
    spec = ReportSpec("opportunity", ("expected_close:month", "owner_id"), (Measure("count"), Measure("avg", "amount"), Measure("max", "expected_close")))
    result = Reports(site).run(pipeline["lead"], spec)
    rows = {(r["keys"][0], r["labels"][1]["en"]): r for r in result.rows}
    may = rows[("2027-05", "rep")]
    assert (may["values"]["count"], may["values"]["avg_amount"], may["values"]["max_expected_close"]) == (2, Decimal("175000.25"), "2027-05-28")
    assert may["drill"] == {"expected_close__gte": "2027-05-01", "expected_close__lt": "2027-06-01", "owner_id": str(pipeline["rep"].user_id)}
    listed = site.records.list(pipeline["lead"], "opportunity", parse_list_params(site.registry.entity("opportunity"), list(may["drill"].items())))
    assert sorted(r["name"] for r in listed.records) == ["Lobby", "Rooms"]
    assert bucket_range("2026-Q4", "quarter") == (bucket_range("2026-10", "month")[0], bucket_range("2027", "year")[0])


def test_a_rules_filter_narrows_the_report(site: Site, pipeline: dict[str, Actor]) -> None:
    spec = ReportSpec("opportunity", (), (Measure("count"),), expressions=('amount >= 200000 and stage != "lost"',))
    assert Reports(site).run(pipeline["lead"], spec).totals == {"count": 2}


@pytest.mark.parametrize(("spec", "message"), [
    ({"entity": "opportunity", "group_by": ["nmae"]}, "cannot group by 'nmae'"),
    ({"entity": "opportunity", "group_by": ["stage:month"]}, "date buckets"),
    ({"entity": "opportunity", "measures": [{"aggregate": "sum", "field": "name"}]}, "cannot sum 'name'"),
    ({"entity": "opportunity", "measures": [{"aggregate": "median", "field": "amount"}]}, "unknown aggregate 'median'"),
    ({"entity": "opportunity", "filter": "amount > "}, "the filter is not valid"),
])
def test_bad_reports_say_what_is_wrong(site: Site, spec: dict, message: str) -> None:
    with pytest.raises(BadRequest) as error:
        Reports(site).run(SYSTEM, ReportSpec.from_dict(spec))
    assert message in str(error.value)


def test_reports_over_the_api_saved_and_shared(site: Site, pipeline: dict[str, Actor]) -> None:
    from starlette.testclient import TestClient

    from crm_platform.ui.app import create_app
    from tests.helpers import log_in

    spec = {"entity": "opportunity", "group_by": ["stage"], "measures": [{"aggregate": "sum", "field": "amount"}]}
    with TestClient(create_app(site)) as client:
        log_in(client, "rep", "rep-password")
        result = client.post("/api/v1/reports/run", json=spec).json()
        assert result["totals"] == {"sum_amount": "390000.50"} and result["rows"][0]["drill"] == {"stage": "proposal"}
        bad = client.post("/api/v1/reports/run", json={"entity": "opportunity", "group_by": ["nope"]})
        assert bad.status_code == 400 and bad.json()["error"]["details"][0]["field"] == "group_by"
        saved = client.post("/api/v1/reports", json={"name": "My pipeline", "spec": spec, "shared": True})
        assert saved.status_code == 201
    with TestClient(create_app(site)) as client:  # shared: the manager runs it on their own scope
        log_in(client, "lead", "lead-password")
        [report] = client.get("/api/v1/reports").json()["reports"]
        assert report["name"] == "My pipeline"
        assert client.get(f"/api/v1/reports/{report['id']}").json()["totals"] == {"sum_amount": "1290000.50"}
        assert client.delete(f"/api/v1/reports/{report['id']}").status_code == 403
