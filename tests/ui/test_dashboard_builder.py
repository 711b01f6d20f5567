"""Dashboards built in the browser and over the API: create, add widgets from a saved report or from
the report being viewed, pick charts, reorder, rename, share and delete; each viewer sees their
own part and only the widgets they may read; clear 403/404/422 answers that change nothing; a
change based on a dashboard someone else changed since is a 409 that names it and changes nothing."""

from __future__ import annotations

import html
import re

import pytest
from starlette.testclient import TestClient

from crm_platform.engine.records.actor import Actor
from crm_platform.engine.site import Site
from crm_platform.engine.user_dashboards import UserDashboards
from crm_platform.ui.app import create_app
from tests.helpers import log_in
from tests.packs.test_crm_standard_flows import staff

SYSTEM = Actor.system()
BY_STAGE = {"entity": "opportunity", "group_by": ["stage"], "measures": [{"aggregate": "sum", "field": "amount"}]}
BY_REGION = {"entity": "account", "group_by": ["region"]}


@pytest.fixture
def deals(site: Site, admin: Actor) -> dict[str, Actor]:
    people = staff(site)
    account = site.records.create(SYSTEM, "account", {"name": "Harbour Hotel", "region": "South China"})
    for who, name, amount, moves in (("rep", "Lobby", "100000", ["to_qualification", "to_proposal"]), ("rep", "Rooms", "250000", ["to_qualification"]),
                                     ("rep", "Spa", "40000", []), ("lead", "Tower", "900000", ["to_negotiation"])):
        deal = site.records.create(people[who], "opportunity", {"name": name, "account": account["id"], "amount": amount, "expected_close": "2027-03-01"})
        for move in moves:
            site.workflows.fire(people[who], "opportunity", deal["id"], move)
    return {**people, "admin": admin}


def shown_version(client: TestClient, board_id: int) -> str:
    """The version the edit page carries in its forms (every form carries the same one)."""
    versions = set(re.findall(r'name="version" value="(\d+)"', client.get(f"/dashboards/{board_id}/edit").text))
    assert len(versions) == 1, versions
    return versions.pop()


def widget_titles(page: str) -> list[str]:
    return [html.unescape(t) for t in re.findall(r'<section class="card widget">\s*<h2>([^<]*)</h2>', page)]


