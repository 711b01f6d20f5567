"""The standard pack's sales and service processes: converting a lead creates the account,
contact and opportunity; opportunities close with win/loss reasons; a closed service request
asks for a satisfaction survey; repairs charge by warranty; warranties ending are followed up."""

from __future__ import annotations

import datetime as dt

import pytest

from crm_platform.engine import jobs
from crm_platform.engine.clock import CLOCK
from crm_platform.engine.records.actor import Actor
from crm_platform.engine.records.errors import Conflict, Forbidden, ValidationFailed
from crm_platform.engine.records.list_query import ListQuery
from crm_platform.engine.site import Site
from tests.packs.test_crm_standard_flows import staff

SYSTEM = Actor.system()


def a_product(site: Site) -> dict:
    line = site.records.create(SYSTEM, "product_line", {"code": "SAN", "name": "Sanitary ware"})
    return site.records.create(SYSTEM, "product", {"code": "WC-101", "name": "Close-coupled WC", "unit": "piece", "product_line": line["id"]})


def rows(site: Site, entity: str) -> list[dict]:
    return sorted(site.records.list(SYSTEM, entity, ListQuery(page_size=200)).records, key=lambda r: r["id"])


def test_converting_a_qualified_lead_creates_account_contact_and_opportunity(site: Site) -> None:
    people = staff(site)
    rep = people["rep"]
    lead = site.records.create(rep, "lead", {"company": "Foshan Kiln Works", "contact_name": "Liu Yang", "email": "liu@kiln.example",
                                             "region": "Foshan", "estimated_amount": "88000", "source": "exhibition"})
    with pytest.raises(Conflict) as early:
        site.workflows.fire(rep, "lead", lead["id"], "convert")
    assert "'Convert' cannot be done from state 'new'" in str(early.value)
    site.workflows.fire(rep, "lead", lead["id"], "qualify")
    converted = site.workflows.fire(rep, "lead", lead["id"], "convert")
    assert converted["status"] == "converted" and converted["converted_on"] == CLOCK.today().isoformat()
    account = site.records.get(rep, "account", converted["account"])  # the rep owns and sees all three
    contact = site.records.get(rep, "contact", converted["contact"])
    deal = site.records.get(rep, "opportunity", converted["opportunity"])
    assert (account["name"], account["region"], account["owner_id"]) == ("Foshan Kiln Works", "Foshan", rep.user_id)
    assert (contact["name"], contact["account"], contact["email"]) == ("Liu Yang", account["id"], "liu@kiln.example")
    assert (deal["name"], deal["account"], deal["contact"], deal["lead"]) == ("Foshan Kiln Works - new business", account["id"], contact["id"], lead["id"])
    assert (deal["amount"], deal["lead_source"], deal["stage"]) == ("88000.00", "exhibition", "prospecting")


def test_a_lead_without_phone_or_email_is_not_converted_and_nothing_is_created(site: Site) -> None:
    rep = staff(site)["rep"]
    lead = site.records.create(rep, "lead", {"company": "Quiet Co", "contact_name": "Wu"})
    site.workflows.fire(rep, "lead", lead["id"], "qualify")
    accounts = len(rows(site, "account"))
    with pytest.raises(ValidationFailed) as refused:
        site.workflows.fire(rep, "lead", lead["id"], "convert")
    assert refused.value.details[0].message == "The new contact needs the lead's phone or email"
    assert len(rows(site, "account")) == accounts
    assert site.records.get(rep, "lead", lead["id"])["status"] == "qualified"


def test_opportunities_close_with_reasons_and_only_a_manager_reopens(site: Site) -> None:
    people = staff(site)
    rep = people["rep"]
    account = site.records.create(rep, "account", {"name": "Harbour Hotel"})
    deal = site.records.create(rep, "opportunity", {"name": "Lobby tiles", "account": account["id"]})
    moved = site.workflows.fire(rep, "opportunity", deal["id"], "to_proposal")
    assert (moved["stage"], moved["probability"]) == ("proposal", "60.0000")
    with pytest.raises(ValidationFailed) as missing:
        site.workflows.fire(rep, "opportunity", deal["id"], "win")
    assert {d.field for d in missing.value.details} == {"amount", "win_reason"}
    won = site.workflows.fire(rep, "opportunity", deal["id"], "win", {"amount": "120000", "win_reason": "quality"})
    assert (won["stage"], won["probability"], won["closed_on"]) == ("won", "100.0000", CLOCK.today().isoformat())
    with pytest.raises(Forbidden):
        site.workflows.fire(rep, "opportunity", deal["id"], "reopen", comment="customer changed the order")
    reopened = site.workflows.fire(people["lead"], "opportunity", deal["id"], "reopen", comment="customer changed the order")
    lost = site.workflows.fire(rep, "opportunity", deal["id"], "lose", {"loss_category": "price", "loss_reason": "A rival quoted 12% lower"})
    assert (reopened["stage"], lost["stage"], lost["probability"], lost["loss_category"]) == ("negotiation", "lost", "0.0000", "price")


