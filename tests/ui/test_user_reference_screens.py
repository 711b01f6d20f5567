"""User and org-unit reference fields on the screens and the API: the form's selects, names (never
ids) on the detail, list, kanban and in CSV / Excel exports, list filters and sort, and the API
taking a username or a unit name."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator

import openpyxl
import pytest
from starlette.testclient import TestClient

from crm_platform.engine.records.list_query import ListQuery
from crm_platform.engine.site import Site
from crm_platform.metadata.loader import load_registry
from crm_platform.ui.app import create_app
from tests.conftest import FIXTURE_PACKS
from tests.helpers import log_in, user_with_role


@pytest.fixture
def people(make_site: Callable[..., Site]) -> Site:
    return make_site(load_registry(["peoplekit"], [FIXTURE_PACKS]))


@pytest.fixture
def org(people: Site) -> dict[str, int]:
    """Group > Sales > East; alice (East), bob (Sales), carol (Sales, deactivated)."""
    group = people.permissions.create_unit("Group", "group")
    sales = people.permissions.create_unit("Sales", "department", group)
    east = people.permissions.create_unit("East", "team", sales)
    alice = user_with_role(people, "alice", "alice-password-1", display_name="Alice Wang", unit_id=east)
    bob = user_with_role(people, "bob", "bob-password-12", display_name="Bob Li", unit_id=sales)
    carol = user_with_role(people, "carol", "carol-password-1", display_name="Carol Zhou", unit_id=sales)
    with people.engine.begin() as conn:
        users = people.schema.system["crm_user"]
        conn.execute(users.update().where(users.c.id == carol).values(active=False))
    return {"group": group, "sales": sales, "east": east, "alice": alice, "bob": bob, "carol": carol}


@pytest.fixture
def browser(people: Site, org: dict[str, int]) -> Iterator[TestClient]:
    with TestClient(create_app(people)) as client:
        log_in(client, "alice", "alice-password-1")
        yield client


def _options(html: str, name: str) -> list[tuple[str, str, bool]]:
    """(value, text, selected) of the select called `name`."""
    select = re.search(rf'<select[^>]*name="{name}"[^>]*>(.*?)</select>', html, re.S)
    assert select, f"no select {name}"
    return [(v, t.strip(" \n"), "selected" in attrs) for v, attrs, t in re.findall(r'<option value="([^"]*)"([^>]*)>([^<]*)</option>', select.group(1))]


def _target(people: Site, org: dict[str, int], **values: object) -> int:
    alice = people.users.actor(org["alice"])
    return int(people.records.create(alice, "sales_target", {"name": "Q1 East", **values})["id"])


def test_the_new_form_offers_active_users_and_the_org_tree(browser: TestClient, org: dict[str, int]) -> None:
    page = browser.get("/app/sales_target/new")
    assert page.status_code == 200
    reps = _options(page.text, "rep")
    assert [(v, t) for v, t, _ in reps] == [("", "—"), (str(org["alice"]), "Alice Wang"), (str(org["bob"]), "Bob Li")]
    units = _options(page.text, "department")
    assert [t for _, t, _ in units] == ["—", "Group", "\u00a0\u00a0Sales", "\u00a0\u00a0\u00a0\u00a0East"]
    assert "/app/user/lookup" not in page.text


def test_a_record_made_in_the_form_shows_names_on_detail_and_edit(browser: TestClient, people: Site, org: dict[str, int]) -> None:
    response = browser.post("/app/sales_target/new", data={"csrf_token": browser.csrf, "name": "Q1 East", "rep": str(org["bob"]),
                                                           "department": str(org["east"]), "stage": "draft"}, follow_redirects=False)
    assert response.status_code == 303, response.text
    detail = browser.get(response.headers["location"])
    assert re.search(r"<dt>Sales rep</dt>\s*<dd>\s*Bob Li\s*</dd>", detail.text)
    assert re.search(r"<dt>Department</dt>\s*<dd>\s*East\s*</dd>", detail.text)
    assert "/app/user/" not in detail.text and "/app/org_unit/" not in detail.text
    record_id = response.headers["location"].rsplit("/", 1)[1]
    edit = browser.get(f"/app/sales_target/{record_id}/edit")
    assert [v for v, _, selected in _options(edit.text, "rep") if selected] == [str(org["bob"])]


def test_a_deactivated_rep_stays_selected_and_marked_on_edit(browser: TestClient, people: Site, org: dict[str, int]) -> None:
    record_id = _target(people, org, rep=org["carol"])
    edit = browser.get(f"/app/sales_target/{record_id}/edit")
    assert (str(org["carol"]), "Carol Zhou (inactive)", True) in _options(edit.text, "rep")


def test_an_unknown_user_posted_in_the_form_is_an_inline_error(browser: TestClient, people: Site, org: dict[str, int]) -> None:
    response = browser.post("/app/sales_target/new", data={"csrf_token": browser.csrf, "name": "Bad", "rep": "99999"}, headers={"HX-Request": "true"})
    assert response.status_code == 422
    assert "user 99999 does not exist" in response.text
    assert people.records.list(people.users.actor(org["alice"]), "sales_target", ListQuery()).total == 0


def test_list_kanban_and_exports_show_names(browser: TestClient, people: Site, org: dict[str, int]) -> None:
    _target(people, org, rep=org["bob"], department=org["sales"])
    listing = browser.get("/app/sales_target")
    row = re.search(r"<tbody>(.*?)</tbody>", listing.text, re.S).group(1)
    assert "Bob Li" in row and "Sales" in row and f">{org['bob']}<" not in row
    kanban = browser.get("/app/sales_target/kanban?field=stage")
    assert "Bob Li" in kanban.text
    exported = list(csv.reader(io.StringIO(browser.get("/app/sales_target/export.csv").text.lstrip("\ufeff"))))
    assert exported[1][:3] == ["Q1 East", "Bob Li", "Sales"]
    sheet = openpyxl.load_workbook(io.BytesIO(browser.get("/app/sales_target/export.xlsx").content)).active
    assert list(sheet.iter_rows(values_only=True))[1][:3] == ("Q1 East", "Bob Li", "Sales")


def test_list_filter_is_a_select_and_sort_goes_by_name(browser: TestClient, people: Site, org: dict[str, int]) -> None:
    _target(people, org, name="by bob", rep=org["bob"])
    _target(people, org, name="by alice", rep=org["alice"])
    _target(people, org, name="by carol", rep=org["carol"])
    filtered = browser.get(f"/app/sales_target?rep={org['bob']}")
    assert "by bob" in filtered.text and "by alice" not in filtered.text
    assert [v for v, _, selected in _options(filtered.text, "rep") if selected] == [str(org["bob"])]
    ordered = browser.get("/app/sales_target?sort=rep").text
    assert ordered.index("by alice") < ordered.index("by bob") < ordered.index("by carol")
    backwards = browser.get("/app/sales_target?sort=-rep").text
    assert backwards.index("by carol") < backwards.index("by bob") < backwards.index("by alice")


def test_the_api_takes_ids_usernames_and_unit_paths(people: Site, org: dict[str, int]) -> None:
    token, _ = people.users.create_token(org["alice"], "tests")
    with TestClient(create_app(people)) as api:
        api.headers["Authorization"] = f"Bearer {token}"
        made = api.post("/api/v1/records/sales_target", json={"name": "API", "rep": "bob", "department": "Group / Sales"})
        assert made.status_code == 201, made.text
        body = made.json()
        assert body["rep"] == org["bob"] and body["department"] == org["sales"]
        assert body["_titles"]["rep"] == "Bob Li"
        changed = api.patch(f"/api/v1/records/sales_target/{body['id']}", json={"version": 1, "rep": org["alice"]})
        assert changed.status_code == 200 and changed.json()["rep"] == org["alice"]
        refused = api.post("/api/v1/records/sales_target", json={"name": "API 2", "rep": "nobody"})
        assert refused.status_code == 422
        assert refused.json()["error"]["details"][0]["field"] == "rep"
        assert "no user is called 'nobody'" in refused.text
        assert api.post("/api/v1/records/sales_target", json={"name": "API 3", "department": 424242}).status_code == 422
        assert api.get("/api/v1/records/sales_target").json()["total"] == 1


def test_chinese_screens_label_an_inactive_user(browser: TestClient, people: Site, org: dict[str, int]) -> None:
    record_id = _target(people, org, rep=org["carol"])
    browser.post("/me/language", data={"csrf_token": browser.csrf, "language": "zh-CN", "next": "/"}, follow_redirects=False)
    edit = browser.get(f"/app/sales_target/{record_id}/edit")
    assert (str(org["carol"]), "Carol Zhou (已停用)", True) in _options(edit.text, "rep")
    assert "销售代表" in edit.text


def test_the_timeline_names_the_users_and_units_a_change_moved_between(browser: TestClient, people: Site, org: dict[str, int]) -> None:
    record_id = _target(people, org, rep=org["bob"], department=org["east"])
    people.records.update(people.users.actor(org["alice"]), "sales_target", record_id, {"version": 1, "rep": org["alice"], "department": org["sales"]})
    detail = browser.get(f"/app/sales_target/{record_id}").text
    assert "Sales rep: Bob Li → Alice Wang" in detail
    assert "Department: East → Sales" in detail


# -- the designer's field editor ----------------------------------------------------------------
@pytest.fixture
def designer(make_site: Callable[..., Site], monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Site, TestClient]]:
    monkeypatch.setenv("CRM_PACKS_PATH", str(FIXTURE_PACKS))
    site = make_site(["testkit"], search=[FIXTURE_PACKS])
    site.users.create_user("boss", "boss-password", "Boss", is_admin=True)
    with TestClient(create_app(site)) as client:
        log_in(client, "boss", "boss-password")
        yield site, client


def test_the_field_editor_offers_user_and_org_unit_as_targets(designer: tuple[Site, TestClient]) -> None:
    from tests.ui.test_design_entities import add_field

    site, client = designer
    page = client.get("/admin/design/entities/company/new-field?type=reference")
    targets = _options(page.text, "entity")
    assert ("user", "User (user)", False) in targets and ("org_unit", "Org unit (org_unit)", False) in targets
    files = add_field(client, "company", "reference", name="account_manager", label_en="Account manager", label_zh="客户经理", entity="user", on_delete="set_null")
    assert "entity: user" in "".join(files.values())
    with TestClient(create_app(site)) as fresh:
        log_in(fresh, "boss", "boss-password")
        form = fresh.get("/app/company/new").text
    assert "Account manager" in form and "Boss" in [t for _, t, _ in _options(form, "account_manager")]


def test_the_field_editor_refuses_cascade_from_a_user(designer: tuple[Site, TestClient]) -> None:
    from crm_platform.engine.site_layer import SiteLayer
    from tests.ui.test_design_entities import post

    site, client = designer
    response = post(client, "/admin/design/entities/company/new-field", {"type": "reference", "name": "manager", "label_en": "Manager",
                                                                          "label_zh": "经理", "entity": "user", "on_delete": "cascade", "on_form": "on"})
    assert response.status_code == 422
    assert "cannot cascade" in response.text
    assert SiteLayer(site).versions() == []
