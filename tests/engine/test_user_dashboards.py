"""Dashboards built by users: who sees them (owner, everyone, roles; administrators), who changes
them (owner or administrator only), widgets copied from saved reports, charts each report allows,
reordering and removing, and bad input refused with every bad part named and nothing stored."""

from __future__ import annotations

import pytest

from crm_platform.engine.records.actor import Actor
from crm_platform.engine.records.errors import Forbidden, NotFound, ValidationFailed
from crm_platform.engine.reports import Measure, ReportSpec, SavedReports
from crm_platform.engine.site import Site
from crm_platform.engine.user_dashboards import UserDashboards, charts_for
from tests.packs.test_crm_standard_flows import staff

BY_STAGE = {"entity": "opportunity", "group_by": ["stage"], "measures": [{"aggregate": "sum", "field": "amount"}]}
BY_REGION = {"entity": "account", "group_by": ["region"]}


@pytest.fixture
def people(site: Site, admin: Actor) -> dict[str, Actor]:
    return {**staff(site), "admin": admin}


def names(site: Site, actor: Actor) -> list[str]:
    return [b["name"] for b in UserDashboards(site).visible(actor)]


def test_a_private_dashboard_is_seen_by_its_owner_and_administrators_only(site: Site, people: dict[str, Actor]) -> None:
    boards = UserDashboards(site)
    board_id = boards.create(people["lead"], "  My pipeline ", widgets=[{"spec": BY_STAGE}])
    assert names(site, people["lead"]) == ["My pipeline"]
    assert names(site, people["rep"]) == [] and names(site, people["agent"]) == []
    with pytest.raises(NotFound, match=f"dashboard {board_id} not found"):
        boards.get(people["rep"], board_id)
    seen = boards.get(people["admin"], board_id)
    assert seen["can_edit"] and seen["owner_name"] == "lead"
    assert seen["widgets"] == [{"title": "Opportunities by stage", "chart": "bar", "spec": {**BY_STAGE, "filter": None, "limit": 200}}]


def test_sharing_with_everyone_or_with_roles(site: Site, people: dict[str, Actor]) -> None:
    boards = UserDashboards(site)
    for_sales = boards.create(people["lead"], "Sales floor", "roles", ["sales_rep"], [{"spec": BY_STAGE}])
    boards.create(people["manager"], "Regions", "everyone", [], [{"spec": BY_REGION}])
    assert names(site, people["rep"]) == ["Regions", "Sales floor"]
    assert names(site, people["agent"]) == ["Regions"]  # a service agent holds no sales role
    assert not boards.get(people["rep"], for_sales)["can_edit"]
    boards.update(people["lead"], for_sales, {"sharing": "private"})  # no longer shared: the roles are dropped too
    assert names(site, people["rep"]) == ["Regions"]
    assert boards.get(people["lead"], for_sales)["roles"] == []


def test_only_the_owner_or_an_administrator_changes_or_deletes_a_dashboard(site: Site, people: dict[str, Actor]) -> None:
    boards = UserDashboards(site)
    board_id = boards.create(people["lead"], "Team", "everyone", widgets=[{"spec": BY_REGION}])
    before = boards.get(people["lead"], board_id)
    with pytest.raises(Forbidden, match="only the owner of dashboard 'Team' or an administrator"):
        boards.update(people["rep"], board_id, {"name": "Mine now"})
    with pytest.raises(Forbidden):
        boards.delete(people["rep"], board_id)
    with pytest.raises(Forbidden):
        boards.remove_widget(people["rep"], board_id, 0)
    assert boards.get(people["lead"], board_id) == before
    assert boards.update(people["admin"], board_id, {"name": "Team (checked)"})["name"] == "Team (checked)"
    boards.delete(people["lead"], board_id)
    assert names(site, people["lead"]) == []


def test_a_widget_from_a_saved_report_is_a_copy_that_outlives_the_report(site: Site, people: dict[str, Actor]) -> None:
    reports = SavedReports(site)
    report_id = reports.save(people["lead"], "Pipeline by stage", ReportSpec("opportunity", ("stage",), (Measure("count"),)))
    boards = UserDashboards(site)
    board_id = boards.create(people["lead"], "Pipeline")
    boards.add_widget(people["lead"], board_id, {"report_id": report_id, "chart": "funnel"})
    reports.delete(people["lead"], report_id)
    widget = boards.get(people["lead"], board_id)["widgets"][0]
    assert (widget["title"], widget["chart"], widget["report_id"], widget["spec"]["group_by"]) == ("Pipeline by stage", "funnel", report_id, ["stage"])
    with pytest.raises(ValidationFailed) as missing:
        boards.add_widget(people["lead"], board_id, {"report_id": report_id})
    assert [(d.field, d.message) for d in missing.value.details] == [("widgets[1].report_id", f"saved report {report_id} not found")]


