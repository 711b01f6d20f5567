"""The rules, workflow and menu designers through their screens: a rule added and enforced after
applying, live checking with line and column, a new workflow applied and fired over the API,
a pack's workflow extended (with a new picklist value), the diagram, a menu in the navigation,
and bad input refused with a clear message and nothing written."""

from __future__ import annotations

import html
import json
import re
from typing import Any
from urllib.parse import quote_plus

import pytest
from starlette.testclient import TestClient

from crm_platform.engine.site import Site
from crm_platform.engine.site_layer import SiteLayer
from crm_platform.ui.app import create_app
from tests.conftest import FIXTURE_PACKS
from tests.helpers import log_in, user_with_role


def _site(make_site, monkeypatch: pytest.MonkeyPatch, pack: str) -> Site:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("CRM_PACKS_PATH", str(FIXTURE_PACKS))
    site = make_site([pack], search=[FIXTURE_PACKS])
    site.users.create_user("boss", "boss-password", "Boss", is_admin=True)
    return site


@pytest.fixture
def kit_site(make_site, monkeypatch: pytest.MonkeyPatch) -> Site:  # type: ignore[no-untyped-def]
    return _site(make_site, monkeypatch, "testkit")


@pytest.fixture
def flow_site(make_site, monkeypatch: pytest.MonkeyPatch) -> Site:  # type: ignore[no-untyped-def]
    return _site(make_site, monkeypatch, "flowkit")


def client_for(site: Site) -> TestClient:
    client = TestClient(create_app(site))
    client.__enter__()
    log_in(client, "boss", "boss-password")
    return client


@pytest.fixture
def boss(kit_site: Site):  # type: ignore[no-untyped-def]
    client = client_for(kit_site)
    yield client
    client.__exit__(None, None, None)


@pytest.fixture
def flow_boss(flow_site: Site):  # type: ignore[no-untyped-def]
    client = client_for(flow_site)
    yield client
    client.__exit__(None, None, None)


def post(client: TestClient, url: str, data: dict[str, Any]) -> Any:
    """A form post; list values repeat the input (checkboxes)."""
    flat: list[tuple[str, str]] = [("csrf_token", client.csrf)]
    for key, value in data.items():
        for v in value if isinstance(value, list) else [value]:
            flat.append((key, str(v)))
    body = "&".join(f"{quote_plus(k)}={quote_plus(v)}" for k, v in flat)
    return client.post(url, content=body.encode(), headers={"Content-Type": "application/x-www-form-urlencoded"})


def files_of(page: str) -> dict[str, str]:
    found = re.search(r'<textarea name="files" hidden>(.*?)</textarea>', page, re.S)
    assert found, page[:3000]
    return json.loads(html.unescape(found.group(1)))  # type: ignore[no-any-return]


def draft_of(page: str) -> str:
    found = re.search(r'<textarea name="draft" hidden>(.*?)</textarea>', page, re.S)
    assert found, page[:3000]
    return html.unescape(found.group(1))


def apply(client: TestClient, preview: Any, note: str = "test") -> None:
    assert preview.status_code == 200, re.findall(r'<ul class="problems">.*?</ul>', preview.text, re.S) or preview.text[:3000]
    applied = post(client, "/admin/design/apply", {"files": json.dumps(files_of(preview.text)), "note": note, "back": "/admin/design"})
    assert applied.status_code == 200 and "is applied and served" in applied.text, applied.text[:3000]


def edit(client: TestClient, flow: str, draft: str, op: str, /, **values: Any) -> Any:
    return post(client, f"/admin/design/workflows/{flow}/edit", {"draft": draft, "op": op, **values})


def api_create(client: TestClient, entity: str, values: dict[str, Any]) -> Any:
    return client.post(f"/api/v1/records/{entity}", json=values)


