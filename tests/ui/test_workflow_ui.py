"""Workflows through the screens and the API: buttons on the detail, refusals explained, the
kanban firing transitions, and the API's transitions endpoints."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from crm_platform.engine.records.actor import Actor
from crm_platform.engine.site import Site
from crm_platform.ui.app import create_app
from tests.conftest import FIXTURE_PACKS
from tests.helpers import log_in


@pytest.fixture
def fk(make_site) -> Site:  # type: ignore[no-untyped-def]
    return make_site(["flowkit"], search=[FIXTURE_PACKS])


@pytest.fixture
def seller(fk: Site) -> Iterator[TestClient]:
    user_id = fk.users.create_user("sal", "sal-password")
    fk.permissions.assign_role(user_id, "seller")
    with TestClient(create_app(fk)) as client:
        log_in(client, "sal", "sal-password")
        yield client


def a_deal(client: TestClient, fk: Site) -> int:
    company = fk.records.create(Actor.system(), "company", {"name": "Co"})
    return int(client.post("/api/v1/records/deal", json={"title": "Deal", "company": company["id"]}).json()["id"])


def test_detail_buttons_and_refusals(seller: TestClient, fk: Site) -> None:
    deal_id = a_deal(seller, fk)
    page = seller.get(f"/app/deal/{deal_id}").text
    assert "Deal flow" in page and "Mark lost" in page
    assert 'disabled title="only role approver, owner&#39;s manager may do this">Mark won</button>' in page
    refused = seller.post(f"/app/deal/{deal_id}/transition/lose", data={"csrf_token": seller.csrf})
    assert refused.status_code == 422 and "a comment is needed" in refused.text
    done = seller.post(f"/app/deal/{deal_id}/transition/lose", data={"csrf_token": seller.csrf, "comment": "No budget"}, follow_redirects=False)
    assert done.status_code == 303
    assert fk.records.get(Actor.system(), "deal", deal_id)["stage"] == "lost"
    assert "No budget" in seller.get(f"/api/v1/records/deal/{deal_id}/transitions").text


def test_kanban_moves_fire_transitions(seller: TestClient, fk: Site) -> None:
    deal_id = a_deal(seller, fk)
    refused = seller.post(f"/app/deal/{deal_id}/move", data={"csrf_token": seller.csrf, "field": "stage", "value": "won", "version": "1"})
    assert refused.status_code == 403 and "Move refused" in refused.text and "approver" in refused.text
    assert fk.records.get(Actor.system(), "deal", deal_id)["stage"] == "open"


def test_api_transitions(seller: TestClient, fk: Site) -> None:
    deal_id = a_deal(seller, fk)
    listed = seller.get(f"/api/v1/records/deal/{deal_id}/transitions").json()
    assert listed["state"] == "open" and {t["name"]: t["allowed"] for t in listed["data"]} == {"win": False, "lose": True, "submit": True}
    assert seller.post(f"/api/v1/records/deal/{deal_id}/transitions/win", json={}).status_code == 403
    assert seller.post(f"/api/v1/records/deal/{deal_id}/transitions/nope", json={}).status_code == 404
    lost = seller.post(f"/api/v1/records/deal/{deal_id}/transitions/lose", json={"comment": "Lost to a competitor"})
    assert lost.status_code == 200 and lost.json()["stage"] == "lost"
    again = seller.post(f"/api/v1/records/deal/{deal_id}/transitions/lose", json={"comment": "x"})
    assert again.status_code == 409
    direct = seller.patch(f"/api/v1/records/deal/{deal_id}", json={"version": lost.json()["version"], "stage": "open"})
    assert direct.status_code == 422


def test_work_list_approvals_over_screens_and_api(seller: TestClient, fk: Site) -> None:
    approver_id = fk.users.create_user("apr", "apr-password")
    fk.permissions.assign_role(approver_id, "approver")
    deal_id = a_deal(seller, fk)
    seller.patch(f"/api/v1/records/deal/{deal_id}", json={"version": 1, "amount": "50"})
    assert seller.post(f"/api/v1/records/deal/{deal_id}/transitions/submit", json={}).json()["stage"] == "review"
    assert seller.get("/api/v1/approvals").json()["data"] == []
    time.sleep(0.6)  # the new role assignment reaches the policy cache within half a second
    with TestClient(create_app(fk)) as approver:
        log_in(approver, "apr", "apr-password")
        page = approver.get("/work").text
        assert "Big deal approval" in page and "step 1 of 2" in page
        assert re.search(r'Work list <span class="count"[^>]*>1</span>', page)
        pending = approver.get("/api/v1/approvals").json()["data"]
        decided = approver.post(f"/work/approvals/{pending[0]['id']}", data={"csrf_token": approver.csrf, "decision": "reject", "comment": "Needs a discount check"}, follow_redirects=False)
        assert decided.status_code == 303
    assert fk.records.get(Actor.system(), "deal", deal_id)["stage"] == "open"
    again = seller.post(f"/api/v1/approvals/{pending[0]['id']}/decision", json={"approve": True})
    assert again.status_code in (403, 404, 409)