def test_widgets_are_reordered_retitled_and_removed(site: Site, people: dict[str, Actor]) -> None:
    boards = UserDashboards(site)
    board_id = boards.create(people["lead"], "Order", widgets=[{"title": "A", "spec": BY_STAGE}, {"title": "B", "spec": BY_REGION},
                                                              {"title": "C", "spec": BY_REGION, "chart": "number"}])
    titles = lambda: [w["title"] for w in boards.get(people["lead"], board_id)["widgets"]]  # noqa: E731
    boards.move_widget(people["lead"], board_id, 2, -1)
    assert titles() == ["A", "C", "B"]
    boards.move_widget(people["lead"], board_id, 0, -1)  # the first stays first
    assert titles() == ["A", "C", "B"]
    boards.set_widget(people["lead"], board_id, 0, chart="table", title="Stages")
    boards.remove_widget(people["lead"], board_id, 1)
    assert [(w["title"], w["chart"]) for w in boards.get(people["lead"], board_id)["widgets"]] == [("Stages", "table"), ("B", "bar")]
    with pytest.raises(NotFound, match="has no widget 5"):
        boards.remove_widget(people["lead"], board_id, 4)


def test_each_report_offers_the_charts_it_can_be_drawn_as(site: Site, people: dict[str, Actor]) -> None:
    two_measures = {**BY_STAGE, "measures": [{"aggregate": "sum", "field": "weighted_amount"}, {"aggregate": "sum", "field": "amount"}]}
    assert charts_for(two_measures) == ["bar", "funnel", "target", "table", "number"]
    assert charts_for({**BY_STAGE, "group_by": ["stage", "owner_id"]}) == ["table", "number"]
    boards = UserDashboards(site)
    board_id = boards.create(people["lead"], "Targets", widgets=[{"spec": two_measures, "chart": "target"}])
    assert boards.get(people["lead"], board_id)["widgets"][0]["chart"] == "target"
    with pytest.raises(ValidationFailed) as refused:
        boards.add_widget(people["lead"], board_id, {"spec": BY_STAGE, "chart": "target"})
    assert refused.value.details[0].field == "widgets[1].chart"
    assert "a target chart needs one grouping and two measures" in refused.value.details[0].message


def test_bad_input_is_refused_naming_every_bad_part_and_nothing_is_stored(site: Site, people: dict[str, Actor]) -> None:
    boards = UserDashboards(site)
    with pytest.raises(ValidationFailed) as refused:
        boards.create(people["lead"], "", "roles", ["sales_rep", "astronaut"], [
            {"spec": {**BY_STAGE, "group_by": ["stage", "owner_id"]}, "chart": "funnel"},
            {"spec": {**BY_STAGE, "filter": "amount >"}},
            {"spec": {"entity": "spaceship"}},
            {"spec": BY_STAGE, "colour": "red", "chart": "pie"},
        ])
    fields = sorted({d.field for d in refused.value.details})
    assert fields == ["name", "roles", "widgets[0].chart", "widgets[1].spec.filter", "widgets[2].spec.entity", "widgets[3].chart", "widgets[3].colour"]
    messages = {d.field: d.message for d in refused.value.details}
    assert messages["roles"] == "unknown role 'astronaut'"
    assert "a funnel chart needs exactly one grouping" in messages["widgets[0].chart"]
    with pytest.raises(ValidationFailed, match="roles"):
        boards.create(people["lead"], "Nobody", "roles", [])
    assert names(site, people["admin"]) == []


def test_a_widget_over_records_the_editor_may_not_read_is_refused(site: Site, people: dict[str, Actor]) -> None:
    boards = UserDashboards(site)
    with pytest.raises(Forbidden, match="you may not read opportunity records"):
        boards.create(people["agent"], "Peek", widgets=[{"spec": BY_STAGE}])
    assert names(site, people["admin"]) == []


def test_a_database_from_before_built_dashboards_gets_the_table_on_sync(site: Site, people: dict[str, Actor]) -> None:
    with site.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE crm_dashboard")
    assert [(s.action, s.table) for s in site.plan().steps] == [("create_system_tables", "crm_dashboard")]
    site.sync(applied_by="test")
    board_id = UserDashboards(site).create(people["lead"], "After the upgrade", widgets=[{"spec": BY_REGION}])
    assert UserDashboards(site).get(people["lead"], board_id)["name"] == "After the upgrade"
