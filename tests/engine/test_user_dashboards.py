"""Dashboards built by users: who sees them (owner, everyone, roles; administrators), who changes
them (owner or administrator only), widgets copied from saved reports, charts each report allows,
reordering and removing, bad input refused with every bad part named and nothing stored, a change
based on a version someone else overtook refused (409) with nothing changed, and a database from
before dashboard versions gaining the column on sync."""

from __future__ import annotations

import pytest

from crm_platform.engine.records.actor import Actor
from crm_platform.engine.records.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    ValidationFailed,
)
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
    boards.update(people["lead"], for_sales, {"sharing": "private"}, version=1)  # no longer shared: the roles are dropped too
    assert names(site, people["rep"]) == ["Regions"]
    assert boards.get(people["lead"], for_sales)["roles"] == []


def test_only_the_owner_or_an_administrator_changes_or_deletes_a_dashboard(site: Site, people: dict[str, Actor]) -> None:
    boards = UserDashboards(site)
    board_id = boards.create(people["lead"], "Team", "everyone", widgets=[{"spec": BY_REGION}])
    before = boards.get(people["lead"], board_id)
    with pytest.raises(Forbidden, match="only the owner of dashboard 'Team' or an administrator"):
        boards.update(people["rep"], board_id, {"name": "Mine now"}, version=1)
    with pytest.raises(Forbidden):
        boards.delete(people["rep"], board_id, version=1)
    with pytest.raises(Forbidden):
        boards.remove_widget(people["rep"], board_id, 0, version=1)
    assert boards.get(people["lead"], board_id) == before
    assert boards.update(people["admin"], board_id, {"name": "Team (checked)"}, version=1)["name"] == "Team (checked)"
    boards.delete(people["lead"], board_id, version=2)
    assert names(site, people["lead"]) == []


def test_a_widget_from_a_saved_report_is_a_copy_that_outlives_the_report(site: Site, people: dict[str, Actor]) -> None:
    reports = SavedReports(site)
    report_id = reports.save(people["lead"], "Pipeline by stage", ReportSpec("opportunity", ("stage",), (Measure("count"),)))
    boards = UserDashboards(site)
    board_id = boards.create(people["lead"], "Pipeline")
    boards.add_widget(people["lead"], board_id, {"report_id": report_id, "chart": "funnel"}, version=1)
    reports.delete(people["lead"], report_id)
    widget = boards.get(people["lead"], board_id)["widgets"][0]
    assert (widget["title"], widget["chart"], widget["report_id"], widget["spec"]["group_by"]) == ("Pipeline by stage", "funnel", report_id, ["stage"])
    with pytest.raises(ValidationFailed) as missing:
        boards.add_widget(people["lead"], board_id, {"report_id": report_id}, version=2)
    assert [(d.field, d.message) for d in missing.value.details] == [("widgets[1].report_id", f"saved report {report_id} not found")]


def test_widgets_are_reordered_retitled_and_removed(site: Site, people: dict[str, Actor]) -> None:
    boards = UserDashboards(site)
    board_id = boards.create(people["lead"], "Order", widgets=[{"title": "A", "spec": BY_STAGE}, {"title": "B", "spec": BY_REGION},
                                                              {"title": "C", "spec": BY_REGION, "chart": "number"}])
    titles = lambda: [w["title"] for w in boards.get(people["lead"], board_id)["widgets"]]  # noqa: E731
    boards.move_widget(people["lead"], board_id, 2, -1, version=1)
    assert titles() == ["A", "C", "B"]
    boards.move_widget(people["lead"], board_id, 0, -1, version=2)  # the first stays first
    assert titles() == ["A", "C", "B"]
    boards.set_widget(people["lead"], board_id, 0, chart="table", title="Stages", version=3)
    boards.remove_widget(people["lead"], board_id, 1, version=4)
    assert [(w["title"], w["chart"]) for w in boards.get(people["lead"], board_id)["widgets"]] == [("Stages", "table"), ("B", "bar")]
    assert boards.get(people["lead"], board_id)["version"] == 5
    with pytest.raises(NotFound, match="has no widget 5"):
        boards.remove_widget(people["lead"], board_id, 4, version=5)


def test_each_report_offers_the_charts_it_can_be_drawn_as(site: Site, people: dict[str, Actor]) -> None:
    two_measures = {**BY_STAGE, "measures": [{"aggregate": "sum", "field": "weighted_amount"}, {"aggregate": "sum", "field": "amount"}]}
    assert charts_for(two_measures) == ["bar", "funnel", "target", "table", "number"]
    assert charts_for({**BY_STAGE, "group_by": ["stage", "owner_id"]}) == ["table", "number"]
    boards = UserDashboards(site)
    board_id = boards.create(people["lead"], "Targets", widgets=[{"spec": two_measures, "chart": "target"}])
    assert boards.get(people["lead"], board_id)["widgets"][0]["chart"] == "target"
    with pytest.raises(ValidationFailed) as refused:
        boards.add_widget(people["lead"], board_id, {"spec": BY_STAGE, "chart": "target"}, version=1)
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
    for limit in (10**30, 0, "all"):
        with pytest.raises(ValidationFailed) as too_many:
            boards.create(people["lead"], "Huge", widgets=[{"spec": {**BY_REGION, "limit": limit}}])
        assert [d.field for d in too_many.value.details] == ["widgets[0].spec.limit"]
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


