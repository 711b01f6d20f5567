"""The administration screens and API write roles, the matrix and the org tree as site-layer
versions: the screens preview each change (its diff, or the users it would strand, 422) and
nothing changes until Apply; the designer lists the versions with their diff, a rollback that
would strand a user is refused naming them, and the export zip carries roles.yaml and org.yaml."""

from __future__ import annotations

import html
import io
import re
import zipfile
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from crm_platform.engine.permissions.layered_admin import LayeredAccessAdmin
from crm_platform.engine.site import Site
from crm_platform.engine.site_layer import SiteLayer
from crm_platform.ui.app import create_app
from tests.helpers import log_in, user_with_role
from tests.ui.admin_preview import apply, apply_form, diff_of, preview, preview_and_apply


@pytest.fixture
def admin_client(kit: Site) -> Iterator[TestClient]:
    kit.users.create_user("root", "root-password", is_admin=True)
    with TestClient(create_app(kit)) as client:
        log_in(client, "root", "root-password")
        yield client


def _unit_id(kit: Site, label: str) -> int:
    return next(u.id for u in LayeredAccessAdmin(kit).units() if u.label_en == label)


def test_the_org_tree_screen_adds_renames_moves_and_archives_as_versions(admin_client: TestClient, kit: Site) -> None:
    c = admin_client
    preview_and_apply(c, "/admin/units", {"name": "Group", "name_zh": "集团", "kind": "group"})
    group = _unit_id(kit, "Group")
    preview_and_apply(c, "/admin/units", {"name": "Sales", "name_zh": "销售部", "kind": "department"})
    sales = _unit_id(kit, "Sales")
    preview_and_apply(c, f"/admin/units/{sales}", {"action": "save", "name": "Sales South", "name_zh": "华南销售部", "kind": "department", "parent_id": str(group)})
    page = c.get("/admin/units").text
    assert "Sales South" in page and "/admin/design" in page
    assert 'value="华南销售部"' in page  # both languages of the name are kept
    user_id = kit.users.create_user("sara", "sara-password", unit_id=sales)
    refused = c.post(f"/admin/units/{sales}", data={"csrf_token": c.csrf, "action": "archive"})
    assert refused.status_code == 422 and "sara" in refused.text and "move them to another unit first" in refused.text
    kit.permissions.set_unit(user_id, group)
    preview_and_apply(c, f"/admin/units/{sales}", {"action": "archive"})
    assert "Archived" in c.get("/admin/units").text
    new_user_units = re.search(r'id="nu-unit".*?</select>', c.get("/admin/users").text, re.S).group(0)  # type: ignore[union-attr]
    assert f'<option value="{group}">' in new_user_units and f'<option value="{sales}">' not in new_user_units  # nothing new goes into an archived unit
    design = c.get("/admin/design").text
    for note in ("new unit Group", "new unit Sales", "unit Sales South: moved", "unit Sales South: archived"):
        assert note in design
    latest = SiteLayer(kit).versions()[0]
    version_page = c.get(f"/admin/design/versions/{latest.id}").text
    assert "archived: true" in version_page and "org.yaml" in version_page


def test_roles_screen_versions_label_includes_and_matrix_and_a_stranding_rollback_is_refused(admin_client: TestClient, kit: Site) -> None:
    c = admin_client
    preview_and_apply(c, "/admin/roles", {"name": "rep", "label_en": "Rep", "label_zh": "代表"})
    first = SiteLayer(kit).versions()[0]
    preview_and_apply(c, "/admin/roles", {"name": "lead", "label_en": "Lead", "label_zh": "组长"})
    preview_and_apply(c, "/admin/roles/lead", {"label_en": "Team lead", "label_zh": "组长", "includes": "rep"})
    page = c.get("/admin/roles?role=lead").text
    assert "Team lead" in page and re.search(r'name="includes" value="rep" checked', page)
    preview_and_apply(c, "/admin/roles/lead/matrix", {"cell:company:read": "unit"})
    assert any(g == {"entity": "company", "action": "read", "scope": "unit", "source": "pack:site"}
               for g in next(r for r in kit.permissions.list_roles() if r["name"] == "lead")["grants"])
    cycle = c.post("/admin/roles/rep", data={"csrf_token": c.csrf, "label_en": "Rep", "includes": "lead"})
    assert cycle.status_code == 422 and "cycle" in cycle.text and 'name="files"' in cycle.text  # the loader's refusal, on the preview
    user_id = kit.users.create_user("leo", "leo-password")
    kit.permissions.assign_role(user_id, "lead")
    back = c.post(f"/admin/design/versions/{first.id}/rollback", data={"csrf_token": c.csrf})
    assert back.status_code == 422 and "role &#39;lead&#39;" in back.text and "leo" in back.text
    assert any(r["name"] == "lead" for r in kit.permissions.list_roles())
    missing = c.post("/admin/roles/nobody/matrix", data={"csrf_token": c.csrf, "cell:company:read": "own"})
    assert missing.status_code == 404


