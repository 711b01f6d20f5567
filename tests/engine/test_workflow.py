"""The workflow engine: transitions from the current state only, who may fire them, guards,
required fields and comments, actions on entering a state, history, and the state field
changing through transitions only."""

from __future__ import annotations

import datetime as dt

import pytest

from crm_platform.engine.records.actor import Actor
from crm_platform.engine.records.errors import Conflict, Forbidden, ValidationFailed
from crm_platform.engine.site import Site
from tests.conftest import FIXTURE_PACKS

SYSTEM = Actor.system()


@pytest.fixture
def fk(make_site) -> Site:  # type: ignore[no-untyped-def]
    return make_site(["flowkit"], search=[FIXTURE_PACKS])


@pytest.fixture
def people(fk: Site) -> dict[str, Actor]:
    boss = fk.users.create_user("boss", None)
    seller = fk.users.create_user("seller", None, manager_id=boss)
    approver = fk.users.create_user("approver", None)
    fk.permissions.assign_role(seller, "seller")
    fk.permissions.assign_role(boss, "seller")
    fk.permissions.assign_role(approver, "approver")
    return {name: fk.users.actor(uid) for name, uid in (("boss", boss), ("seller", seller), ("approver", approver))}  # type: ignore[misc]


def new_deal(fk: Site, actor: Actor, **values: object) -> dict:
    company = fk.records.create(SYSTEM, "company", {"name": "Co"})
    return fk.records.create(actor, "deal", {"title": "Deal", "company": company["id"], **values})


def test_new_records_start_in_the_initial_state_and_the_state_moves_only_by_transitions(fk: Site, people: dict[str, Actor]) -> None:
    deal = new_deal(fk, people["seller"])
    assert deal["stage"] == "open"
    with pytest.raises(ValidationFailed) as direct:
        fk.records.update(people["seller"], "deal", deal["id"], {"version": 1, "stage": "won"})
    assert "only through the workflow" in direct.value.details[0].message
    with pytest.raises(ValidationFailed):
        new_deal(fk, people["seller"], stage="won")


def test_who_may_fire_guard_and_actions(fk: Site, people: dict[str, Actor]) -> None:
    deal = new_deal(fk, people["seller"])
    options = {o.transition.name: o.allowed for o in fk.workflows.options(people["seller"], "deal", deal["id"])}
    assert options == {"win": False, "lose": True, "submit": True}
    with pytest.raises(Forbidden):
        fk.workflows.fire(people["seller"], "deal", deal["id"], "win")
    with pytest.raises(ValidationFailed) as guard:
        fk.workflows.fire(people["boss"], "deal", deal["id"], "win")  # the owner's manager, but no amount
    assert guard.value.details[0].message == "A deal is won with an amount"
    won = fk.workflows.fire(people["boss"], "deal", deal["id"], "win", {"amount": "1200"})
    assert (won["stage"], won["amount"], won["close_date"]) == ("won", "1200.00", dt.date.today().isoformat())
    with pytest.raises(Conflict):
        fk.workflows.fire(people["approver"], "deal", deal["id"], "win")
    history = fk.workflows.history("deal", deal["id"])
    assert [(h["transition"], h["from_state"], h["to_state"], h["username"]) for h in history] == [("_start", None, "open", "seller"), ("win", "open", "won", "boss")]


def test_an_approver_role_fires_without_update_rights(fk: Site, people: dict[str, Actor]) -> None:
    deal = new_deal(fk, people["seller"], amount="10")
    won = fk.workflows.fire(people["approver"], "deal", deal["id"], "win")
    assert won["stage"] == "won"
    assert fk.records.history(SYSTEM, "deal", deal["id"])[-1]["changed_by_name"] == "approver"


def test_required_comment_and_fields(fk: Site, people: dict[str, Actor]) -> None:
    deal = new_deal(fk, people["seller"])
    with pytest.raises(ValidationFailed) as missing:
        fk.workflows.fire(people["seller"], "deal", deal["id"], "lose")
    assert missing.value.details[0].field == "comment"
    lost = fk.workflows.fire(people["seller"], "deal", deal["id"], "lose", comment="Price too high")
    assert lost["stage"] == "lost"
    assert fk.workflows.history("deal", deal["id"])[-1]["comment"] == "Price too high"
    reopened = fk.workflows.fire(people["seller"], "deal", deal["id"], "reopen")
    assert reopened["stage"] == "open"


def test_out_of_scope_records_are_not_found(fk: Site, people: dict[str, Actor]) -> None:
    from crm_platform.engine.records.errors import NotFound

    deal = new_deal(fk, people["boss"])
    with pytest.raises(NotFound):
        fk.workflows.fire(people["seller"], "deal", deal["id"], "lose", comment="x")