def test_a_manager_builds_a_dashboard_in_the_browser_and_reps_see_their_own_part(site: Site, deals: dict[str, Actor]) -> None:
    with TestClient(create_app(site)) as client:
        log_in(client, "lead", "lead-password")
        created = client.post("/dashboards/new", data={"csrf_token": client.csrf, "name": "Sales floor", "sharing": "roles", "roles": ["sales_rep"]},
                              follow_redirects=False)
        assert created.status_code == 303
        board_id = int(re.fullmatch(r"/dashboards/(\d+)/edit", created.headers["location"]).group(1))
        # from the report being viewed: "Add to dashboard"
        report = client.get("/reports", params={"entity": "opportunity", "group": "stage", "aggregate": "sum", "field": "amount", "chart": "bar", "run": "1"})
        add_link = html.unescape(re.search(r'href="(/dashboards/add-widget\?[^"]+)"', report.text).group(1))
        chooser = client.get(add_link)
        assert chooser.status_code == 200 and f'<option value="{board_id}">Sales floor</option>' in chooser.text
        assert f'name="version_{board_id}" value="1"' in chooser.text
        added = client.post("/dashboards/add-widget", data={"csrf_token": client.csrf, "dashboard": str(board_id), f"version_{board_id}": "1", "entity": "opportunity", "group": "stage",
                                                     "aggregate": "sum", "field": "amount", "chart": "funnel", "title": "Pipeline"}, follow_redirects=False)
        assert added.status_code == 303 and added.headers["location"] == f"/dashboards/{board_id}"
        # from a saved report, on the edit page
        client.post("/reports/save", data={"csrf_token": client.csrf, "name": "Deals by owner", "entity": "opportunity", "group": "owner_id", "aggregate": "count"})
        edit = client.get(f"/dashboards/{board_id}/edit")
        report_id = re.search(r'<option value="(\d+)">Deals by owner</option>', edit.text).group(1)
        client.post(f"/dashboards/{board_id}/widgets", data={"csrf_token": client.csrf, "version": shown_version(client, board_id), "report": report_id, "chart": "table"})
        client.post(f"/dashboards/{board_id}/widgets/1", data={"csrf_token": client.csrf, "version": shown_version(client, board_id), "action": "up"})
        page = client.get(f"/dashboards/{board_id}")
        assert page.status_code == 200 and widget_titles(page.text) == ["Deals by owner", "Pipeline"]
        assert 'class="chart funnel"' in page.text and "900,000" in page.text
        assert f'href="/dashboards/{board_id}/edit"' in page.text
        listing = client.get("/dashboards").text
        assert f'href="/dashboards/{board_id}"' in listing and 'href="/dashboards/sales"' in listing  # next to the pack dashboards
    with TestClient(create_app(site)) as client:
        log_in(client, "rep", "rep-password")
        assert f'href="/dashboards/{board_id}"' in client.get("/dashboards").text
        page = client.get(f"/dashboards/{board_id}")
        assert page.status_code == 200 and "250,000" in page.text and "900,000" not in page.text  # the rep's own deals only
        assert f'href="/dashboards/{board_id}/edit"' not in page.text
        assert client.get(f"/dashboards/{board_id}/edit").status_code == 403
        refused = client.post(f"/dashboards/{board_id}/delete", data={"csrf_token": client.csrf, "version": "3"})
        assert refused.status_code == 403 and "only the owner of dashboard 'Sales floor'" in html.unescape(refused.text)
    with TestClient(create_app(site)) as client:
        log_in(client, "agent", "agent-password")  # holds no sales role
        assert client.get(f"/dashboards/{board_id}").status_code == 404
    assert len(UserDashboards(site).get(deals["lead"], board_id)["widgets"]) == 2


def test_a_widget_over_records_the_viewer_may_not_read_is_left_out(site: Site, deals: dict[str, Actor]) -> None:
    board_id = UserDashboards(site).create(deals["lead"], "Everyone's", "everyone", widgets=[{"title": "Pipeline", "spec": BY_STAGE},
                                                                                           {"title": "Accounts by region", "spec": BY_REGION}])
    with TestClient(create_app(site)) as client:
        log_in(client, "agent", "agent-password")
        page = client.get(f"/dashboards/{board_id}")
        assert page.status_code == 200 and widget_titles(page.text) == ["Accounts by region"]
        assert "South China" in page.text


def test_bad_changes_in_the_browser_show_the_error_and_change_nothing(site: Site, deals: dict[str, Actor]) -> None:
    boards = UserDashboards(site)
    board_id = boards.create(deals["lead"], "Mine", widgets=[{"title": "Pipeline", "spec": BY_STAGE}])
    before = boards.get(deals["lead"], board_id)
    with TestClient(create_app(site)) as client:
        log_in(client, "lead", "lead-password")
        unnamed = client.post(f"/dashboards/{board_id}/settings", data={"csrf_token": client.csrf, "version": "1", "name": " ", "sharing": "everyone"})
        assert unnamed.status_code == 422 and "a dashboard needs a name of 1-200 characters" in unnamed.text
        target = client.post(f"/dashboards/{board_id}/widgets/0", data={"csrf_token": client.csrf, "version": "1", "action": "set", "chart": "target", "title": "Pipeline"})
        assert target.status_code == 422 and "a target chart needs one grouping and two measures" in html.unescape(target.text)
        assert client.post(f"/dashboards/{board_id}/widgets/7", data={"csrf_token": client.csrf, "version": "1", "action": "remove"}).status_code == 404
        unversioned = client.post(f"/dashboards/{board_id}/widgets/0", data={"csrf_token": client.csrf, "action": "remove"})
        assert unversioned.status_code == 400 and "&#39;version&#39; is required" in unversioned.text
        nameless = client.post("/dashboards/new", data={"csrf_token": client.csrf, "name": "", "sharing": "roles"})
        assert nameless.status_code == 422 and "name at least one role" in nameless.text
        forged = client.post(f"/dashboards/{board_id}/delete", data={}, headers={"X-CSRF-Token": ""})
        assert forged.status_code == 403
    assert boards.get(deals["lead"], board_id) == before
    assert [b["name"] for b in boards.visible(deals["admin"])] == ["Mine"]