def test_a_validation_rule_added_in_the_editor_is_enforced_after_applying(boss: TestClient, kit_site: Site) -> None:
    page = boss.get("/admin/design/rules")
    assert page.status_code == 200
    assert 'hx-trigger="keyup changed delay:500ms"' in page.text and "/admin/design/rules/check" in page.text
    assert "rules/site.rules" in page.text
    preview = post(boss, "/admin/design/rules/add", {"file": "rules/site.rules", "text": "", "kind": "validate", "entity": "deal",
                                                     "message": 'A won deal needs a "close date"', "on": "close_date",
                                                     "expression": 'stage = "won" and isblank(close_date)'})
    assert '+validate deal "A won deal needs a \\"close date\\"" on close_date when stage = "won" and isblank(close_date)' in html.unescape(preview.text)
    apply(boss, preview)
    assert SiteLayer(kit_site).current_files()["rules/site.rules"].startswith("validate deal")
    company = api_create(boss, "company", {"name": "Foshan Tiles"}).json()
    refused = api_create(boss, "deal", {"title": "Big order", "company": company["id"], "stage": "won"})
    assert refused.status_code == 422
    assert [(d["field"], d["message"]) for d in refused.json()["error"]["details"]] == [("close_date", 'A won deal needs a "close date"')]
    accepted = api_create(boss, "deal", {"title": "Big order", "company": company["id"], "stage": "won", "close_date": "2026-05-01"})
    assert accepted.status_code == 201, accepted.text
    # the file is then edited as text: the editor shows it, saving proposes the edited file
    page = boss.get("/admin/design/rules?file=rules/site.rules")
    assert "validate deal" in page.text and "ruleskit" not in page.text
    text = SiteLayer(kit_site).current_files()["rules/site.rules"] + 'default deal.title = "New deal"\n'
    apply(boss, post(boss, "/admin/design/rules", {"file": "rules/site.rules", "text": text}))
    assert api_create(boss, "deal", {"company": company["id"]}).json()["title"] == "New deal"


def test_live_check_shows_every_error_with_line_column_and_carets(boss: TestClient) -> None:
    text = 'validate deal "Too big" on amount\n  when amout > 1000000\nhide company.discount when kind != "dealer"\n'
    checked = post(boss, "/admin/design/rules/check", {"file": "rules/site.rules", "text": text})
    assert checked.status_code == 200
    body = html.unescape(checked.text)
    assert "line 2, column 8" in body and "unknown field 'amout' on deal; did you mean 'amount'?" in body
    assert "      when amout > 1000000\n           ^^^^^" in body
    assert "line 3" not in body  # the good statement has no error
    fine = post(boss, "/admin/design/rules/check", {"file": "rules/site.rules", "text": 'hide company.discount when kind != "dealer"\n'})
    assert "✓" in fine.text and "problems" not in fine.text
    statement = post(boss, "/admin/design/rules/statement/check", {"kind": "require", "entity": "company", "field": "emial", "expression": 'kind = "dealer"'})
    assert "emial" in statement.text and "require company.emial when" in html.unescape(statement.text)
    guard = post(boss, "/admin/design/check?entity=deal&purpose=condition&input=guard", {"guard": "not isblank(amout)"})
    assert "line 1, column 13" in guard.text and "did you mean &#39;amount&#39;" in guard.text
    value = post(boss, "/admin/design/check?entity=deal&purpose=formula&input=set_expr_0&field_input=set_field_0",
                 {"set_field_0": "close_date", "set_expr_0": '"soon"'})
    assert 'class="problems"' in value.text and "close_date" in value.text


def test_a_new_two_state_workflow_is_applied_and_fired_over_the_api(boss: TestClient, kit_site: Site) -> None:
    listing = boss.get("/admin/design/workflows?target=deal.stage")
    assert listing.status_code == 200 and 'value="deal.stage"' in listing.text and 'name="states" value="won"' in listing.text
    created = post(boss, "/admin/design/workflows/new", {"target": "deal.stage", "name": "deal_path", "label_en": "Deal path", "label_zh": "交易路径",
                                                          "states": ["open", "won"], "initial": "open"})
    assert created.status_code == 200, created.text[:2000]
    assert "<svg" in created.text and SiteLayer(kit_site).versions() == []  # a draft: nothing written yet
    changed = edit(boss, "deal_path", draft_of(created.text), "transition_save", transition="", name="win", label_en="Win", label_zh="赢单",
                   **{"from": ["open"]}, to="won", comment="optional", guard="not isblank(amount)")
    assert changed.status_code == 200, changed.text[:2000]
    assert json.loads(draft_of(changed.text))["data"]["transitions"] == [
        {"name": "win", "label": {"en": "Win", "zh-CN": "赢单"}, "from": ["open"], "to": "won", "guard": "not isblank(amount)"}]
    changed = edit(boss, "deal_path", draft_of(changed.text), "state_save", state="won", final="1")
    preview = post(boss, "/admin/design/workflows/deal_path/save", {"draft": draft_of(changed.text)})
    assert "workflows/deal_path.yaml" in files_of(preview.text)
    apply(boss, preview)
    flow = next(f for f in kit_site.registry.extra["workflows"] if f.name == "deal_path")
    assert [s.name for s in flow.states] == ["open", "won"] and flow.state("won").final
    company = api_create(boss, "company", {"name": "Canton Stone"}).json()
    deal = api_create(boss, "deal", {"title": "Quarry", "company": company["id"], "amount": "1200"}).json()
    assert deal["stage"] == "open"
    fired = boss.post(f"/api/v1/records/deal/{deal['id']}/transitions/win", json={})
    assert fired.status_code == 200, fired.text
    assert fired.json()["stage"] == "won"
    # the workflow now lists as the site's own and opens from the layer
    assert "deal_path" in boss.get("/admin/design/workflows").text
    draft = draft_of(boss.get("/admin/design/workflows/deal_path").text)
    assert json.loads(draft)["file"] == "workflows/deal_path.yaml"
    # a state with records in it is dropped: they move to another state when the change is applied
    used = edit(boss, "deal_path", draft, "state_remove", state="won", move_to="open")
    assert used.status_code == 422 and "still used by transitions win" in used.text
    step = edit(boss, "deal_path", draft, "transition_remove", transition="win")
    step = edit(boss, "deal_path", draft_of(step.text), "state_remove", state="won", move_to="open")
    assert json.loads(draft_of(step.text))["data"]["moved_states"] == {"won": "open"}
    apply(boss, post(boss, "/admin/design/workflows/deal_path/save", {"draft": draft_of(step.text)}))
    assert boss.get(f"/api/v1/records/deal/{deal['id']}").json()["stage"] == "open"


