"""The standard pack's workflows end to end: a service request nobody takes escalates by itself
and reaches the service manager's work list; a large quote discount needs two approvals."""

from __future__ import annotations

import datetime as dt
import time

from starlette.testclient import TestClient

from crm_platform.engine import jobs
from crm_platform.engine.clock import CLOCK
from crm_platform.engine.records.actor import Actor
from crm_platform.engine.records.errors import ValidationFailed
from crm_platform.engine.site import Site
from crm_platform.ui.app import create_app
from tests.helpers import log_in


def staff(site: Site) -> dict[str, Actor]:
    admin = site.permissions
    unit = admin.create_unit("Service", "department")
    people = {}
    for name, role, manager in (("manager", "service_manager", None), ("agent", "service_agent", "manager"),
                                ("lead", "sales_manager", None), ("rep", "sales_rep", "lead"), ("cfo", "finance", None)):
        user_id = site.users.create_user(name, f"{name}-password", unit_id=unit, manager_id=people[manager].user_id if manager else None)
        admin.assign_role(user_id, role)
        people[name] = site.users.actor(user_id)
    time.sleep(0.6)
    return people  # type: ignore[return-value]


def test_an_untaken_service_request_escalates_to_the_manager(site: Site) -> None:
    people = staff(site)
    account = site.records.create(Actor.system(), "account", {"name": "Kiln Supplies"})
    with CLOCK.scope():
        CLOCK.set(dt.datetime(2026, 6, 1, 8, 0, tzinfo=dt.UTC))
        request = site.records.create(people["agent"], "service_request", {"subject": "Cracked tiles", "account": account["id"], "opened_at": "2026-06-01T08:00:00+00:00"})
        assert request["status"] == "new"
        CLOCK.advance(dt.timedelta(hours=3, minutes=59))
        jobs.run_due(site)
        assert site.records.get(Actor.system(), "service_request", request["id"])["status"] == "new"
        CLOCK.advance(dt.timedelta(minutes=2))
        jobs.run_due(site)
    escalated = site.records.get(Actor.system(), "service_request", request["id"])
    assert escalated["status"] == "escalated"
    steps = [(h["transition"], h["from_state"], h["to_state"], h["comment"]) for h in site.workflows.history("service_request", request["id"])]
    assert steps == [("_start", None, "new", None), ("escalate", "new", "escalated", "automatic: time ran out")]
    with TestClient(create_app(site)) as client:
        log_in(client, "manager", "manager-password")
        work = client.get("/work").text
        assert "Waiting for my role" in work and "Cracked tiles" in work
        assert "Cracked tiles: escalated" in work  # the in-app notification
        client.post("/work/notifications/read", data={"csrf_token": client.csrf})
        assert "Cracked tiles: escalated" not in client.get("/work").text
    assigned = site.workflows.fire(people["manager"], "service_request", request["id"], "assign")
    assert assigned["status"] == "assigned"


def test_resolving_needs_a_resolution_and_stamps_the_time(site: Site) -> None:
    people = staff(site)
    account = site.records.create(Actor.system(), "account", {"name": "Glaze Works"})
    request = site.records.create(people["agent"], "service_request", {"subject": "Shade difference", "account": account["id"], "opened_at": "2026-06-01T08:00:00+00:00"})
    site.workflows.fire(people["manager"], "service_request", request["id"], "assign")
    site.workflows.fire(people["agent"], "service_request", request["id"], "start")
    try:
        site.workflows.fire(people["agent"], "service_request", request["id"], "resolve")
        raise AssertionError("resolving without a resolution must be refused")
    except ValidationFailed as exc:
        assert exc.details[0].field == "resolution"
    resolved = site.workflows.fire(people["agent"], "service_request", request["id"], "resolve", {"resolution": "Replaced 12 boxes from batch B-17"})
    assert resolved["status"] == "resolved" and resolved["resolved_at"] is not None


def test_a_large_quote_discount_needs_the_manager_then_finance(site: Site) -> None:
    people = staff(site)
    account = site.records.create(people["rep"], "account", {"name": "Showroom"})
    quote = site.records.create(people["rep"], "quote", {"subject": "Lobby tiles", "account": account["id"], "quote_date": "2026-06-01", "discount": "15"})
    try:
        site.workflows.fire(people["rep"], "quote", quote["id"], "send")
        raise AssertionError("a 15% discount must not be sent without approval")
    except ValidationFailed as exc:
        assert "needs approval" in exc.details[0].message
    site.workflows.fire(people["rep"], "quote", quote["id"], "request_discount")
    first = site.approvals.pending_for(people["lead"])
    assert [a["label"]["en"] for a in first] == ["Discount approval"] and site.approvals.pending_for(people["cfo"]) == []
    site.approvals.decide(people["lead"], first[0]["id"], True)
    second = site.approvals.pending_for(people["cfo"])
    result = site.approvals.decide(people["cfo"], second[0]["id"], True)
    assert result["record"]["status"] == "sent"


def test_the_monitoring_screen_shows_states_timers_and_failed_jobs(site: Site) -> None:
    people = staff(site)
    account = site.records.create(Actor.system(), "account", {"name": "Monitor Co"})
    site.records.create(people["agent"], "service_request", {"subject": "Loose tiles", "account": account["id"], "opened_at": "2026-06-01T08:00:00+00:00"})
    failing = jobs.enqueue(site, "send_email", {}, key="monitor-test", max_attempts=1)  # no outbox id: fails
    site.users.create_user("root", "root-password", is_admin=True)
    with TestClient(create_app(site)) as client:
        log_in(client, "root", "root-password")
        page = client.get("/admin/monitor").text
        assert "Service lifecycle" in page and "workflow_timer" in page
        assert jobs.get_job(site, failing)["status"] == "failed" and "monitor-test" in page
        retried = client.post(f"/admin/monitor/jobs/{failing}/retry", data={"csrf_token": client.csrf}, follow_redirects=False)
        assert retried.status_code == 303 and jobs.get_job(site, failing)["attempts"] >= 1
        log_in(client, "agent", "agent-password")
        assert client.get("/admin/monitor").status_code == 403