def test_an_administrator_renames_and_deletes_anyones_dashboard(site: Site, deals: dict[str, Actor]) -> None:
    board_id = UserDashboards(site).create(deals["rep"], "Private notes", widgets=[{"spec": BY_REGION}])
    with TestClient(create_app(site)) as client:
        log_in(client, "admin", "admin-password")
        assert client.get(f"/dashboards/{board_id}/edit").status_code == 200
        renamed = client.post(f"/dashboards/{board_id}/settings", data={"csrf_token": client.csrf, "version": shown_version(client, board_id), "name": "Rep notes", "sharing": "private"},
                              follow_redirects=False)
        assert renamed.status_code == 303
        assert UserDashboards(site).get(deals["rep"], board_id)["name"] == "Rep notes"
        assert client.post(f"/dashboards/{board_id}/delete", data={"csrf_token": client.csrf, "version": shown_version(client, board_id)}, follow_redirects=False).status_code == 303
    assert UserDashboards(site).visible(deals["rep"]) == []


def test_the_builder_speaks_chinese(site: Site, deals: dict[str, Actor]) -> None:
    board_id = UserDashboards(site).create(deals["lead"], "看板", widgets=[{"spec": BY_STAGE}])
    with TestClient(create_app(site)) as client:
        log_in(client, "lead", "lead-password")
        client.post("/me/language", data={"csrf_token": client.csrf, "language": "zh-CN", "next": "/dashboards"})
        assert "新建仪表盘" in client.get("/dashboards").text
        edit = client.get(f"/dashboards/{board_id}/edit").text
        assert "添加组件" in edit and "漏斗图" in edit and "仅自己" in edit


def test_the_dashboards_api_lists_creates_changes_and_deletes(site: Site, deals: dict[str, Actor]) -> None:
    with TestClient(create_app(site)) as client:
        log_in(client, "lead", "lead-password")
        created = client.post("/api/v1/dashboards", json={"name": "Forecast", "sharing": "roles", "roles": ["sales_rep"],
                                                          "widgets": [{"title": "Pipeline", "spec": BY_STAGE, "chart": "funnel"},
                                                                      {"title": "Regions", "spec": BY_REGION}]})
        assert created.status_code == 201, created.text
        board = created.json()
        assert created.headers["location"] == f"/api/v1/dashboards/{board['id']}"
        assert [(w["title"], w["chart"]) for w in board["widgets"]] == [("Pipeline", "funnel"), ("Regions", "bar")]
        listed = client.get("/api/v1/dashboards").json()
        assert [b["name"] for b in listed["dashboards"]] == ["Forecast"] and "sales" in {d["name"] for d in listed["pack_dashboards"]}
        read = client.get(f"/api/v1/dashboards/{board['id']}").json()
        assert read["results"][0]["result"]["totals"] == {"sum_amount": "1290000.00"}
        assert board["version"] == 1
        reordered = client.patch(f"/api/v1/dashboards/{board['id']}", json={"version": 1, "name": "Forecast 2027", "widgets": list(reversed(board["widgets"]))})
        assert reordered.status_code == 200 and [w["title"] for w in reordered.json()["widgets"]] == ["Regions", "Pipeline"]
        assert reordered.json()["version"] == 2
        bad = client.patch(f"/api/v1/dashboards/{board['id']}", json={"version": 2, "colour": "red", "widgets": [{"spec": BY_REGION, "chart": "pie"}]})
        assert bad.status_code == 422 and [d["field"] for d in bad.json()["error"]["details"]] == ["colour"]
        bad = client.patch(f"/api/v1/dashboards/{board['id']}", json={"version": 2, "widgets": [{"spec": BY_REGION, "chart": "pie"}]})
        assert bad.status_code == 422
        assert bad.json()["error"]["details"] == [{"field": "widgets[0].chart", "message": "unknown chart 'pie'; expected one of bar, funnel, table, number, target",
                                                   "code": "choice"}]
        del client.headers["X-CSRF-Token"]
        forged = client.delete(f"/api/v1/dashboards/{board['id']}")
        assert forged.status_code == 403 and forged.json()["error"]["code"] == "csrf_failed"
        private = client.post("/api/v1/dashboards", json={"name": "Private"}, headers={"X-CSRF-Token": client.csrf}).json()
    with TestClient(create_app(site)) as client:
        log_in(client, "rep", "rep-password")
        shared = client.get(f"/api/v1/dashboards/{board['id']}").json()
        assert shared["name"] == "Forecast 2027" and not shared["can_edit"]
        assert shared["results"][1]["result"]["totals"] == {"sum_amount": "390000.00"}  # the rep's own part
        denied = client.patch(f"/api/v1/dashboards/{board['id']}", json={"version": 2, "name": "Mine"})
        assert denied.status_code == 403 and "only the owner of dashboard 'Forecast 2027'" in denied.json()["error"]["message"]
        hidden = client.delete(f"/api/v1/dashboards/{private['id']}")
        assert hidden.status_code == 404 and hidden.json()["error"]["message"] == f"dashboard {private['id']} not found"
    with TestClient(create_app(site)) as client:
        log_in(client, "agent", "agent-password")
        assert client.post("/api/v1/dashboards", json={"name": "Peek", "widgets": [{"spec": BY_STAGE}]}).status_code == 403
    with TestClient(create_app(site)) as client:
        log_in(client, "lead", "lead-password")
        assert client.delete(f"/api/v1/dashboards/{board['id']}").status_code == 204
        assert [b["name"] for b in client.get("/api/v1/dashboards").json()["dashboards"]] == ["Private"]