def test_a_packs_workflow_is_extended_with_a_new_state_and_transitions(flow_boss: TestClient, flow_site: Site) -> None:
    page = flow_boss.get("/admin/design/workflows/deal_flow")
    assert page.status_code == 200
    draft = draft_of(page.text)
    assert json.loads(draft)["data"] == {"extends": "deal_flow"}
    step = edit(flow_boss, "deal_flow", draft, "state_add", value="", new_value="on_hold", new_label_en="On hold", new_label_zh="搁置")
    assert step.status_code == 200, step.text[:2000]
    step = edit(flow_boss, "deal_flow", draft_of(step.text), "transition_save", transition="", name="hold", label_en="Put on hold",
                **{"from": ["open", "review"]}, to="on_hold", roles=["seller"], relations=["owner"], comment="required")
    step = edit(flow_boss, "deal_flow", draft_of(step.text), "transition_save", transition="", name="resume", label_en="Resume", **{"from": ["on_hold"]}, to="open")
    step = edit(flow_boss, "deal_flow", draft_of(step.text), "transition_save", transition="lose", label_en="Mark lost", label_zh="输单",
                **{"from": ["open", "on_hold"]}, to="lost", comment="required")  # replaces the pack's transition
    assert step.status_code == 200, step.text[:2000]
    step = edit(flow_boss, "deal_flow", draft_of(step.text), "state_save", state="on_hold", timer_rows="1", timer_minutes_0="1440", timer_fire_0="resume",
                set_rows="1", set_field_0="follow_up", set_expr_0="add_days(today(), 7)", work_list=["approver"])
    assert step.status_code == 200, step.text[:2000]
    svg = step.text[step.text.index("<svg"):step.text.index("</svg>")]
    assert "On hold" in svg and "Put on hold" in svg and "Resume" in svg
    preview = post(flow_boss, "/admin/design/workflows/deal_flow/save", {"draft": draft_of(step.text)})
    files = files_of(preview.text)
    assert files["workflows/deal_flow.yaml"].startswith("extends: deal_flow\n")
    assert "picklist_values:" in files["entities/deal.yaml"] and "on_hold" in files["entities/deal.yaml"]
    apply(flow_boss, preview)
    flow = next(f for f in flow_site.registry.extra["workflows"] if f.name == "deal_flow")
    assert [s.name for s in flow.states] == ["open", "won", "lost", "review", "on_hold"]
    assert flow.transition("lose").from_states == ("open", "on_hold") and flow.transition("submit") is not None
    assert flow.state("on_hold").timers[0].fire == "resume" and flow.state("on_hold").on_enter[0].field == "follow_up"
    assert "on_hold" in flow_site.registry.entity("deal").field("stage").option_values
    company = api_create(flow_boss, "company", {"name": "Jingdezhen Porcelain"}).json()
    deal = api_create(flow_boss, "deal", {"title": "Vases", "company": company["id"]}).json()
    held = flow_boss.post(f"/api/v1/records/deal/{deal['id']}/transitions/hold", json={"comment": "customer on holiday"})
    assert held.status_code == 200, held.text
    assert held.json()["stage"] == "on_hold" and held.json()["follow_up"]
    # a second change keeps the layer's entity file and extends it again
    page = flow_boss.get("/admin/design/workflows/deal_flow")
    assert json.loads(draft_of(page.text))["data"]["extends"] == "deal_flow"
    assert "changed by the site" in page.text and "added by the site" in page.text


