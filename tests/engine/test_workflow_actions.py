"""Workflow `create` actions (a related record made on entering a state, linked back) and
date-based reminders (actions once per record and date, on the movable clock)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa

from crm_platform.engine import jobs
from crm_platform.engine.clock import CLOCK
from crm_platform.engine.records.actor import Actor
from crm_platform.engine.records.errors import ValidationFailed
from crm_platform.engine.records.list_query import ListQuery
from crm_platform.engine.notifications import Notifications
from crm_platform.engine.reminders import Reminders
from crm_platform.engine.site import Site
from crm_platform.metadata.errors import PackError
from crm_platform.metadata.loader import load_registry
from tests.conftest import FIXTURE_PACKS
from tests.helpers import entity_yaml, write_pack

SYSTEM = Actor.system()
MONDAY = dt.datetime(2026, 5, 4, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def fk(make_site) -> Site:  # type: ignore[no-untyped-def]
    return make_site(["flowkit"], search=[FIXTURE_PACKS])


@pytest.fixture
def people(fk: Site) -> dict[str, Actor]:
    boss = fk.users.create_user("boss", None, email="boss@example.com")
    seller = fk.users.create_user("seller", None, manager_id=boss, email="seller@example.com")
    approver = fk.users.create_user("approver", None)
    fk.permissions.assign_role(seller, "seller")
    fk.permissions.assign_role(approver, "approver")
    return {name: fk.users.actor(uid) for name, uid in (("boss", boss), ("seller", seller), ("approver", approver))}  # type: ignore[misc]


@pytest.fixture
def clock():  # type: ignore[no-untyped-def]
    with CLOCK.scope():
        CLOCK.set(MONDAY)
        yield CLOCK


def new_deal(fk: Site, actor: Actor, **values: object) -> dict:
    company = fk.records.create(SYSTEM, "company", {"name": "Co"})
    return fk.records.create(actor, "deal", {"title": "Kiln line", "company": company["id"], **values})


def handovers(fk: Site) -> list[dict]:
    return sorted(fk.records.list(SYSTEM, "handover", ListQuery()).records, key=lambda r: r["id"])


def notifications(fk: Site, user: Actor) -> list[str]:
    return [n["text_en"] for n in Notifications(fk).unread(user.user_id)]


def test_winning_creates_a_linked_handover_owned_by_the_deal_owner(fk: Site, people: dict[str, Actor], clock) -> None:  # type: ignore[no-untyped-def]
    deal = new_deal(fk, people["seller"], amount="5000")
    won = fk.workflows.fire(people["approver"], "deal", deal["id"], "win")
    [handover] = handovers(fk)
    assert won["handover"] == handover["id"]
    assert (handover["title"], handover["deal"], handover["due"], handover["amount"]) == ("Handover: Kiln line", deal["id"], "2026-05-11", "5000.00")
    assert fk.records.get(people["seller"], "handover", handover["id"])["owner_id"] == people["seller"].user_id  # the seller sees it (scope own)
    # the link shows in the deal's field history, in the same version as the transition
    assert any(h["field"] == "handover" and h["version"] == won["version"] for h in fk.records.history(SYSTEM, "deal", deal["id"]))
    # reopened and won again: the deal is still linked to its handover, no second one
    fk.workflows.fire(SYSTEM, "deal", deal["id"], "reopen")
    fk.workflows.fire(people["approver"], "deal", deal["id"], "win")
    assert len(handovers(fk)) == 1


def test_a_create_that_fails_leaves_the_record_and_everything_as_it_was(tmp_path: Path, make_site) -> None:  # type: ignore[no-untyped-def]
    write_pack(tmp_path, "strict", {
        "entities/job.yaml": entity_yaml("job", """
            - {name: title, type: text, label: {en: Title, zh-CN: 标题}, required: true, max_length: 12}
            - name: phase
              type: picklist
              label: {en: State, zh-CN: 状态}
              options: [{value: open, label: {en: Open, zh-CN: 开}}, {value: done, label: {en: Done, zh-CN: 完}}]
            - {name: task, type: reference, entity: task, label: {en: Task, zh-CN: 任务}}
        """),
        "entities/task.yaml": entity_yaml("task", "- {name: title, type: text, label: {en: Title, zh-CN: 标题}, required: true, max_length: 10}"),
        "workflows/job.yaml": """
            name: job_flow
            label: {en: Jobs, zh-CN: 工作}
            entity: job
            field: phase
            initial: open
            states:
              - name: open
              - name: done
                on_enter:
                  - create: {entity: task, link: task, values: {title: 'concat("Check ", title)'}}
            transitions:
              - {name: finish, label: {en: Finish, zh-CN: 完成}, from: [open], to: done}
        """,
    })
    site = make_site(["strict"], search=[tmp_path])
    job = site.records.create(SYSTEM, "job", {"title": "Long title"})
    with pytest.raises(ValidationFailed) as failed:
        site.workflows.fire(SYSTEM, "job", job["id"], "finish")
    assert failed.value.details[0].field == "task.title"
    assert "10" in failed.value.details[0].message  # the length limit of the task's title
    after = site.records.get(SYSTEM, "job", job["id"])
    assert (after["phase"], after["task"], after["version"]) == ("open", None, job["version"])
    assert site.records.list(SYSTEM, "task", ListQuery()).total == 0
    assert [h["to_state"] for h in site.workflows.history("job", job["id"])] == ["open"]
    short = site.records.create(SYSTEM, "job", {"title": "Kiln"})
    assert site.workflows.fire(SYSTEM, "job", short["id"], "finish")["task"] is not None


BAD_ACTIONS = {
    "unknown entity": ("create: {entity: tsk, values: {title: title}}", "unknown entity 'tsk'; did you mean 'task'?"),
    "unknown field": ("create: {entity: task, values: {titel: title}}", "create task: unknown field 'titel'; did you mean 'title'?"),
    "missing required": ("create: {entity: task, values: {note: title}}", "create task: required field 'title' is not given a value"),
    "bad link": ("create: {entity: task, link: title, values: {title: title}}", "'title' must be a reference field of job to task"),
    "type error": ("create: {entity: task, values: {title: 'today() + 1'}}", "task.title"),
}


@pytest.mark.parametrize("case", sorted(BAD_ACTIONS))
def test_bad_create_actions_are_refused_at_load_with_their_place(tmp_path: Path, case: str) -> None:
    action, expected = BAD_ACTIONS[case]
    write_pack(tmp_path, "bad", {
        "entities/job.yaml": entity_yaml("job", """
            - {name: title, type: text, label: {en: Title, zh-CN: 标题}}
            - name: phase
              type: picklist
              label: {en: State, zh-CN: 状态}
              options: [{value: open, label: {en: Open, zh-CN: 开}}, {value: done, label: {en: Done, zh-CN: 完}}]
        """),
        "entities/task.yaml": entity_yaml("task", """
            - {name: title, type: text, label: {en: Title, zh-CN: 标题}, required: true}
            - {name: note, type: text, label: {en: Note, zh-CN: 备注}}
        """),
        "workflows/job.yaml": f"""
            name: job_flow
            label: {{en: Jobs, zh-CN: 工作}}
            entity: job
            field: phase
            initial: open
            states:
              - name: open
              - name: done
                on_enter:
                  - {action}
            transitions:
              - {{name: finish, label: {{en: Finish, zh-CN: 完成}}, from: [open], to: done}}
        """,
    })
    from crm_platform.rules.site_rules import compile_site_rules

    with pytest.raises(PackError) as error:
        compile_site_rules(load_registry(["bad"], [tmp_path]))
    text = str(error.value)
    assert expected in text
    assert "workflows/job.yaml:" in text


def test_actions_other_than_set_are_refused_on_leaving_a_state(tmp_path: Path) -> None:
    write_pack(tmp_path, "bad", {
        "workflows/deal.yaml": """
            name: deal_exit
            label: {en: Deals, zh-CN: 交易}
            entity: deal
            field: stage
            initial: open
            states:
              - name: open
                on_exit:
                  - notify: {to: [owner], message: {en: left, zh-CN: 离开}}
              - name: won
            transitions:
              - {name: win, label: {en: Win, zh-CN: 赢}, from: [open], to: won}
        """,
    }, depends=["testkit"])
    with pytest.raises(PackError) as error:
        load_registry(["bad"], [tmp_path, FIXTURE_PACKS])
    assert "'notify' is an action on entering a state (on_enter)" in str(error.value)


# -- reminders ---------------------------------------------------------------------------------


def test_a_follow_up_reminder_fires_once_on_its_day(fk: Site, people: dict[str, Actor], clock) -> None:  # type: ignore[no-untyped-def]
    deal = new_deal(fk, people["seller"], follow_up="2026-05-06")
    jobs.run_due(fk)
    assert handovers(fk) == []
    clock.advance(dt.timedelta(days=2))
    jobs.run_due(fk)
    [task] = handovers(fk)
    assert (task["title"], task["deal"], task["due"], task["owner_id"]) == ("Follow up: Kiln line", deal["id"], "2026-05-06", people["seller"].user_id)
    assert notifications(fk, people["seller"]) == ["Kiln line: follow-up is due today"]
    clock.advance(dt.timedelta(hours=3))  # a new hourly scan on the same day
    jobs.run_due(fk)
    assert Reminders(fk).scan() == 0
    assert len(handovers(fk)) == 1
    # moving the follow-up date arms the reminder again for the new date
    current = fk.records.get(SYSTEM, "deal", deal["id"])
    fk.records.update(people["seller"], "deal", deal["id"], {"version": current["version"], "follow_up": "2026-05-08"})
    clock.advance(dt.timedelta(days=2))
    jobs.run_due(fk)
    assert [t["due"] for t in handovers(fk)] == ["2026-05-06", "2026-05-08"]


def test_reminder_condition_and_catch_up_window(fk: Site, people: dict[str, Actor], clock) -> None:  # type: ignore[no-untyped-def]
    lost = new_deal(fk, people["seller"], follow_up="2026-05-05")
    fk.workflows.fire(people["seller"], "deal", lost["id"], "lose", comment="price")
    late = new_deal(fk, people["seller"], follow_up="2026-05-02")  # two days ago: within catch_up_days (3)
    stale = new_deal(fk, people["seller"], follow_up="2026-04-20")  # long past: left alone
    clock.advance(dt.timedelta(days=1))
    assert Reminders(fk).scan() == 1
    assert [t["deal"] for t in handovers(fk)] == [late["id"]]
    assert stale["id"] not in [t["deal"] for t in handovers(fk)]


def test_a_date_reminder_emails_the_owner_and_manager_days_before(fk: Site, people: dict[str, Actor], clock) -> None:  # type: ignore[no-untyped-def]
    new_deal(fk, people["seller"], close_date="2026-06-10")
    jobs.run_due(fk)
    assert notifications(fk, people["boss"]) == []
    clock.set(dt.datetime(2026, 5, 11, 8, 0, tzinfo=dt.UTC))  # 30 days before the close date
    jobs.run_due(fk)
    assert notifications(fk, people["boss"]) == ["Kiln line: closes within 30 days"]
    assert notifications(fk, people["seller"]) == ["Kiln line: closes within 30 days"]
    sent_to = sorted(row["to_address"] for row in jobs.list_outbox(fk))
    assert sent_to == ["boss@example.com", "seller@example.com"]
    with fk.engine.connect() as conn:
        logged = conn.execute(sa.select(sa.func.count()).select_from(fk.schema.system["crm_reminder_log"])).scalar()
    assert logged == 1


def test_bad_reminders_are_refused_with_their_place(tmp_path: Path) -> None:
    write_pack(tmp_path, "bad", {
        "reminders/a.yaml": """
            name: by_title
            label: {en: By title, zh-CN: 按标题}
            entity: deal
            date: title
            actions:
              - notify: {to: [owner], message: {en: x, zh-CN: x}}
        """,
        "reminders/b.yaml": """
            name: both
            label: {en: Both, zh-CN: 两者}
            entity: deal
            date: close_date
            days_before: 3
            days_after: 3
            actions:
              - notify: {to: ["role:nobody"], message: {en: x, zh-CN: x}}
        """,
    }, depends=["testkit"])
    with pytest.raises(PackError) as error:
        load_registry(["bad"], [tmp_path, FIXTURE_PACKS])
    text = str(error.value)
    assert "reminders/a.yaml:4" in text and "'title' must be a date or datetime field of deal (it is a text)" in text
    assert "reminders/b.yaml" in text


# -- a changed workflow never strands records -------------------------------------------------


def _job_pack(root: Path, states: list[str], moved: str = "") -> None:
    import shutil

    shutil.rmtree(root / "jobs", ignore_errors=True)
    options = ", ".join(f"{{value: {s}, label: {{en: {s}, zh-CN: {s}}}}}" for s in states)
    write_pack(root, "jobs", {
        "entities/job.yaml": entity_yaml("job", f"""
            - {{name: title, type: text, label: {{en: Title, zh-CN: 标题}}}}
            - {{name: phase, type: picklist, label: {{en: Phase, zh-CN: 阶段}}, options: [{options}]}}
        """),
        "workflows/job.yaml": f"""
            name: job_flow
            label: {{en: Jobs, zh-CN: 工作}}
            entity: job
            field: phase
            initial: open
            {moved}
            states: [{", ".join(f"{{name: {s}}}" for s in states)}]
            transitions:
              - {{name: park, label: {{en: Park, zh-CN: 搁置}}, from: [open], to: {states[1]}}}
        """,
    })


def test_removing_a_state_that_records_are_in_is_refused_unless_mapped(tmp_path: Path, make_site) -> None:  # type: ignore[no-untyped-def]
    from crm_platform.engine.migration.apply import PlanRefused

    _job_pack(tmp_path, ["open", "waiting", "done"])
    v1 = make_site(["jobs"], search=[tmp_path])
    parked = v1.records.create(SYSTEM, "job", {"title": "parked"})
    v1.workflows.fire(SYSTEM, "job", parked["id"], "park")
    v1.records.create(SYSTEM, "job", {"title": "still open"})

    _job_pack(tmp_path, ["open", "done"])
    v2 = make_site(["jobs"], search=[tmp_path], sync=False)
    plan = v2.plan()
    assert "1 job record(s) are in the state 'waiting', which the workflow 'job_flow' no longer has" in plan.describe()
    assert "moved_states (waiting: <state>)" in plan.describe()
    with pytest.raises(PlanRefused):
        v2.sync()
    assert v1.records.get(SYSTEM, "job", parked["id"])["phase"] == "waiting"  # nothing changed

    _job_pack(tmp_path, ["open", "done"], moved="moved_states: {waiting: open}")
    v3 = make_site(["jobs"], search=[tmp_path], sync=False)
    assert "move 1 job record(s) from the retired state 'waiting' to 'open'" in v3.plan().describe()
    v3.sync()
    after = v3.records.get(SYSTEM, "job", parked["id"])
    assert (after["phase"], after["version"]) == ("open", parked["version"] + 2)
    assert [(h["from_state"], h["to_state"], h["transition"]) for h in v3.workflows.history("job", parked["id"])][-1] == ("waiting", "open", "_state_moved")
    assert v3.plan().empty


def test_moved_states_must_name_a_retired_state_and_a_current_one(tmp_path: Path) -> None:
    _job_pack(tmp_path, ["open", "done"], moved="moved_states: {open: done, waiting: limbo}")
    with pytest.raises(PackError) as error:
        load_registry(["jobs"], [tmp_path])
    text = str(error.value)
    assert "'open' is still one of its states" in text
    assert "must move to one of its states, not 'limbo'" in text


# -- a dependent pack extends a workflow -----------------------------------------------------


def _extension(root: Path, workflow: str) -> None:
    write_pack(root, "flowext", {
        "entities/deal.yaml": """
            extends: deal
            picklist_values:
              stage:
                - {value: custom_review, label: {en: Custom review, zh-CN: 定制评审}}
        """,
        "workflows/deal.yaml": workflow,
    }, depends=["flowkit"])


def test_an_extension_adds_states_and_replaces_a_transition(tmp_path: Path, make_site) -> None:  # type: ignore[no-untyped-def]
    _extension(tmp_path, """
        extends: deal_flow
        states:
          - name: custom_review
        transitions:
          - name: submit_custom
            label: {en: Custom review, zh-CN: 定制评审}
            from: [open]
            to: custom_review
          - name: lose            # replaces the base transition: approvers only, no comment needed
            label: {en: Mark lost, zh-CN: 输单}
            from: [open, custom_review]
            to: lost
            roles: [approver]
    """)
    site = make_site(["flowext"], search=[tmp_path, FIXTURE_PACKS])
    flow = site.workflows.of("deal")
    assert flow is not None and flow.state("custom_review") is not None and flow.state("won") is not None
    assert [t.name for t in flow.transitions].count("lose") == 1 and flow.transition("lose").roles == ("approver",)
    company = site.records.create(SYSTEM, "company", {"name": "Co"})
    deal = site.records.create(SYSTEM, "deal", {"title": "Vase order", "company": company["id"]})
    assert site.workflows.fire(SYSTEM, "deal", deal["id"], "submit_custom")["stage"] == "custom_review"
    assert site.workflows.fire(SYSTEM, "deal", deal["id"], "lose")["stage"] == "lost"  # no comment asked any more


def test_extension_problems_point_at_the_extending_file(tmp_path: Path) -> None:
    _extension(tmp_path, """
        extends: deal_flow
        transitions:
          - name: submit_custom
            label: {en: Custom review, zh-CN: 定制评审}
            from: [opne]
            to: custom_review
    """)
    with pytest.raises(PackError) as error:
        load_registry(["flowext"], [tmp_path, FIXTURE_PACKS])
    text = str(error.value)
    assert "flowext/workflows/deal.yaml:5:" in text and "unknown state 'opne'; did you mean 'open'?" in text
    assert "unknown state 'custom_review'" in text  # the extension added the picklist value but not the state
    _extension(tmp_path, "extends: deal_flw\n")
    with pytest.raises(PackError) as unknown:
        load_registry(["flowext"], [tmp_path, FIXTURE_PACKS])
    assert "flowext/workflows/deal.yaml:1:10: unknown workflow 'deal_flw'; did you mean 'deal_flow'?" in str(unknown.value)