def test_a_role_change_is_previewed_with_its_diff_and_nothing_changes_until_apply(admin_client: TestClient, kit: Site) -> None:
    c = admin_client
    before = len(SiteLayer(kit).versions())
    shown = preview(c, "/admin/roles", {"name": "auditor", "label_en": "Auditor", "label_zh": "审计员"})
    diff = diff_of(shown.text)
    assert "b/roles.yaml" in diff and re.search(r"^\+.*name: auditor", diff, re.M) and re.search(r"^\+.*Auditor.*审计员", diff, re.M)
    back = apply_form(shown.text)["back"]
    assert apply_form(shown.text)["note"] == "new role auditor" and back.startswith("/admin/roles?")
    assert f'href="{html.escape(back)}" class="button"' in shown.text  # Back returns to the roles screen...
    again = c.get(back).text  # ...with the new-role form filled in as the admin typed it
    assert 'name="name" value="auditor"' in again and 'value="Auditor"' in again and 'value="审计员"' in again
    assert len(SiteLayer(kit).versions()) == before and not any(r["name"] == "auditor" for r in kit.permissions.list_roles())
    assert "Auditor" not in c.get("/admin/roles").text
    home = apply(c, shown)
    assert "new role auditor" in home.text and len(SiteLayer(kit).versions()) == before + 1
    assert any(r["name"] == "auditor" and r["label_zh"] == "审计员" for r in kit.permissions.list_roles())
    matrix = preview(c, "/admin/roles/auditor/matrix", {"cell:company:read": "all"})
    assert re.search(r"^\+.*entity: company", diff_of(matrix.text), re.M) and apply_form(matrix.text)["back"] == "/admin/roles?role=auditor"
    assert next(r for r in kit.permissions.list_roles() if r["name"] == "auditor")["grants"] == []  # not yet
    unchanged = c.post("/admin/roles/auditor", data={"csrf_token": c.csrf, "label_en": "Auditor", "label_zh": "审计员"}, follow_redirects=False)
    assert unchanged.status_code == 303 and unchanged.headers["location"] == "/admin/roles?role=auditor"  # nothing to preview
    ghost = c.post("/admin/roles", data={"csrf_token": c.csrf, "name": "senior", "label_en": "Senior", "includes": ["auditor", "ghost"]})
    assert ghost.status_code == 422 and "unknown role(s): ghost" in ghost.text and "<h1>Review the change</h1>" not in ghost.text
    assert 'name="name" value="senior"' in ghost.text and 'value="Senior"' in ghost.text  # what was typed stays
    assert re.search(r'value="auditor"\s+checked', ghost.text)
    preview_and_apply(c, "/admin/roles", {"name": "senior", "label_en": "Senior", "label_zh": "高级审计员", "includes": ["auditor"]})
    assert next(r for r in kit.permissions.list_roles() if r["name"] == "senior")["includes"] == ["auditor"]
    blank = c.post("/admin/units", data={"csrf_token": c.csrf, "name": " ", "kind": "team"})
    assert blank.status_code == 422 and "<h1>Review the change</h1>" not in blank.text and "New unit" in blank.text  # input errors stay on the screen
    assert re.search(r'<option value="team"\s+selected', blank.text)  # with what was chosen
    assert len(SiteLayer(kit).versions()) == before + 2


def test_a_unit_change_that_would_strand_users_is_a_422_preview_naming_them_and_no_version(admin_client: TestClient, kit: Site) -> None:
    c = admin_client
    preview_and_apply(c, "/admin/units", {"name": "Plant", "name_zh": "工厂", "kind": "department"})
    plant = _unit_id(kit, "Plant")
    for name in ("ada", "bo"):
        kit.users.create_user(name, f"{name}-password-1", unit_id=plant)
    versions = len(SiteLayer(kit).versions())
    refused = c.post(f"/admin/units/{plant}", data={"csrf_token": c.csrf, "action": "archive"})
    assert refused.status_code == 422 and "Problems to fix first" in refused.text
    assert "the users ada, bo still sit in it" in refused.text and "move them to another unit first" in refused.text
    assert re.search(r'<button type="submit" class="primary" disabled>', refused.text)  # no Apply
    assert re.search(r"^\+.*archived: true", diff_of(refused.text), re.M)  # the diff that was refused is shown
    pressed = c.post("/admin/design/apply", data={"csrf_token": c.csrf, **apply_form(refused.text)})  # Apply forced anyway
    assert pressed.status_code == 422 and "ada" in pressed.text
    assert len(SiteLayer(kit).versions()) == versions
    assert not next(u for u in LayeredAccessAdmin(kit).units() if u.id == plant).archived