def test_two_editors_of_one_dashboard_the_second_save_is_refused_and_changes_nothing(site: Site, people: dict[str, Actor]) -> None:
    boards = UserDashboards(site)
    board_id = boards.create(people["lead"], "Team", "everyone", widgets=[{"title": "A", "spec": BY_STAGE}, {"title": "B", "spec": BY_REGION}])
    seen_by_lead = boards.get(people["lead"], board_id)
    seen_by_admin = boards.get(people["admin"], board_id)
    assert seen_by_lead["version"] == seen_by_admin["version"] == 1
    first = boards.update(people["lead"], board_id, {"name": "Team pipeline", "widgets": list(reversed(seen_by_lead["widgets"]))}, version=1)
    assert first["version"] == 2
    with pytest.raises(Conflict) as refused:
        boards.update(people["admin"], board_id, {"name": "Admin's view"}, version=seen_by_admin["version"])
    assert refused.value.status == 409 and refused.value.code == "conflict"
    assert "dashboard 'Team pipeline' was changed by someone else since you opened it" in refused.value.message
    assert refused.value.details[0].as_dict() == {"field": "version", "message": "changed by someone else since version 1", "code": "conflict", "current": 2, "yours": 1}
    # every kind of change based on the old version is refused the same way: an index on the old order means nothing now
    stale_changes = [
        lambda: boards.add_widget(people["admin"], board_id, {"spec": BY_REGION}, version=1),
        lambda: boards.remove_widget(people["admin"], board_id, 0, version=1),
        lambda: boards.move_widget(people["admin"], board_id, 1, -1, version=1),
        lambda: boards.set_widget(people["admin"], board_id, 0, title="Renamed", version=1),
        lambda: boards.update(people["admin"], board_id, {"sharing": "private"}, version=1),
        lambda: boards.delete(people["admin"], board_id, version=1),
    ]
    for change in stale_changes:
        with pytest.raises(Conflict, match="Team pipeline"):
            change()
    assert boards.get(people["lead"], board_id) == first  # exactly the first editor's dashboard


def test_a_change_without_a_version_or_with_one_from_the_future_is_a_bad_request(site: Site, people: dict[str, Actor]) -> None:
    boards = UserDashboards(site)
    board_id = boards.create(people["lead"], "Plain", widgets=[{"spec": BY_REGION}])
    before = boards.get(people["lead"], board_id)
    with pytest.raises(BadRequest, match="'version' is required") as missing:
        boards.update(people["lead"], board_id, {"name": "No version"}, version=None)
    assert missing.value.status == 400 and missing.value.details[0].code == "required"
    with pytest.raises(BadRequest, match="'version' is required"):
        boards.delete(people["lead"], board_id, version="")
    with pytest.raises(BadRequest, match="version 7 is not a version of dashboard 'Plain': it is newer than its current version 1"):
        boards.remove_widget(people["lead"], board_id, 0, version=7)
    with pytest.raises(BadRequest, match="version 0 is not a version of dashboard 'Plain': versions start at 1"):
        boards.update(people["lead"], board_id, {"name": "Zero"}, version=0)
    assert boards.get(people["lead"], board_id) == before


def test_a_database_from_before_dashboard_versions_gains_the_column_on_sync(site: Site, people: dict[str, Actor]) -> None:
    boards = UserDashboards(site)
    board_id = boards.create(people["lead"], "Old board", widgets=[{"spec": BY_REGION}])
    with site.engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE crm_dashboard DROP COLUMN version")
    assert [(s.action, s.table, s.column) for s in site.plan().steps] == [("add_system_column", "crm_dashboard", "version")]
    site.sync(applied_by="test")
    assert site.plan().steps == []
    assert boards.get(people["lead"], board_id)["version"] == 1  # existing boards start at 1
    assert boards.update(people["lead"], board_id, {"name": "Old board, kept"}, version=1)["version"] == 2


def test_a_save_overtaken_while_it_was_being_checked_is_refused_by_the_guarded_write(site: Site, people: dict[str, Actor],
                                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    boards = UserDashboards(site)
    board_id = boards.create(people["lead"], "Race", widgets=[{"title": "Regions", "spec": BY_REGION}])
    checked = UserDashboards._checked

    def overtaken(self: UserDashboards, *args: object, **kwargs: object) -> dict[str, object]:
        values = checked(self, *args, **kwargs)  # type: ignore[arg-type]
        monkeypatch.setattr(UserDashboards, "_checked", checked)  # the other editor saves while this one was checked
        UserDashboards(site).update(people["admin"], board_id, {"name": "Race won by admin"}, version=1)
        return values

    monkeypatch.setattr(UserDashboards, "_checked", overtaken)
    with pytest.raises(Conflict, match="dashboard 'Race' was changed by someone else .* it is now at version 2"):
        boards.update(people["lead"], board_id, {"name": "Race won by lead"}, version=1)
    board = boards.get(people["lead"], board_id)
    assert (board["name"], board["version"]) == ("Race won by admin", 2)
