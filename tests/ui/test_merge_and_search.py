"""Duplicates, merge and global search on the standard pack, through the real app: the API's 409
and `ignore_duplicates`, the form's warning and "save anyway", the merge screen moving every
related record to the survivor, and the search box that never shows what a user may not read."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from crm_platform.engine.files import Attachments
from crm_platform.engine.global_search import global_search
from crm_platform.engine.merge import MergeService
from crm_platform.engine.records.actor import Actor
from crm_platform.engine.records.list_query import Filter, ListQuery
from crm_platform.engine.site import Site
from crm_platform.ui.app import create_app
from tests.helpers import log_in
from tests.packs.test_crm_standard_flows import staff

SYSTEM = Actor.system()


@pytest.fixture
def people(site: Site) -> dict[str, Actor]:
    found = staff(site)
    unit = site.permissions.create_unit("East sales", "department")
    user_id = site.users.create_user("east_rep", "east_rep-password", unit_id=unit)
    site.permissions.assign_role(user_id, "sales_rep")
    time.sleep(0.6)
    found["east_rep"] = site.users.actor(user_id)  # type: ignore[assignment]
    return found


@pytest.fixture
def app_client(site: Site) -> Iterator[TestClient]:
    with TestClient(create_app(site)) as client:
        yield client


def token(site: Site, actor: Actor) -> dict[str, str]:
    value, _ = site.users.create_token(actor.user_id, "tests")
    return {"Authorization": f"Bearer {value}"}


def ids(site: Site, entity: str, **filters: object) -> list[int]:
    query = ListQuery(filters=tuple(Filter(k, "eq", v) for k, v in filters.items()), page_size=200)
    return sorted(r["id"] for r in site.records.list(SYSTEM, entity, query).records)


# -- duplicates on create ------------------------------------------------------------------------
def test_the_api_answers_409_with_the_matches_then_creates_when_told(site: Site, people: dict[str, Actor], app_client: TestClient) -> None:
    auth = token(site, people["rep"])
    first = app_client.post("/api/v1/records/account", json={"name": "佛山市华夏陶瓷有限公司", "phone": "0757-8888 0000"}, headers=auth)
    assert first.status_code == 201
    again = app_client.post("/api/v1/records/account", json={"name": "佛山华夏陶瓷", "phone": "+86 757 8888 0000"}, headers=auth)
    assert again.status_code == 409
    error = again.json()["error"]
    assert error["code"] == "possible_duplicate"
    [match] = error["matches"]
    assert match["id"] == first.json()["id"] and match["url"] == f"/app/account/{first.json()['id']}"
    assert sorted(r["kind"] for r in match["reasons"]) == ["name", "phone"]
    assert ids(site, "account") == [first.json()["id"]]
    anyway = app_client.post("/api/v1/records/account", json={"name": "佛山华夏陶瓷", "phone": "+86 757 8888 0000", "ignore_duplicates": True}, headers=auth)
    assert anyway.status_code == 201 and anyway.json()["name"] == "佛山华夏陶瓷"
    # The check alone, before creating anything.
    check = app_client.post("/api/v1/duplicates/account", json={"name": "佛山华夏陶瓷 有限公司", "email": None}, headers=auth)
    assert check.status_code == 200 and {m["id"] for m in check.json()["matches"]} >= {first.json()["id"]}
    # A rep of another unit is told nothing about them.
    outsider = app_client.post("/api/v1/records/account", json={"name": "佛山华夏陶瓷"}, headers=token(site, people["east_rep"]))
    assert outsider.status_code == 201


def test_the_form_warns_with_links_and_saves_anyway(site: Site, people: dict[str, Actor], app_client: TestClient) -> None:
    original = site.records.create(people["rep"], "account", {"name": "佛山市华夏陶瓷有限公司", "email": "Info@HuaXia.cn"})
    csrf = log_in(app_client, "rep", "rep-password")
    form = app_client.get("/app/account/new").text
    assert 'id="duplicate-check"' in form and 'hx-post="/app/account/duplicates"' in form
    # As the user types: a fragment naming the match.
    live = app_client.post("/app/account/duplicates", data={"csrf_token": csrf, "name": "佛山华夏陶瓷", "customer_type": "dealer"})
    assert live.status_code == 200 and "<nav" not in live.text
    assert f'href="/app/account/{original["id"]}"' in live.text and "佛山市华夏陶瓷有限公司" in live.text
    nothing = app_client.post("/app/account/duplicates", data={"csrf_token": csrf, "name": "Glaze House", "customer_type": "dealer"})
    assert "duplicate-matches" not in nothing.text
    # Saving: nothing is saved, the form comes back with the warning, the links and "save anyway".
    data = {"csrf_token": csrf, "name": "佛山华夏陶瓷", "customer_type": "dealer", "email": "info@huaxia.CN"}
    warned = app_client.post("/app/account/new", data=data, follow_redirects=False)
    assert warned.status_code == 409
    assert 'id="possible-duplicates"' in warned.text and f'href="/app/account/{original["id"]}"' in warned.text
    assert 'formaction="/app/account/new/anyway"' in warned.text and 'value="佛山华夏陶瓷"' in warned.text
    assert ids(site, "account") == [original["id"]]
    saved = app_client.post("/app/account/new/anyway", data=data, follow_redirects=False)
    assert saved.status_code == 303
    new_id = int(saved.headers["location"].rsplit("/", 1)[1])
    assert ids(site, "account") == sorted([original["id"], new_id])
    # A form that also has an error shows the error first; the warning comes once it is valid.
    invalid = app_client.post("/app/account/new", data={"csrf_token": csrf, "name": "佛山华夏陶瓷", "customer_type": ""}, follow_redirects=False)
    assert invalid.status_code == 422 and 'id="possible-duplicates"' not in invalid.text


# -- merge ---------------------------------------------------------------------------------------
def test_merge_moves_everything_to_the_survivor_and_deletes_the_loser(site: Site, people: dict[str, Actor], app_client: TestClient) -> None:
    rep, manager = people["rep"], people["lead"]
    keep = site.records.create(rep, "account", {"name": "佛山市华夏陶瓷有限公司", "customer_type": "dealer"})
    lose = site.records.create(rep, "account", {"name": "佛山华夏陶瓷", "phone": "0757-8888 0000", "email": "info@huaxia.cn", "ignore_duplicates": True})
    contacts = [site.records.create(rep, "contact", {"name": name, "account": lose["id"], "mobile": mobile})["id"]
                for name, mobile in (("吴磊", "13800000001"), ("Liu Yang", "13800000002"))]
    deal = site.records.create(rep, "opportunity", {"name": "Lobby tiles", "account": lose["id"], "contact": contacts[0]})
    visit = site.records.create(rep, "activity", {"subject": "Showroom visit", "kind": "visit", "account": lose["id"], "occurred_at": "2026-03-02T10:00:00+08:00"})
    lead = site.records.create(rep, "lead", {"company": "Huaxia tiles", "account": lose["id"]})
    Attachments(site).attach("account", lose["id"], b"card", "business-card.txt", "text/plain", rep.user_id)
    site.permissions.share("account", lose["id"], "read", rep.user_id, user_id=people["cfo"].user_id)

    log_in(app_client, "lead", "lead-password")
    screen = app_client.get(f"/app/account/{keep['id']}/merge?with={lose['id']}")
    assert screen.status_code == 200
    assert "佛山华夏陶瓷" in screen.text and 'name="pick:phone"' in screen.text and 'name="pick:code"' not in screen.text
    assert re.search(r"Contacts \(Account\): 2", screen.text) and "Attachments: 1" in screen.text
    picker = app_client.get(f"/app/account/{keep['id']}/merge")
    assert f'href="/app/account/{keep["id"]}/merge?with={lose["id"]}"' in picker.text  # offered as a possible duplicate
    form = {"csrf_token": app_client.csrf, "with": str(lose["id"]), "pick:phone": "loser", "pick:email": "loser", "pick:name": "survivor",
            "survivor_version": str(site.records.get(SYSTEM, "account", keep["id"])["version"]),
            "loser_version": str(site.records.get(SYSTEM, "account", lose["id"])["version"])}
    merged = app_client.post(f"/app/account/{keep['id']}/merge", data=form, follow_redirects=False)
    assert merged.status_code == 303 and merged.headers["location"] == f"/app/account/{keep['id']}"

    survivor = site.records.get(SYSTEM, "account", keep["id"])
    assert (survivor["name"], survivor["phone"], survivor["email"]) == ("佛山市华夏陶瓷有限公司", "0757-8888 0000", "info@huaxia.cn")
    assert ids(site, "contact", account=keep["id"]) == sorted(contacts)
    assert ids(site, "opportunity", account=keep["id"]) == [deal["id"]]
    assert ids(site, "activity", account=keep["id"]) == [visit["id"]]
    assert site.records.get(SYSTEM, "lead", lead["id"])["account"] == keep["id"]
    assert [a["name"] for a in Attachments(site).of("account", keep["id"])] == ["business-card.txt"]
    assert [s["user_id"] for s in site.permissions.shares_of("account", keep["id"])] == [people["cfo"].user_id]
    # The loser is in the recycle bin, with a note; the survivor's history names it.
    loser = site.records.get(SYSTEM, "account", lose["id"], include_deleted=True)
    assert loser["deleted_at"] is not None and ids(site, "account") == [keep["id"]]
    note = [h for h in site.records.history(SYSTEM, "account", lose["id"]) if h["action"] == "merge"]
    assert note[0]["field"] == "merged_into" and note[0]["new"]["id"] == keep["id"]
    kept = site.records.history(SYSTEM, "account", keep["id"])
    assert any(h["action"] == "merge" and h["new"]["id"] == lose["id"] for h in kept)
    assert any(h["field"] == "phone" and h["new"] == "0757-8888 0000" and h["changed_by"] == manager.user_id for h in kept)
    moved = [h for h in site.records.history(SYSTEM, "contact", contacts[0]) if h["field"] == "account"]
    assert (moved[-1]["old"], moved[-1]["new"]) == (lose["id"], keep["id"])
    # The survivor's detail page shows what moved.
    detail = app_client.get(f"/app/account/{keep['id']}").text
    assert "吴磊" in detail and "Lobby tiles" in detail and "Showroom visit" in detail and "business-card.txt" in detail


def test_merge_needs_update_on_the_survivor_and_delete_on_the_loser(site: Site, people: dict[str, Actor], app_client: TestClient) -> None:
    rep = people["rep"]
    keep = site.records.create(rep, "account", {"name": "Kiln Works"})
    lose = site.records.create(rep, "account", {"name": "Kiln Works Ltd", "ignore_duplicates": True})
    secret = site.records.create(people["east_rep"], "account", {"name": "Kiln Works Co"})
    log_in(app_client, "rep", "rep-password")  # a rep may not delete accounts
    refused = app_client.post(f"/app/account/{keep['id']}/merge", data={"csrf_token": app_client.csrf, "with": str(lose["id"])})
    assert refused.status_code == 403 and ids(site, "account", id=lose["id"]) == [lose["id"]]
    log_in(app_client, "lead", "lead-password")
    unseen = app_client.get(f"/app/account/{keep['id']}/merge?with={secret['id']}")
    assert unseen.status_code == 404
    stale = app_client.post(f"/app/account/{keep['id']}/merge", data={"csrf_token": app_client.csrf, "with": str(lose["id"]), "survivor_version": "7"})
    assert stale.status_code == 409 and 'id="merge-error"' in stale.text


def test_merge_moves_many_to_many_links(site: Site, people: dict[str, Actor]) -> None:
    admin = site.users.actor(site.users.create_user("boss", "boss-password", is_admin=True))
    assert admin is not None
    one = site.records.create(admin, "competitor", {"name": "Marco Polo Ceramics"})
    two = site.records.create(admin, "competitor", {"name": "Marco Polo"})
    account = site.records.create(admin, "account", {"name": "Harbour Hotel"})
    only_two = site.records.create(admin, "opportunity", {"name": "Lobby", "account": account["id"], "competitors": [two["id"]]})
    both = site.records.create(admin, "opportunity", {"name": "Spa", "account": account["id"], "competitors": [one["id"], two["id"]]})
    result = MergeService(site).merge(admin, "competitor", one["id"], two["id"])
    assert result.moved["links"] == 2
    assert site.records.get(SYSTEM, "opportunity", only_two["id"])["competitors"] == [one["id"]]
    assert site.records.get(SYSTEM, "opportunity", both["id"])["competitors"] == [one["id"]]
    assert site.records.get(SYSTEM, "competitor", two["id"], include_deleted=True)["deleted_at"] is not None


def test_merging_leads_keeps_the_survivors_state_and_moves_the_workflow_history(site: Site, people: dict[str, Actor]) -> None:
    rep = people["rep"]
    keep = site.records.create(rep, "lead", {"company": "东莞市新港酒店有限公司", "contact_name": "Wu"})
    lose = site.records.create(rep, "lead", {"company": "东莞新港酒店", "contact_name": "Wu", "ignore_duplicates": True})
    site.workflows.fire(rep, "lead", lose["id"], "start_working")
    admin = site.users.actor(site.users.create_user("boss", "boss-password", is_admin=True))
    assert admin is not None
    preview = MergeService(site).preview(admin, "lead", keep["id"], lose["id"])
    assert "status" not in {c.field.name for c in preview.fields if c.mergeable}  # only transitions change it
    MergeService(site).merge(admin, "lead", keep["id"], lose["id"], ["contact_name"])
    assert site.records.get(SYSTEM, "lead", keep["id"])["status"] == "new"
    steps = [(h["transition"], h["to_state"]) for h in site.workflows.history("lead", keep["id"])]
    assert ("start_working", "working") in steps and steps[-1] == ("_merge", "new")
    assert site.workflows.history("lead", lose["id"]) == []


# -- global search -------------------------------------------------------------------------------
def test_search_finds_records_across_entities_but_never_unreadable_ones(site: Site, people: dict[str, Actor], app_client: TestClient) -> None:
    rep, outsider = people["rep"], people["east_rep"]
    account = site.records.create(rep, "account", {"name": "Huaxia Ceramics Trading"})
    site.records.create(rep, "contact", {"name": "Huaxia Buyer", "account": account["id"], "mobile": "13800000009"})
    for n in range(6):
        site.records.create(rep, "lead", {"company": f"Huaxia showroom {n}", "phone": f"0757-8000 100{n}", "ignore_duplicates": True})
    site.records.create(outsider, "account", {"name": "Huaxia Secret Works"})

    groups = {g.entity.name: g for g in global_search(site, rep, "huaxia")}
    assert sorted(groups) == ["account", "contact", "lead"]
    assert [r["name"] for r in groups["account"].records] == ["Huaxia Ceramics Trading"]
    assert len(groups["lead"].records) == 5 and groups["lead"].more and groups["lead"].list_url == "/app/lead?q=huaxia"
    assert [r["name"] for r in global_search(site, outsider, "huaxia")[0].records] == ["Huaxia Secret Works"]

    log_in(app_client, "rep", "rep-password")
    home = app_client.get("/").text
    assert 'action="/search"' in home and 'id="global-search-q"' in home
    page = app_client.get("/search", params={"q": "huaxia"})
    assert page.status_code == 200
    assert 'id="search-account"' in page.text and 'id="search-contact"' in page.text and 'id="search-lead"' in page.text
    assert "Huaxia Ceramics Trading" in page.text and "Huaxia Buyer" in page.text and "Secret" not in page.text
    assert 'href="/app/lead?q=huaxia"' in page.text and 'href="/app/account?q=huaxia"' not in page.text
    assert "Nothing matches" in app_client.get("/search", params={"q": "no such thing"}).text

    api = app_client.get("/api/v1/search", params={"q": "huaxia ceramics"}, headers=token(site, rep))
    assert api.status_code == 200
    assert [(g["entity"], [r["_title"] for r in g["data"]]) for g in api.json()["groups"]] == [("account", ["Huaxia Ceramics Trading"])]
    theirs = app_client.get("/api/v1/search", params={"q": "huaxia", "entity": "account"}, headers=token(site, outsider)).json()
    assert [r["_title"] for g in theirs["groups"] for r in g["data"]] == ["Huaxia Secret Works"]
    assert app_client.get("/api/v1/search", params={"q": " "}, headers=token(site, rep)).status_code == 400
