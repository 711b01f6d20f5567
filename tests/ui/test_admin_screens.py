"""Administration screens: users, roles with the permission matrix, field access, org units;
and screens that follow permissions (menus, 404 for records out of sight)."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from crm_platform.engine.records.actor import Actor
from crm_platform.engine.records.list_query import ListQuery
from crm_platform.engine.site import Site
from crm_platform.ui.app import create_app
from tests.helpers import log_in
from tests.ui.admin_preview import preview_and_apply


def login(kit: Site, username: str, password: str) -> TestClient:
    client = TestClient(create_app(kit))
    log_in(client, username, password)
    return client


@pytest.fixture
def admin_client(kit: Site) -> Iterator[TestClient]:
    kit.users.create_user("root", "root-password", is_admin=True)
    with login(kit, "root", "root-password") as client:
        yield client


def test_admin_builds_a_role_and_a_user_who_then_sees_their_scope(admin_client: TestClient, kit: Site) -> None:
    c = admin_client
    preview_and_apply(c, "/admin/units", {"name": "Sales", "kind": "department"})
    assert "Sales" in c.get("/admin/units").text
    preview_and_apply(c, "/admin/roles", {"name": "seller", "label_en": "Seller", "label_zh": "销售"})
    preview_and_apply(c, "/admin/roles/seller/matrix", {"cell:company:read": "own", "cell:company:create": "own", "cell:deal:read": ""})
    page = c.get("/admin/roles?role=seller").text
    assert re.search(r'name="cell:company:read"[^>]*>.*?<option value="own" selected', page, re.S)
    preview_and_apply(c, "/admin/roles/seller/fields", {"field": "company.revenue", "access": "hidden"})
    assert "company.revenue</code>: Hidden" in c.get("/admin/roles?role=seller").text
    unit_id = re.search(r'<option value="(\d+)">Sales</option>', c.get("/admin/users").text).group(1)  # type: ignore[union-attr]
    created = c.post("/admin/users", data={"csrf_token": c.csrf, "username": "sara", "password": "sara-password", "display_name": "Sara", "unit_id": unit_id, "roles": "seller"}, follow_redirects=False)
    assert created.status_code == 303
    assert "seller" in c.get("/admin/users").text
    kit.records.create(Actor.system(), "company", {"name": "Not hers", "revenue": "5"})
    time.sleep(0.6)
    with login(kit, "sara", "sara-password") as sara:
        made = sara.post("/app/company/new", data={"csrf_token": sara.csrf, "name": "Hers"}, follow_redirects=False)
        assert made.status_code == 303, made.text[-3000:]
        listing = sara.get("/app/company").text
        assert "Hers" in listing and "Not hers" not in listing
        assert "Revenue" not in listing  # a hidden column is not shown
        nav = sara.get("/").text
        assert "/app/company" in nav and "/app/deal" not in nav and "/admin/users" not in nav
        assert sara.get("/admin/users").status_code == 403
        other = kit.records.list(Actor.system(), "company", ListQuery()).records
        not_hers = next(r for r in other if r["name"] == "Not hers")
        assert sara.get(f"/app/company/{not_hers['id']}").status_code == 404
        assert sara.get("/app/company/export.csv").status_code == 403


def test_admin_errors_are_shown_not_raised(admin_client: TestClient) -> None:
    c = admin_client
    bad = c.post("/admin/users", data={"csrf_token": c.csrf, "username": "x", "password": "short"})
    assert bad.status_code == 422 and "at least 8 characters" in bad.text
    preview_and_apply(c, "/admin/roles", {"name": "worker", "label_en": "W"})
    duplicate = c.post("/admin/roles", data={"csrf_token": c.csrf, "name": "worker", "label_en": "W"})
    assert duplicate.status_code == 422 and "already exists" in duplicate.text
