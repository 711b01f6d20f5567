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
    assert options == {"win": False, "lose": True}
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
    assert [(h["transition"], h["from_state"], h["to_state"], h["username"]) for h in history] == [("win", "open", "won", "boss")]


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
