"""Who sees and changes what, over an org tree of three levels and four roles, through every path
of the record service (list, get, update, delete, export, search, history)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from crm_platform.engine.records.actor import Actor
from crm_platform.engine.records.errors import Forbidden, NotFound, ValidationFailed
from crm_platform.engine.records.list_query import Filter, ListQuery
from crm_platform.engine.site import Site

ROLES = {
    "rep": [("read", "own"), ("create", "own"), ("update", "own"), ("export", "own")],
    "unit_viewer": [("read", "unit")],
    "manager": [("read", "unit_and_below"), ("update", "unit_and_below"), ("delete", "unit_and_below"), ("export", "unit_and_below")],
    "executive": [("read", "all"), ("export", "all")],
}


@dataclass
class Org:
    site: Site
    actors: dict[str, Actor]
    records: dict[str, int]  # owner username -> company id

    def names(self, user: str, query: ListQuery | None = None) -> set[str]:
        page = self.site.records.list(self.actors[user], "company", query or ListQuery(page_size=200))
        return {r["name"] for r in page.records}


@pytest.fixture
def org(kit: Site) -> Org:
    admin = kit.permissions
    group = admin.create_unit("Group", "group")
    s1, s2 = admin.create_unit("South", "subsidiary", group), admin.create_unit("East", "subsidiary", group)
    t1, t2, t3 = admin.create_unit("Team 1", "team", s1), admin.create_unit("Team 2", "team", s1), admin.create_unit("Team 3", "team", s2)
    for role, grants in ROLES.items():
        admin.create_role(role, role)
        for action, scope in grants:
            admin.grant(role, "company", action, scope)
    admin.set_field_access("rep", "company", "score", "hidden")
    admin.set_field_access("rep", "company", "revenue", "read_only")
    people = [  # username, unit, role, manager
        ("exec", group, "executive", None), ("mgr1", s1, "manager", "exec"), ("rep1", t1, "rep", "mgr1"),
        ("rep2", t2, "rep", "mgr1"), ("unitlead", t1, "unit_viewer", "mgr1"), ("coach", s2, "rep", "exec"),
        ("mid", t3, "rep", "coach"), ("rep3", t3, "rep", "mid"),
    ]
    ids: dict[str, int] = {}
    for username, unit, role, manager in people:
        ids[username] = kit.users.create_user(username, None, unit_id=unit, manager_id=ids.get(manager) if manager else None)
        admin.assign_role(ids[username], role)
    actors = {name: kit.users.actor(user_id) for name, user_id in ids.items()}
    records = {}
    for username in ids:
        owner = Actor(ids[username], username, False, actors[username].unit_id)  # owner and unit come from the creator
        records[username] = kit.records.create(Actor.system(), "company", {"name": f"of {username}", "score": "1", "revenue": "10"})["id"]
        table = kit.schema.tables["company"]
        with kit.engine.begin() as conn:
            conn.execute(table.update().where(table.c.id == records[username]).values(owner_id=owner.user_id, unit_id=owner.unit_id))
    return Org(kit, actors, records)  # type: ignore[arg-type]


EXPECTED_READ = {
    "exec": {"exec", "mgr1", "rep1", "rep2", "unitlead", "coach", "mid", "rep3"},
    "mgr1": {"mgr1", "rep1", "rep2", "unitlead"},  # unit and below: South, Team 1, Team 2
    "rep1": {"rep1"},
    "rep2": {"rep2"},
    "unitlead": {"unitlead", "rep1"},  # Team 1
    "coach": {"coach", "mid", "rep3"},  # own, and direct and indirect reports
    "mid": {"mid", "rep3"},
    "rep3": {"rep3"},
}


@pytest.mark.parametrize("user", sorted(EXPECTED_READ))
def test_list_get_and_search_show_exactly_the_scope(org: Org, user: str) -> None:
    expected = {f"of {name}" for name in EXPECTED_READ[user]}
    assert org.names(user) == expected
    assert org.names(user, ListQuery(search="of", page_size=200)) == expected
    assert org.site.records.list(org.actors[user], "company", ListQuery(page_size=200)).total == len(expected)
    for owner, record_id in org.records.items():
        if owner in EXPECTED_READ[user]:
            assert org.site.records.get(org.actors[user], "company", record_id)["name"] == f"of {owner}"
            org.site.records.history(org.actors[user], "company", record_id)
        else:
            with pytest.raises(NotFound):
                org.site.records.get(org.actors[user], "company", record_id)
            with pytest.raises(NotFound):
                org.site.records.history(org.actors[user], "company", record_id)


EXPECTED_UPDATE = {
    "exec": set(),  # reads everything, changes nothing
    "mgr1": {"mgr1", "rep1", "rep2", "unitlead"},
    "rep1": {"rep1"},
    "unitlead": set(),
    "coach": {"coach", "mid", "rep3"},
}


@pytest.mark.parametrize("user", sorted(EXPECTED_UPDATE))
def test_update_is_403_when_visible_404_when_not(org: Org, user: str) -> None:
    for owner, record_id in org.records.items():
        attempt = lambda: org.site.records.update(org.actors[user], "company", record_id, {"version": 1, "notes": f"by {user}"})  # noqa: E731
        if owner in EXPECTED_UPDATE[user]:
            assert attempt()["notes"] == f"by {user}"
        elif owner in EXPECTED_READ[user]:
            with pytest.raises(Forbidden):
                attempt()
        else:
            with pytest.raises(NotFound):
                attempt()


def test_delete_and_export_follow_their_own_grants(org: Org) -> None:
    access = org.site.access
    company = org.site.registry.entity("company")
    with pytest.raises(Forbidden):
        org.site.records.delete(org.actors["rep1"], "company", org.records["rep1"])
    org.site.records.delete(org.actors["mgr1"], "company", org.records["rep2"])
    with pytest.raises(NotFound):
        org.site.records.delete(org.actors["mgr1"], "company", org.records["rep3"])
    assert access.can(org.actors["exec"], company, "export")
    assert access.can(org.actors["rep1"], company, "export")
    assert not access.can(org.actors["unitlead"], company, "export")


def test_creating_needs_a_create_grant_and_sets_owner_and_unit(org: Org) -> None:
    rep1 = org.actors["rep1"]
    created = org.site.records.create(rep1, "company", {"name": "new by rep1"})
    assert (created["owner_id"], created["unit_id"]) == (rep1.user_id, rep1.unit_id)
    with pytest.raises(Forbidden):
        org.site.records.create(org.actors["exec"], "company", {"name": "exec cannot create"})


def test_hidden_fields_never_appear_and_cannot_be_written(org: Org) -> None:
    rep1 = org.actors["rep1"]
    record = org.site.records.get(rep1, "company", org.records["rep1"])
    assert "score" not in record and record["revenue"] == "10.00"
    listed = org.site.records.list(rep1, "company", ListQuery()).records[0]
    assert "score" not in listed
    assert all(h["field"] != "score" for h in org.site.records.history(rep1, "company", org.records["rep1"]))
    with pytest.raises(Forbidden) as hidden:
        org.site.records.update(rep1, "company", org.records["rep1"], {"version": 1, "score": "9"})
    assert [d.field for d in hidden.value.details] == ["score"] and "hidden" in hidden.value.message
    with pytest.raises(Forbidden) as read_only:
        org.site.records.update(rep1, "company", org.records["rep1"], {"version": 1, "revenue": "99", "revenue_currency": "USD"})
    assert {d.field for d in read_only.value.details} == {"revenue", "revenue_currency"}
    with pytest.raises(Forbidden):
        org.site.records.list(rep1, "company", ListQuery(filters=(Filter("score", "gte", 0),)))
    assert "score" in org.site.records.get(org.actors["mgr1"], "company", org.records["rep1"])


def test_payload_cannot_set_owner_unit_or_id(org: Org) -> None:
    rep1 = org.actors["rep1"]
    for key, value in (("owner_id", org.actors["rep2"].user_id), ("unit_id", 1), ("id", 999), ("created_by", 1), ("deleted_at", None)):
        with pytest.raises(ValidationFailed) as caught:
            org.site.records.update(rep1, "company", org.records["rep1"], {"version": 1, key: value})
        assert caught.value.details[0].field == key


def test_sharing_a_record_with_a_user_or_unit(org: Org) -> None:
    admin = org.site.permissions
    rep2 = org.actors["rep2"]
    record_id = org.records["rep1"]
    with pytest.raises(NotFound):
        org.site.records.get(rep2, "company", record_id)
    admin.share("company", record_id, "read", by=None, user_id=rep2.user_id)
    assert org.site.records.get(rep2, "company", record_id)["name"] == "of rep1"
    with pytest.raises(Forbidden):
        org.site.records.update(rep2, "company", record_id, {"version": 1, "notes": "x"})
    admin.share("company", record_id, "edit", by=None, unit_id=org.actors["rep3"].unit_id)
    assert org.site.records.update(org.actors["rep3"], "company", record_id, {"version": 1, "notes": "edited by team 3"})["notes"] == "edited by team 3"


def test_reassigning_a_leavers_records(org: Org) -> None:
    rep1, rep2 = org.actors["rep1"], org.actors["rep2"]
    counts = org.site.permissions.reassign(rep1.user_id, rep2.user_id)
    assert counts == {"company": 1}
    assert org.names("rep2") == {"of rep1", "of rep2"}
    assert org.names("rep1") == set()
    moved = org.site.records.get(rep2, "company", org.records["rep1"])
    assert (moved["owner_id"], moved["unit_id"]) == (rep2.user_id, rep2.unit_id)


def test_policy_changes_apply_without_a_restart(org: Org) -> None:
    rep1 = org.actors["rep1"]
    assert org.names("rep1") == {"of rep1"}
    org.site.permissions.grant("rep", "company", "read", "all")
    import time

    time.sleep(0.6)  # the policy version is checked at most twice a second
    assert len(org.names("rep1")) == 8
    assert rep1.user_id is not None


def test_role_inheritance_and_deep_chains(org: Org) -> None:
    admin = org.site.permissions
    previous = "rep"
    for depth in range(12):  # deeper than Casbin's default limit of 10
        name = f"level{depth}"
        admin.create_role(name, name)
        admin.include_role(name, previous)
        previous = name
    user = org.site.users.create_user("deep", "deep-password", unit_id=org.actors["rep1"].unit_id)
    admin.assign_role(user, previous)
    import time

    time.sleep(0.6)
    actor = org.site.users.actor(user)
    assert actor is not None
    assert org.site.access.scope(actor, org.site.registry.entity("company"), "read") == "own"
    created = org.site.records.create(actor, "company", {"name": "deep inheritance"})
    assert org.site.records.get(actor, "company", created["id"])["name"] == "deep inheritance"


def test_users_without_a_role_see_nothing(kit: Site) -> None:
    user_id = kit.users.create_user("nobody", "nobody-password")
    actor = kit.users.actor(user_id)
    assert actor is not None
    with pytest.raises(Forbidden):
        kit.records.list(actor, "company", ListQuery())