def test_two_editors_in_the_browser_the_second_save_is_refused_and_offered_a_reload(site: Site, deals: dict[str, Actor]) -> None:
    boards = UserDashboards(site)
    board_id = boards.create(deals["lead"], "Team board", "everyone", widgets=[{"title": "Pipeline", "spec": BY_STAGE}, {"title": "Regions", "spec": BY_REGION}])
    with TestClient(create_app(site)) as lead, TestClient(create_app(site)) as admin:
        log_in(lead, "lead", "lead-password")
        log_in(admin, "admin", "admin-password")
        lead_saw, admin_saw = shown_version(lead, board_id), shown_version(admin, board_id)  # both open the edit page
        first = lead.post(f"/dashboards/{board_id}/widgets/1", data={"csrf_token": lead.csrf, "version": lead_saw, "action": "up"}, follow_redirects=False)
        assert first.status_code == 303
        after_first = boards.get(deals["lead"], board_id)
        assert [w["title"] for w in after_first["widgets"]] == ["Regions", "Pipeline"]
        second = admin.post(f"/dashboards/{board_id}/settings", data={"csrf_token": admin.csrf, "version": admin_saw, "name": "Admin's board", "sharing": "private"})
        assert second.status_code == 409
        text = html.unescape(second.text)
        assert "Someone else changed the dashboard “Team board” since you opened it: your change was not saved." in text
        assert f'href="/dashboards/{board_id}/edit">Reload the dashboard</a>' in text
        assert 'name="version" value="2"' in second.text  # the page shows the dashboard as it is now
        # a stale removal would hit another widget now: refused too; so is a stale delete
        removed = admin.post(f"/dashboards/{board_id}/widgets/0", data={"csrf_token": admin.csrf, "version": admin_saw, "action": "remove"})
        assert removed.status_code == 409 and "Team board" in html.unescape(removed.text)
        deleted = admin.post(f"/dashboards/{board_id}/delete", data={"csrf_token": admin.csrf, "version": admin_saw})
        assert deleted.status_code == 409
        admin.post("/me/language", data={"csrf_token": admin.csrf, "language": "zh-CN", "next": "/dashboards"})
        chinese = admin.post(f"/dashboards/{board_id}/widgets", data={"csrf_token": admin.csrf, "version": admin_saw, "spec": "", "entity": "account", "group": "region"})
        assert chinese.status_code == 409 and "您打开仪表盘“Team board”后，其他人修改了它：您的修改未保存。" in html.unescape(chinese.text)
        assert "重新加载仪表盘" in chinese.text
    assert boards.get(deals["lead"], board_id) == after_first  # exactly the first editor's dashboard


