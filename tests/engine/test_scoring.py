"""Scorings: every record's weighted score, classes by rank (top 5 % / next 20 % / rest), the
periodic run on the platform clock, and configuration errors with their place."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from crm_platform.engine import jobs
from crm_platform.engine.clock import CLOCK
from crm_platform.engine.records.actor import Actor
from crm_platform.engine.records.list_query import ListQuery
from crm_platform.engine.scoring import Scorer
from crm_platform.engine.site import Site
from crm_platform.metadata.errors import PackError
from crm_platform.metadata.loader import load_registry
from tests.helpers import entity_yaml, write_pack

SYSTEM = Actor.system()

CLIENT = entity_yaml("client", """
    - {name: name, type: text, label: {en: Name, zh-CN: 名称}, required: true}
    - {name: revenue, type: money, label: {en: Revenue, zh-CN: 营收}}
    - {name: complaints, type: integer, label: {en: Complaints, zh-CN: 投诉}}
    - {name: active, type: boolean, label: {en: Active, zh-CN: 有效}, default: true}
    - {name: score, type: decimal, label: {en: Score, zh-CN: 得分}, precision: 8, scale: 2}
    - name: klass
      type: picklist
      label: {en: Class, zh-CN: 分类}
      options: [{value: a, label: {en: A, zh-CN: A}}, {value: b, label: {en: B, zh-CN: B}}, {value: c, label: {en: C, zh-CN: C}}]
""")

SCORING = """
    name: value
    label: {en: Value, zh-CN: 价值}
    entity: client
    score_field: score
    score: 'coalesce(revenue, 0) / 1000 - 5 * coalesce(complaints, 0)'
    when: active
    class_field: klass
    classes:
      - {value: a, top_percent: 5}
      - {value: b, top_percent: 20}
      - {value: c}
"""


@pytest.fixture
def scored(tmp_path: Path, make_site) -> Site:  # type: ignore[no-untyped-def]
    write_pack(tmp_path, "scorekit", {"entities/client.yaml": CLIENT, "scoring/value.yaml": SCORING})
    return make_site(["scorekit"], search=[tmp_path])


def clients(site: Site) -> dict[str, dict]:
    return {r["name"]: r for r in site.records.list(SYSTEM, "client", ListQuery(page_size=100)).records}


def test_scores_and_classes_by_rank(scored: Site) -> None:
    for i in range(1, 41):
        scored.records.create(SYSTEM, "client", {"name": f"c{i:02}", "revenue": str(i * 1000)})
    scored.records.create(SYSTEM, "client", {"name": "complainer", "revenue": "45000", "complaints": 3})  # 45 - 15 = 30
    scored.records.create(SYSTEM, "client", {"name": "dormant", "revenue": "99000", "active": False})
    result = Scorer(scored).run("value")
    assert (result.scored, result.skipped, result.classes) == (41, 1, {"a": 3, "b": 8, "c": 30})  # ceil(41 * 5 %) = 3, ceil(41 * 25 %) = 11
    rows = clients(scored)
    assert (rows["c40"]["score"], rows["c40"]["klass"]) == ("40.00", "a")
    assert [rows[n]["klass"] for n in ("c39", "c38", "c37", "c30", "c29", "c01")] == ["a", "a", "b", "b", "c", "c"]
    assert (rows["complainer"]["score"], rows["complainer"]["klass"]) == ("30.00", "c")  # ties rank by age: c30 came first
    assert (rows["dormant"]["score"], rows["dormant"]["klass"]) == (None, None)
    # a client that stops being active loses its score and class on the next run
    c40 = rows["c40"]
    scored.records.update(SYSTEM, "client", c40["id"], {"version": c40["version"], "active": False})
    Scorer(scored).run("value")
    assert (clients(scored)["c40"]["score"], clients(scored)["c40"]["klass"]) == (None, None)
    assert [clients(scored)[n]["klass"] for n in ("c39", "c38", "c37")] == ["a", "a", "b"]  # 40 scored: the top 2 are A


def test_the_periodic_job_scores_once_a_day(scored: Site) -> None:
    with CLOCK.scope():
        CLOCK.set(dt.datetime(2026, 7, 1, 2, 0, tzinfo=dt.UTC))
        client = scored.records.create(SYSTEM, "client", {"name": "solo", "revenue": "5000"})
        jobs.run_due(scored)
        assert clients(scored)["solo"]["score"] == "5.00"
        scored.records.update(SYSTEM, "client", client["id"], {"version": client["version"], "revenue": "9000"})
        CLOCK.advance(dt.timedelta(hours=5))
        jobs.run_due(scored)
        assert clients(scored)["solo"]["score"] == "5.00"  # scored today already
        CLOCK.advance(dt.timedelta(hours=19))
        jobs.run_due(scored)
        assert clients(scored)["solo"]["score"] == "9.00"


def test_bad_scorings_are_refused_with_their_place(tmp_path: Path) -> None:
    bad = SCORING.replace("score_field: score", "score_field: name").replace("{value: c}", "{value: d, top_percent: 10}")
    write_pack(tmp_path, "bad", {"entities/client.yaml": CLIENT, "scoring/value.yaml": bad})
    with pytest.raises(PackError) as error:
        load_registry(["bad"], [tmp_path])
    text = str(error.value)
    assert "scoring/value.yaml:4" in text and "'name' must be a decimal, integer or percent field of client (it is a text)" in text
    assert "'d' is not a value of client.klass" in text
    assert "the last class takes the rest" in text


def test_a_score_that_does_not_type_check_is_refused(tmp_path: Path) -> None:
    from crm_platform.rules.site_rules import compile_site_rules

    write_pack(tmp_path, "bad", {"entities/client.yaml": CLIENT, "scoring/value.yaml": SCORING.replace("coalesce(revenue, 0) / 1000", 'name / 1000')})
    with pytest.raises(PackError) as error:
        compile_site_rules(load_registry(["bad"], [tmp_path]))
    assert "scoring/value.yaml:" in str(error.value)


def test_the_standard_customer_value_model_ranks_accounts(site: Site) -> None:
    quiet = site.records.create(SYSTEM, "account", {"name": "Quiet Co", "since": "2016-01-01"})
    noisy = site.records.create(SYSTEM, "account", {"name": "Noisy Co", "since": "2016-01-01"})
    for n in range(3):
        site.records.create(SYSTEM, "service_request", {"subject": f"Complaint {n}", "account": noisy["id"], "kind": "complaint", "opened_at": "2026-06-01T08:00:00+00:00"})
    result = Scorer(site).run("customer_value")
    assert result.scored == 2
    scores = {r["name"]: r for r in site.records.list(SYSTEM, "account", ListQuery()).records}
    assert float(scores["Quiet Co"]["value_score"]) - float(scores["Noisy Co"]["value_score"]) == 15.0
    assert (scores["Quiet Co"]["abc_class"], scores["Noisy Co"]["abc_class"]) == ("a", "c")  # of two, the best is the top 5 %
