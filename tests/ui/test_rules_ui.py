"""Rules through the screens and the API: inline rule errors, form conditions re-evaluated as the
user types, list filters, and live checking of an expression."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from crm_platform.engine.site import Site
from crm_platform.ui.app import create_app
from tests.conftest import FIXTURE_PACKS
from tests.helpers import log_in


@pytest.fixture
def rk(make_site) -> Site:  # type: ignore[no-untyped-def]
    return make_site(["ruleskit"], search=[FIXTURE_PACKS])


@pytest.fixture
def session(rk: Site) -> Iterator[TestClient]:
    rk.users.create_user("root", "root-password", is_admin=True)
    with TestClient(create_app(rk)) as client:
        log_in(client, "root", "root-password")
        yield client


def test_rule_errors_show_inline_on_their_field(session: TestClient) -> None:
    response = session.post("/app/company/new", data={"csrf_token": session.csrf, "name": "Huge", "employees": "5000", "kind": "dealer"}, headers={"HX-Request": "true"})
    assert response.status_code == 422
    assert re.search(r'id="f-website"[^>]*aria-invalid="true"', response.text)
    assert "More than 1000 employees needs a website" in response.text
    assert "Email is required now" in response.text


def test_form_conditions_render_and_are_re_evaluated(session: TestClient) -> None:
    form = session.get("/app/company/new").text
    assert re.search(r'data-field="discount"[^>]*hidden', form)  # kind defaults to customer: discount hidden
    assert re.search(r'data-field="email"[^>]*>\s*<label for="f-email">Email<span class="req-mark" hidden', form)
    response = session.post("/app/company/conditions", data={"name": "X", "kind": "dealer"})
    assert response.status_code == 204
    detail = json.loads(response.headers["HX-Trigger"])["crm:conditions"]
    assert "discount" not in detail["hidden"] and "email" in detail["required"]
    again = json.loads(session.post("/app/company/conditions", data={"kind": "customer"}).headers["HX-Trigger"])["crm:conditions"]
    assert "discount" in again["hidden"] and "email" not in again["required"]


def test_api_checks_an_expression_with_positions(session: TestClient) -> None:
    ok = session.post("/api/v1/rules/check", json={"entity": "deal", "expression": 'stage = "won" and amount > 100', "purpose": "condition"}).json()
    assert ok == {"ok": True, "type": "boolean", "errors": []}
    bad = session.post("/api/v1/rules/check", json={"entity": "deal", "expression": 'stage = "wonn"'}).json()
    assert bad["ok"] is False
    error = bad["errors"][0]
    assert (error["line"], error["column"]) == (1, 9) and "'wonn' is not a value of deal.stage" in error["message"]
    assert "^^^^^^" in error["rendered"]
    assert session.post("/api/v1/rules/check", json={"entity": "nothing", "expression": "1"}).status_code == 404


def test_list_filter_parameter_and_view_filter(session: TestClient, rk: Site) -> None:
    company = session.post("/api/v1/records/company", json={"name": "Co"}).json()
    for title, stage in (("a", "open"), ("b", "lost")):
        session.post("/api/v1/records/deal", json={"title": title, "company": company["id"], "stage": stage})
    filtered = session.get("/api/v1/records/deal", params={"filter": 'stage != "open"'}).json()
    assert [r["title"] for r in filtered["data"]] == ["b"]
    view = session.get("/api/v1/records/deal", params={"view": "open_deals"}).json()
    assert [r["title"] for r in view["data"]] == ["a"]
    screen = session.get("/app/deal?view=open_deals").text
    assert "1 records" in screen
    bad = session.get("/api/v1/records/deal", params={"filter": "stage ="})
    assert bad.status_code == 400 and bad.json()["error"]["details"][0]["field"] == "filter"