def test_adding_a_report_to_a_dashboard_changed_since_the_chooser_opened_is_refused(site: Site, deals: dict[str, Actor]) -> None:
    boards = UserDashboards(site)
    board_id = boards.create(deals["lead"], "Mine", widgets=[{"title": "Regions", "spec": BY_REGION}])
    with TestClient(create_app(site)) as client:
        log_in(client, "lead", "lead-password")
        chooser = client.get("/dashboards/add-widget", params={"entity": "opportunity", "group": "stage"})
        saw = re.search(rf'name="version_{board_id}" value="(\d+)"', chooser.text).group(1)
        boards.update(deals["lead"], board_id, {"name": "Mine (renamed)"}, version=1)  # meanwhile, in another tab
        before = boards.get(deals["lead"], board_id)
        refused = client.post("/dashboards/add-widget", data={"csrf_token": client.csrf, "dashboard": str(board_id), f"version_{board_id}": saw,
                                                              "entity": "opportunity", "group": "stage"})
        assert refused.status_code == 409
        assert "Someone else changed the dashboard “Mine (renamed)” since you opened it" in html.unescape(refused.text)
        assert f'name="version_{board_id}" value="2"' in refused.text
    assert boards.get(deals["lead"], board_id) == before


def test_two_editors_over_the_api_the_stale_patch_is_a_409_and_changes_nothing(site: Site, deals: dict[str, Actor]) -> None:
    board_id = UserDashboards(site).create(deals["lead"], "Shared", "everyone", widgets=[{"title": "Regions", "spec": BY_REGION}])
    with TestClient(create_app(site)) as lead, TestClient(create_app(site)) as admin:
        log_in(lead, "lead", "lead-password")
        log_in(admin, "admin", "admin-password")
        lead_saw, admin_saw = lead.get(f"/api/v1/dashboards/{board_id}").json(), admin.get(f"/api/v1/dashboards/{board_id}").json()
        assert lead_saw["version"] == admin_saw["version"] == 1
        first = lead.patch(f"/api/v1/dashboards/{board_id}", json={"version": lead_saw["version"], "name": "Shared regions"})
        assert first.status_code == 200 and first.json()["version"] == 2
        stale = admin.patch(f"/api/v1/dashboards/{board_id}", json={"version": admin_saw["version"], "sharing": "private"})
        assert stale.status_code == 409
        error = stale.json()["error"]
        assert error["code"] == "conflict" and error["status"] == 409
        assert error["message"].startswith("dashboard 'Shared regions' was changed by someone else since you opened it")
        assert error["details"] == [{"field": "version", "message": "changed by someone else since version 1", "code": "conflict", "current": 2, "yours": 1}]
        unversioned = admin.patch(f"/api/v1/dashboards/{board_id}", json={"sharing": "private"})  # as for records: the version is required
        assert unversioned.status_code == 400 and unversioned.json()["error"]["details"][0] == {"field": "version", "message": "required: the version your change is based on", "code": "required"}
        assert admin.delete(f"/api/v1/dashboards/{board_id}", params={"version": "1"}).status_code == 409
        assert admin.delete(f"/api/v1/dashboards/{board_id}", params={"version": "two"}).status_code == 400
        now = lead.get(f"/api/v1/dashboards/{board_id}").json()
        assert {k: now[k] for k in ("name", "sharing", "version")} == {"name": "Shared regions", "sharing": "everyone", "version": 2}
        assert admin.delete(f"/api/v1/dashboards/{board_id}", params={"version": "2"}).status_code == 204
    assert UserDashboards(site).visible(deals["admin"]) == []
