"""Attacks a CRM meets, through the real app: stored XSS in every text-bearing field rendered on
every screen and export; SQL injection through filter, sort and search parameters; privilege
escalation through API payloads; CSRF; session fixation."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from crm_platform.engine.records.actor import Actor
from crm_platform.engine.site import Site
from crm_platform.ui.app import create_app
from tests.helpers import log_in, user_with_role

SYSTEM = Actor.system()
PAYLOADS = ['<script>alert("x")</script>', '"><img src=x onerror=alert(1)>', "javascript:alert(1)//<svg/onload=alert(1)>"]


@pytest.fixture
def client(kit: Site) -> Iterator[TestClient]:
    user_with_role(kit, "sam", "sam-password", display_name="Sam")
    with TestClient(create_app(kit)) as client:
        log_in(client, "sam", "sam-password")
        yield client


def test_stored_xss_is_escaped_on_every_screen_and_export(kit: Site, client: TestClient) -> None:
    payload = PAYLOADS[0] + PAYLOADS[1]
    company = kit.records.create(SYSTEM, "company", {"name": payload[:100], "notes": payload + PAYLOADS[2], "website": "https://example.com/?q=<b>",
                                                     "kind": "dealer"})
    deal = kit.records.create(SYSTEM, "deal", {"title": payload, "company": company["id"], "amount": "100"})
    kit.records.create(SYSTEM, "tag", {"name": payload[:50]})
    kit.users.create_user("evil", "evil-password-1", display_name=payload[:100])
    pages = [f"/app/company/{company['id']}", "/app/company", "/app/company?q=script", f"/app/deal/{deal['id']}", "/app/deal",
             "/app/deal/kanban", f"/app/company/{company['id']}/edit", "/app/tag",
             "/reports?entity=company&group=name&aggregate=count&chart=bar&run=1"]
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
        for raw in ("<script>alert", "<img src=x", "<svg/onload"):
            assert raw not in response.text, f"{url} renders {raw!r} unescaped"
    export = client.get("/app/company/export.csv")
    assert export.headers["content-type"].startswith("text/csv") and "attachment" in export.headers["content-disposition"]  # data, never a page
    assert '<script>alert(""x"")</script>' in export.text
    assert client.get(f"/api/v1/records/company/{company['id']}").json()["name"] == payload[:100]  # JSON keeps the data as it was


@pytest.mark.parametrize("params", [
    {"sort": "name;DROP TABLE ent_company"},
    {"sort": "name) --"},
    {"name__eq": "x' OR '1'='1"},
    {"q": "' OR 1=1 --"},
    {"q": '"; DROP TABLE ent_company; --'},
    {"filter": 'name = "x" or "1" = "1"; DROP TABLE ent_company'},
    {"employees__gt": "1 OR 1=1"},
    {"name__in": "a','b"},
])
def test_sql_injection_through_list_parameters_changes_nothing(kit: Site, client: TestClient, params: dict[str, str]) -> None:
    kit.records.create(SYSTEM, "company", {"name": "Only one"})
    response = client.get("/api/v1/records/company", params=params)
    assert response.status_code in (200, 400)
    if response.status_code == 200:
        assert response.json()["total"] == 0  # a literal that matches nothing, never "everything"
    else:
        assert response.json()["error"]["details"], "a refused parameter is named"
    assert client.get("/api/v1/records/company").json()["total"] == 1  # the table is intact


def test_api_payloads_cannot_escalate_privileges(kit: Site) -> None:
    owner = user_with_role(kit, "ann", "ann-password", scope="own", role="rep")
    user_with_role(kit, "bob", "bob-password", scope="own", role="rep")
    theirs = kit.records.create(kit.users.actor(owner), "company", {"name": "Ann's"})
    with TestClient(create_app(kit)) as client:
        log_in(client, "bob", "bob-password")
        for field, value in (("owner_id", owner), ("unit_id", 1), ("created_by", owner), ("id", 999), ("deleted_at", None)):
            response = client.post("/api/v1/records/company", json={"name": "Mine", field: value})
            assert response.status_code == 422 and response.json()["error"]["details"][0]["field"] == field
        assert client.get(f"/api/v1/records/company/{theirs['id']}").status_code == 404
        assert client.patch(f"/api/v1/records/company/{theirs['id']}", json={"version": 1, "name": "Taken"}).status_code == 404
        assert client.post("/api/v1/admin/roles", json={"name": "boss", "label": "Boss"}).status_code in (403, 404, 405)
        assert client.post("/admin/users", data={"username": "x", "password": "long-password-1", "csrf_token": client.csrf}).status_code == 403
    assert kit.records.get(SYSTEM, "company", theirs["id"])["name"] == "Ann's"


def test_forms_without_the_csrf_token_are_refused(kit: Site, client: TestClient) -> None:
    company = kit.records.create(SYSTEM, "company", {"name": "Kiln"})
    del client.headers["X-CSRF-Token"]
    response = client.post(f"/app/company/{company['id']}/delete", data={})
    assert response.status_code == 403
    assert kit.records.get(SYSTEM, "company", company["id"])["name"] == "Kiln"


def test_a_session_id_from_before_login_is_not_kept(kit: Site) -> None:
    user_with_role(kit, "sam", "sam-password")
    with TestClient(create_app(kit)) as client:
        client.get("/login")
        before = client.cookies.get("crm_session")
        log_in(client, "sam", "sam-password")
        after = client.cookies.get("crm_session")
        assert before and after and before != after
        client.cookies.clear()
        client.cookies.set("crm_session", before)  # an attacker's planted pre-login cookie
        assert client.get("/", follow_redirects=False).status_code in (302, 303)  # it is not a logged-in session