def test_the_api_writes_versions_and_the_export_carries_roles_and_org(kit: Site) -> None:
    kit.users.create_user("boss", "boss-password", "Boss", is_admin=True)
    user_with_role(kit, "clerk", "clerk-password", scope="own")
    with TestClient(create_app(kit)) as client:
        log_in(client, "clerk", "clerk-password")
        assert client.patch("/api/v1/admin/units/1", json={"name": "x"}).status_code == 403
        assert client.patch("/api/v1/admin/roles/worker", json={"label_en": "x"}).status_code == 403
    with TestClient(create_app(kit)) as client:
        log_in(client, "boss", "boss-password")
        group = client.post("/api/v1/admin/units", json={"name": "Group", "name_zh": "集团", "kind": "group"})
        assert group.status_code == 201
        team = client.post("/api/v1/admin/units", json={"name": "Team", "kind": "team", "parent_id": group.json()["id"]}).json()["id"]
        renamed = client.patch(f"/api/v1/admin/units/{team}", json={"name": "Team East", "parent_id": None})
        assert renamed.status_code == 200 and isinstance(renamed.json()["layer_version"], int)
        units = {u["id"]: u for u in client.get("/api/v1/admin/units").json()["data"]}
        assert units[team]["parent_id"] is None and units[team]["label"]["en"] == "Team East" and units[team]["archived"] is False
        assert client.patch(f"/api/v1/admin/units/{team}", json={"kind": "planet"}).status_code == 422
        assert client.patch("/api/v1/admin/units/999999", json={"name": "x"}).status_code == 404
        assert client.post("/api/v1/admin/roles", json={"name": "seller", "label_en": "Seller", "label_zh": "销售"}).status_code == 201
        assert client.post("/api/v1/admin/roles/seller/grants", json={"entity": "company", "action": "read", "scope": "own"}).status_code == 201
        assert client.patch("/api/v1/admin/roles/seller", json={"includes": ["worker"]}).status_code == 200
        seller = next(r for r in client.get("/api/v1/admin/roles").json()["data"] if r["name"] == "seller")
        assert seller["includes"] == ["worker"] and seller["grants"] == [{"entity": "company", "action": "read", "scope": "own", "source": "pack:site"}]
        notes = [v["note"] for v in client.get("/api/v1/design/versions").json()["versions"]]
        assert notes[:3] == ["role seller: label and includes", "role seller: permissions", "new role seller"]
        archive = zipfile.ZipFile(io.BytesIO(client.get("/api/v1/design/export").content))
        assert {"site/org.yaml", "site/roles.yaml", "site/pack.yaml"} <= set(archive.namelist())
        helper = client.post("/api/v1/admin/roles", json={"name": "helper", "label_en": "Helper", "includes": ["seller"]})
        assert helper.status_code == 201
        assert next(r for r in client.get("/api/v1/admin/roles").json()["data"] if r["name"] == "helper")["includes"] == ["seller"]
        refused = client.post("/api/v1/admin/roles", json={"name": "helper2", "label_en": "Helper 2", "includes": "seller"})
        assert refused.status_code == 422 and refused.json()["error"]["details"][0]["field"] == "includes"
        unknown = client.post("/api/v1/admin/roles", json={"name": "helper3", "label_en": "Helper 3", "includes": ["nobody"]})
        assert unknown.status_code == 422 and "nobody" in unknown.text
        assert "helper2" not in {r["name"] for r in client.get("/api/v1/admin/roles").json()["data"]}
        archive = zipfile.ZipFile(io.BytesIO(client.get("/api/v1/design/export").content))
        roles_yaml = archive.read("site/roles.yaml").decode()
        assert "name: seller" in roles_yaml and "includes: [worker]" in roles_yaml and "user:" not in roles_yaml
        org_yaml = archive.read("site/org.yaml").decode()
        assert "{en: Team East, zh-CN: Team}" in org_yaml and "users: []" in org_yaml and "clerk" not in org_yaml