def test_the_diagram_shows_every_state_and_transition(flow_boss: TestClient) -> None:
    page = flow_boss.get("/admin/design/workflows/deal_flow")
    svgs = re.findall(r"<svg.*?</svg>", page.text, re.S)
    assert len(svgs) == 2  # wide, and narrow for phones
    for svg in svgs:
        assert 'viewBox="' in svg and 'width="100%"' in svg
        for label in ("Open", "Won", "Lost", "In review"):
            assert f">{label}</text>" in svg
        for label in ("Submit for approval", "Approve", "Send back", "Mark won", "Mark lost", "Reopen"):
            assert label in svg
    assert "/admin/design/workflows/deal_flow" in flow_boss.get("/admin/design/workflows").text


def test_a_menu_item_added_in_the_editor_shows_in_the_navigation(boss: TestClient, kit_site: Site) -> None:
    page = boss.get("/admin/design/menus")
    assert page.status_code == 200 and "Sales" in page.text and "testkit" in page.text
    preview = post(boss, "/admin/design/menus", {"name": "back_office", "menu_label_en": "Back office", "menu_label_zh": "后台", "order": "5",
                                                 "entity": "tag", "label_en": "Tag list", "label_zh": "标签列表"})
    assert "menus.yaml" in files_of(preview.text)
    apply(boss, preview)
    nav = boss.get("/").text
    nav = nav[nav.index('<nav id="nav"'):nav.index("</nav>")]
    assert "Back office" in nav and 'href="/app/tag"' in nav and "Tag list" in nav
    assert nav.index("Back office") < nav.index("Sales")  # position 5 comes before the pack's menu
    apply(boss, post(boss, "/admin/design/menus/items", {"menu": "back_office", "entity": "deal", "view": "all"}))
    apply(boss, post(boss, "/admin/design/menus/back_office/items/1/move", {"direction": "up"}))
    menu = next(m for m in kit_site.registry.menus if m.name == "back_office")
    assert [(i.entity, i.view) for i in menu.items] == [("deal", "all"), ("tag", None)]
    nav = boss.get("/").text
    assert 'href="/app/deal?view=all"' in nav


def test_bad_input_is_refused_with_a_clear_message_and_writes_nothing(flow_boss: TestClient, flow_site: Site) -> None:
    draft = draft_of(flow_boss.get("/admin/design/workflows/deal_flow").text)
    unknown = edit(flow_boss, "deal_flow", draft, "transition_save", transition="", name="park", label_en="Park", **{"from": ["open"]}, to="parked")
    assert unknown.status_code == 422
    assert "transition &#39;park&#39;: &#39;parked&#39; is not a state of this workflow" in unknown.text
    assert draft_of(unknown.text) == draft
    bad_guard = edit(flow_boss, "deal_flow", draft, "transition_save", transition="", name="park", label_en="Park", **{"from": ["open"]}, to="lost",
                     guard='amount > "a lot"')
    assert bad_guard.status_code == 422 and "the guard does not check" in bad_guard.text
    assert "line 1, column" in bad_guard.text and "^" in bad_guard.text
    assert 'value="amount &gt; &#34;a lot&#34;"' in bad_guard.text or "amount &gt; &#34;a lot&#34;" in bad_guard.text  # what was typed stays
    assert draft_of(bad_guard.text) == draft
    pack_transition = edit(flow_boss, "deal_flow", draft, "transition_remove", transition="lose")
    assert pack_transition.status_code == 422 and "cannot remove" not in pack_transition.text and "not remove them" in pack_transition.text
    menu = post(flow_boss, "/admin/design/menus", {"name": "extras", "menu_label_en": "Extras", "entity": "dael"})
    assert menu.status_code == 422 and "unknown object &#39;dael&#39;; did you mean &#39;deal&#39;?" in menu.text
    pack_menu = post(flow_boss, "/admin/design/menus/items", {"menu": "sales", "entity": "deal"})
    assert pack_menu.status_code == 422 and "a pack&#39;s menu cannot be changed" in pack_menu.text
    rules = post(flow_boss, "/admin/design/rules", {"file": "site", "text": 'validate deal "x" when amout > 1\n'})
    assert rules.status_code == 422 and "nothing was saved" in rules.text and "line 1, column 24" in rules.text
    new_flow = post(flow_boss, "/admin/design/workflows/new", {"target": "deal.stage", "name": "second", "states": ["open"], "initial": "open"})
    assert new_flow.status_code == 422 and "deal already has the workflow &#39;deal_flow&#39;" in new_flow.text
    assert SiteLayer(flow_site).versions() == []