def test_closing_a_service_request_asks_the_customer_for_a_survey(site: Site) -> None:
    people = staff(site)
    account = site.records.create(SYSTEM, "account", {"name": "Kiln Supplies"})
    request = site.records.create(people["agent"], "service_request", {"subject": "Glaze defect", "account": account["id"], "opened_at": "2026-06-01T08:00:00+00:00"})
    for name, values in (("assign", {}), ("start", {}), ("resolve", {"resolution": "Replaced 20 boxes"}), ("close", {})):
        current = site.workflows.fire(people["manager"], "service_request", request["id"], name, values)
    [survey] = rows(site, "satisfaction_survey")
    assert current["survey"] == survey["id"]
    assert (survey["service_request"], survey["account"], survey["status"]) == (request["id"], account["id"], "pending")
    with pytest.raises(ValidationFailed) as unanswered:
        site.records.update(people["agent"], "satisfaction_survey", survey["id"], {"version": survey["version"], "status": "answered"})
    assert unanswered.value.details[0].field == "score"
    answered = site.records.update(people["agent"], "satisfaction_survey", survey["id"], {"version": survey["version"], "status": "answered", "score": 4})
    assert answered["score"] == 4


def test_a_repair_is_free_under_warranty_and_charged_after_it(site: Site) -> None:
    people = staff(site)
    account = site.records.create(SYSTEM, "account", {"name": "Harbour Hotel"})
    product = a_product(site)
    covered = site.records.create(SYSTEM, "installed_product", {"serial_number": "WC-1", "product": product["id"], "account": account["id"],
                                                                 "warranty_end": (CLOCK.today() + dt.timedelta(days=100)).isoformat()})
    expired = site.records.create(SYSTEM, "installed_product", {"serial_number": "WC-2", "product": product["id"], "account": account["id"],
                                                                 "warranty_end": (CLOCK.today() - dt.timedelta(days=1)).isoformat()})
    costs = {"labour_cost": "200", "parts_cost": "150"}
    free = site.records.create(people["manager"], "repair_order", {"subject": "Leak", "account": account["id"], "installed_product": covered["id"], **costs})
    paid = site.records.create(people["manager"], "repair_order", {"subject": "Leak", "account": account["id"], "installed_product": expired["id"], **costs})
    assert (free["under_warranty"], free["charge"]) == (True, "0.00")
    assert (paid["under_warranty"], paid["charge"]) == (False, "350.00")
    with pytest.raises(ValidationFailed) as undiagnosed:
        site.workflows.fire(people["manager"], "repair_order", paid["id"], "dispatch")
    assert {d.field for d in undiagnosed.value.details} == {"diagnosis", "technician", "visit_date"}
    site.workflows.fire(people["manager"], "repair_order", paid["id"], "dispatch", {"diagnosis": "Valve worn", "technician": "Zhao", "visit_date": "2026-06-03"})
    site.workflows.fire(people["manager"], "repair_order", paid["id"], "inspect")
    with pytest.raises(ValidationFailed) as failed:
        site.workflows.fire(people["manager"], "repair_order", paid["id"], "settle", {"inspection_result": "failed"})
    assert failed.value.details[0].message == "Only a repair that passed inspection is settled"
    settled = site.workflows.fire(people["manager"], "repair_order", paid["id"], "settle", {"inspection_result": "passed"})
    closed = site.workflows.fire(people["cfo"], "repair_order", paid["id"], "close")
    assert (settled["settled_on"], closed["status"], closed["charge"]) == (CLOCK.today().isoformat(), "closed", "350.00")


def test_a_warranty_ending_in_30_days_plans_a_customer_care_call(site: Site) -> None:
    people = staff(site)
    account = site.records.create(SYSTEM, "account", {"name": "Harbour Hotel"})
    product = a_product(site)
    with CLOCK.scope():
        CLOCK.set(dt.datetime(2026, 6, 1, 8, 0, tzinfo=dt.UTC))
        site.records.create(people["agent"], "installed_product", {"serial_number": "WC-9", "product": product["id"], "account": account["id"], "warranty_end": "2026-07-15"})
        site.records.create(people["agent"], "installed_product", {"serial_number": "WC-10", "product": product["id"], "account": account["id"],
                                                                     "warranty_end": "2026-07-15", "warranty_type": "none"})
        jobs.run_due(site)
        assert [a for a in rows(site, "activity") if a["status"] == "planned"] == []
        CLOCK.set(dt.datetime(2026, 6, 15, 8, 0, tzinfo=dt.UTC))
        jobs.run_due(site)
        jobs.run_due(site)
    [call] = [a for a in rows(site, "activity") if a["status"] == "planned"]
    assert call["subject"] == "Warranty ends 2026-07-15: WC-9"
    assert (call["account"], call["kind"], call["due_on"], call["owner_id"]) == (account["id"], "call", "2026-06-22", people["agent"].user_id)


def test_a_service_agent_opens_an_account_without_the_lists_they_may_not_read(site: Site) -> None:
    from starlette.testclient import TestClient

    from crm_platform.ui.app import create_app
    from tests.helpers import log_in

    staff(site)
    account = site.records.create(SYSTEM, "account", {"name": "Harbour Hotel"})
    site.records.create(SYSTEM, "opportunity", {"name": "Secret lobby deal", "account": account["id"]})
    with TestClient(create_app(site)) as client:
        log_in(client, "agent", "agent-password")
        page = client.get(f"/app/account/{account['id']}")
    assert page.status_code == 200
    assert "Harbour Hotel" in page.text and "Secret lobby deal" not in page.text