def test_an_approval_in_two_steps_fires_the_outcome(fk: Site, people: dict[str, Actor]) -> None:
    deal = new_deal(fk, people["seller"], amount="900")
    reviewing = fk.workflows.fire(people["seller"], "deal", deal["id"], "submit")
    assert reviewing["stage"] == "review"
    assert fk.approvals.pending_for(people["seller"]) == []
    first = fk.approvals.pending_for(people["approver"])
    assert [(a["name"], a["step"], a["title"]) for a in first] == [("big_deal", 0, "Deal")]
    with pytest.raises(Forbidden):
        fk.approvals.decide(people["seller"], first[0]["id"], True)
    assert fk.approvals.decide(people["approver"], first[0]["id"], True, "fine by me") == {"status": "approved", "next_step": 1}
    second = fk.approvals.pending_for(people["boss"])  # the owner's manager
    assert [a["step"] for a in second] == [1]
    result = fk.approvals.decide(people["boss"], second[0]["id"], True)
    assert result["record"]["stage"] == "won"
    with pytest.raises(Conflict):
        fk.approvals.decide(people["boss"], second[0]["id"], True)
    steps = fk.approvals.of_record("deal", deal["id"])
    assert [(s["step"], s["status"], s["decided_by_name"]) for s in steps] == [(0, "approved", "approver"), (1, "approved", "boss")]


def test_a_rejection_sends_the_record_back(fk: Site, people: dict[str, Actor]) -> None:
    deal = new_deal(fk, people["seller"], amount="900")
    fk.workflows.fire(people["seller"], "deal", deal["id"], "submit")
    pending = fk.approvals.pending_for(people["approver"])[0]
    result = fk.approvals.decide(people["approver"], pending["id"], False, "too cheap")
    assert result["record"]["stage"] == "open"
    assert fk.workflows.history("deal", deal["id"])[-1]["comment"] == "too cheap"
    assert fk.approvals.pending_for(people["boss"]) == []


def test_a_timer_fires_its_transition_when_the_record_stays_too_long(fk: Site, people: dict[str, Actor]) -> None:
    from crm_platform.engine import jobs
    from crm_platform.engine.clock import CLOCK

    with CLOCK.scope():
        CLOCK.set(dt.datetime(2026, 5, 1, 9, 0, tzinfo=dt.UTC))
        waiting = new_deal(fk, people["seller"], amount="900")
        fk.workflows.fire(people["seller"], "deal", waiting["id"], "submit")
        moved_on = new_deal(fk, people["seller"], amount="900")
        fk.workflows.fire(people["seller"], "deal", moved_on["id"], "submit")
        fk.workflows.fire(people["approver"], "deal", moved_on["id"], "send_back", comment="not now")
        CLOCK.advance(dt.timedelta(minutes=119))
        jobs.run_due(fk)
        assert fk.records.get(SYSTEM, "deal", waiting["id"])["stage"] == "review"
        CLOCK.advance(dt.timedelta(minutes=2))
        jobs.run_due(fk)
        assert fk.records.get(SYSTEM, "deal", waiting["id"])["stage"] == "open"
        last = fk.workflows.history("deal", waiting["id"])[-1]
        assert (last["transition"], last["comment"]) == ("send_back", "automatic: time ran out")
        assert fk.approvals.pending_for(people["approver"]) == []  # the approval was cancelled
        assert [h["transition"] for h in fk.workflows.history("deal", moved_on["id"])] == ["_start", "submit", "send_back"]


def test_entering_a_state_notifies_in_app_and_by_email(fk: Site, people: dict[str, Actor]) -> None:
    from crm_platform.engine.jobs.outbox import list_outbox
    from crm_platform.engine.notifications import Notifications

    users = fk.schema.system["crm_user"]
    with fk.engine.begin() as conn:
        conn.execute(users.update().where(users.c.username == "boss").values(email="boss@example.com"))
    deal = new_deal(fk, people["seller"], amount="10")
    fk.workflows.fire(people["approver"], "deal", deal["id"], "win")
    notes = Notifications(fk)
    seller, boss = notes.unread(people["seller"].user_id), notes.unread(people["boss"].user_id)
    assert [n["text_en"] for n in seller] == ["Deal: the deal was won"] and len(boss) == 1
    assert seller[0]["link"] == f"/app/deal/{deal['id']}" and seller[0]["text_zh"] == "Deal：交易已赢单"
    assert notes.unread(people["approver"].user_id) == []
    assert [(m["to_address"], m["subject"]) for m in list_outbox(fk)] == [("boss@example.com", "Deal: the deal was won")]
    notes.mark_read(people["seller"].user_id)
    assert notes.unread(people["seller"].user_id) == []