def test_only_administrators_design_rules_workflows_and_menus(kit_site: Site) -> None:
    user_with_role(kit_site, "clerk", "clerk-password", scope="own")
    with TestClient(create_app(kit_site)) as client:
        log_in(client, "clerk", "clerk-password")
        for url in ("/admin/design/rules", "/admin/design/workflows", "/admin/design/menus"):
            assert client.get(url).status_code == 403
        assert post(client, "/admin/design/check?entity=deal&input=guard", {"guard": "true"}).status_code == 403
        assert post(client, "/admin/design/menus", {"name": "x", "entity": "deal"}).status_code == 403


def test_picklist_values_for_new_states_merge_into_the_layers_own_entity_files() -> None:
    from crm_platform.ui.screens.design_flows import add_picklist_values, plain_yaml

    option = {"value": "on_hold", "label": {"en": "On hold", "zh-CN": "搁置"}}
    extension = "# deal changes of the site\nextends: deal\nfields:\n  - {name: region, type: text, label: {en: Region, zh-CN: 区域}}\n"
    merged = add_picklist_values({"entities/deal.yaml": extension}, "deal", "stage", [option])
    text = merged["entities/deal.yaml"]
    assert text.startswith("# deal changes of the site\n") and "name: region" in text
    assert plain_yaml(text)["picklist_values"] == {"stage": [option]}
    assert add_picklist_values(merged, "deal", "stage", [option]) == merged  # a value is added once
    declared = ("name: show\nlabel: {en: Show, zh-CN: 展会}\nfields:\n  - name: status\n    type: picklist\n    label: {en: Status, zh-CN: 状态}\n"
                "    options:\n      - {value: planned, label: {en: Planned, zh-CN: 计划}}\n")
    own = add_picklist_values({"entities/show.yaml": declared, "rules/x.rules": "x"}, "show", "status", [option])
    assert [o["value"] for o in plain_yaml(own["entities/show.yaml"])["fields"][0]["options"]] == ["planned", "on_hold"]
    assert own["rules/x.rules"] == "x"
    fresh = add_picklist_values({}, "company", "kind", [option])
    assert plain_yaml(fresh["entities/company.yaml"]) == {"extends": "company", "picklist_values": {"kind": [option]}}


def test_a_workflow_for_an_object_of_the_layer_adds_its_new_state_to_the_layers_entity(boss: TestClient, kit_site: Site) -> None:
    show = ("name: show\nlabel: {en: Show, zh-CN: 展会}\ntitle_field: name\nfields:\n  - {name: name, type: text, label: {en: Name, zh-CN: 名称}, required: true}\n"
            "  - name: status\n    type: picklist\n    label: {en: Status, zh-CN: 状态}\n    default: planned\n    options:\n"
            "      - {value: planned, label: {en: Planned, zh-CN: 计划}}\n      - {value: held, label: {en: Held, zh-CN: 已举办}}\n")
    SiteLayer(kit_site).apply({"entities/show.yaml": show}, "shows", "boss")
    created = post(boss, "/admin/design/workflows/new", {"target": "show.status", "name": "show_flow", "label_en": "Shows", "states": ["planned", "held"], "initial": "planned"})
    step = edit(boss, "show_flow", draft_of(created.text), "state_add", new_value="cancelled", new_label_en="Cancelled", new_label_zh="已取消", final="1")
    step = edit(boss, "show_flow", draft_of(step.text), "transition_save", transition="", name="cancel", label_en="Cancel", **{"from": ["*"]}, to="cancelled")
    step = edit(boss, "show_flow", draft_of(step.text), "transition_save", transition="", name="hold", label_en="Held", **{"from": ["planned"]}, to="held")
    assert step.status_code == 200, step.text[:2000]
    assert "any state" in step.text  # the diagram draws `from: [*]` from an "any state" box
    apply(boss, post(boss, "/admin/design/workflows/show_flow/save", {"draft": draft_of(step.text)}))
    assert kit_site.registry.entity("show").field("status").option_values == ("planned", "held", "cancelled")
    assert "entities/show_values.yaml" not in SiteLayer(kit_site).current_files()
    record = api_create(boss, "show", {"name": "Canton Fair"}).json()
    assert boss.post(f"/api/v1/records/show/{record['id']}/transitions/cancel", json={}).json()["status"] == "cancelled"
