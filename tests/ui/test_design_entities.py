"""The object designer through its screens: new objects with fields of many types, a picklist
added to a pack's entity as an extension, reordering and archiving fields (data back after a
rollback), the form layout and list view editors, and bad input refused on the editor."""

from __future__ import annotations

import html
import json
import re
from decimal import Decimal
from typing import Any

import pytest
from starlette.testclient import TestClient

from crm_platform.engine.records.actor import Actor
from crm_platform.engine.site import Site
from crm_platform.engine.site_layer import SiteLayer
from crm_platform.ui.app import create_app
from tests.conftest import FIXTURE_PACKS
from tests.helpers import log_in, user_with_role

SYSTEM = Actor.system()


@pytest.fixture
def kit_site(make_site, monkeypatch: pytest.MonkeyPatch) -> Site:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("CRM_PACKS_PATH", str(FIXTURE_PACKS))
    site = make_site(["testkit"], search=[FIXTURE_PACKS])
    site.users.create_user("boss", "boss-password", "Boss", is_admin=True)
    return site


@pytest.fixture
def boss(kit_site: Site):  # type: ignore[no-untyped-def]
    with TestClient(create_app(kit_site)) as client:
        log_in(client, "boss", "boss-password")
        yield client


def files_of(preview_html: str) -> dict[str, str]:
    """The layer files a preview page would apply."""
    found = re.search(r'<textarea name="files" hidden>(.*?)</textarea>', preview_html, re.S)
    assert found, preview_html[:2000]
    return json.loads(html.unescape(found.group(1)))  # type: ignore[no-any-return]


def post(client: TestClient, url: str, data: dict[str, Any] | list[tuple[str, str]]) -> Any:
    items = list(data.items()) if isinstance(data, dict) else list(data)
    flat: list[tuple[str, str]] = [("csrf_token", client.csrf)]
    for key, value in items:
        for v in value if isinstance(value, list) else [value]:
            flat.append((key, str(v)))
    body = "&".join(f"{_q(k)}={_q(v)}" for k, v in flat)
    return client.post(url, content=body.encode(), headers={"Content-Type": "application/x-www-form-urlencoded"})


def _q(text: str) -> str:
    from urllib.parse import quote_plus

    return quote_plus(text)


def propose_and_apply(client: TestClient, url: str, data: Any, note: str = "designed") -> dict[str, str]:
    """Submit an editor, check that its preview can be applied, apply it; the files applied."""
    preview = post(client, url, data)
    assert preview.status_code == 200, preview.text[:3000]
    assert 'name="files"' in preview.text and "disabled" not in re.search(r'<button type="submit" class="primary"[^>]*>', preview.text).group(0)
    files = files_of(preview.text)
    applied = client.post("/admin/design/apply", data={"csrf_token": client.csrf, "files": json.dumps(files), "note": note, "back": "/admin/design"})
    assert applied.status_code == 200 and "is applied and served" in applied.text, applied.text[:3000]
    return files


def add_field(client: TestClient, of: str, ftype: str, **values: Any) -> dict[str, str]:
    assert client.get(f"/admin/design/entities/{of}/new-field?type={ftype}").status_code == 200
    return propose_and_apply(client, f"/admin/design/entities/{of}/new-field", {"type": ftype, "on_form": "on", **values})


def create_exhibition(client: TestClient) -> None:
    page = client.get("/admin/design/entities/new")
    assert page.status_code == 200 and 'name="label_en"' in page.text
    propose_and_apply(client, "/admin/design/entities/new", {
        "label_en": "Exhibition", "label_zh": "展会", "plural_en": "Exhibitions", "plural_zh": "展会", "name": "", "icon": "calendar",
        "title_en": "Name", "title_zh": "名称", "title_name": "name"})


def test_a_new_object_with_fields_of_many_types_is_applied_and_served(kit_site: Site, boss: TestClient) -> None:
    create_exhibition(boss)
    entity = kit_site.registry.entity("exhibition")
    assert (entity.pack, entity.title_field, entity.label.zh_cn, entity.icon) == ("site", "name", "展会", "calendar")
    add_field(boss, "exhibition", "date", label_en="Starts on", label_zh="开始日期", required="on")
    add_field(boss, "exhibition", "integer", label_en="Booth count", label_zh="展位数", min="0", max="5000", default="10")
    add_field(boss, "exhibition", "money", label_en="Budget", label_zh="预算", currency="usd", precision="14", scale="2")
    add_field(boss, "exhibition", "reference", label_en="Organizer", label_zh="主办方", entity="company", on_delete="set_null")
    add_field(boss, "exhibition", "picklist", label_en="Status", label_zh="状态", default="planned",
              opt_value=["", "held"], opt_en=["Planned", "Held"], opt_zh=["计划中", "已举办"], opt_color=["#1e88e5", ""])
    add_field(boss, "exhibition", "many_to_many", label_en="Tags", label_zh="标签", entity="tag")
    add_field(boss, "exhibition", "formula", label_en="Budget per booth", label_zh="每展位预算", expression="round(budget / booth_count, 2)",
              result_type="decimal")
    add_field(boss, "exhibition", "auto_number", label_en="Number", label_zh="编号", format="EX-{YYYY}-{seq:4}")
    text = SiteLayer(kit_site).current_files()["entities/exhibition.yaml"]
    assert "- {name: organizer, type: reference, entity: company, label: {en: Organizer, zh-CN: 主办方}, on_delete: set_null}" in text
    assert "- {value: planned, label: {en: Planned, zh-CN: 计划中}, color: '#1e88e5'}" in text
    entity = kit_site.registry.entity("exhibition")
    assert [f.name for f in entity.fields] == ["name", "starts_on", "booth_count", "budget", "organizer", "status", "tags", "budget_per_booth", "number"]
    assert entity.field("budget").currency == "USD" and entity.field("status").default == "planned"
    company = kit_site.records.create(SYSTEM, "company", {"name": "Canton Fair Co"})
    show = kit_site.records.create(SYSTEM, "exhibition", {"name": "Canton Fair", "starts_on": "2026-10-15", "budget": "5000", "organizer": company["id"]})
    assert show["booth_count"] == 10 and show["status"] == "planned" and Decimal(str(show["budget_per_booth"])) == Decimal("500") and show["number"].startswith("EX-")
    page = boss.get("/admin/design/entities/exhibition")
    assert page.status_code == 200 and "Budget per booth" in page.text and "round(budget / booth_count, 2)" in page.text
    assert "/admin/design/entities/exhibition/fields/status" in page.text  # layer fields are editable


def test_a_picklist_added_to_a_pack_entity_is_an_extension(kit_site: Site, boss: TestClient) -> None:
    page = boss.get("/admin/design/entities/company")
    assert "read-only (testkit)" in page.text and "/admin/design/entities/company/fields/name" not in page.text
    files = add_field(boss, "company", "picklist", label_en="Tier", label_zh="等级", name="tier",
                      opt_value=["gold", "silver"], opt_en=["Gold", "Silver"], opt_zh=["金牌", "银牌"], opt_color=["#d4af37", ""])
    assert files["entities/company.yaml"].startswith("extends: company\nfields:\n  - name: tier\n    type: picklist\n")
    assert "fields: [tier]" in files["forms/company.yaml"] and "extends: main" in files["forms/company.yaml"]
    company = kit_site.registry.entity("company")
    assert company.field("tier").pack == "site" and company.field("tier").option_values == ("gold", "silver")
    assert kit_site.registry.forms["company.main"].sections[-1].fields == ("tier",)
    record = kit_site.records.create(SYSTEM, "company", {"name": "Gold Co", "tier": "gold"})
    assert boss.get(f"/app/company/{record['id']}").status_code == 200
    page = boss.get("/admin/design/entities/company")
    assert "/admin/design/entities/company/fields/tier" in page.text and "this site" in page.text
    # editing the layer's field: a third option, moved first with the button that works without JavaScript
    edit = boss.get("/admin/design/entities/company/fields/tier")
    assert edit.status_code == 200 and 'value="gold"' in edit.text
    values = {"label_en": "Tier", "label_zh": "等级", "opt_value": ["gold", "silver", "bronze"], "opt_en": ["Gold", "Silver", "Bronze"],
              "opt_zh": ["金牌", "银牌", "铜牌"], "opt_color": ["", "", ""]}
    moved = post(boss, "/admin/design/entities/company/fields/tier", {**values, "op": "opt_up:2"})
    assert moved.status_code == 200 and moved.text.index('value="bronze"') < moved.text.index('value="silver"')
    propose_and_apply(boss, "/admin/design/entities/company/fields/tier", {**values, "opt_value": ["gold", "bronze", "silver"],
                                                                           "opt_en": ["Gold", "Bronze", "Silver"], "opt_zh": ["金牌", "铜牌", "银牌"]})
    assert kit_site.registry.entity("company").field("tier").option_values == ("gold", "bronze", "silver")


def test_labels_icon_and_title_field_of_a_layer_object(kit_site: Site, boss: TestClient) -> None:
    create_exhibition(boss)
    add_field(boss, "exhibition", "text", label_en="Code", label_zh="代码")
    page = boss.get("/admin/design/entities/exhibition")
    assert 'value="Exhibition"' in page.text and "this site" in page.text
    refused = post(boss, "/admin/design/entities/exhibition", {"label_en": "Trade fair", "label_zh": "", "title_field": "code"})
    assert refused.status_code == 422 and "give the Chinese text" in refused.text
    files = propose_and_apply(boss, "/admin/design/entities/exhibition", {"label_en": "Trade fair", "label_zh": "交易会", "plural_en": "Trade fairs",
                                                                          "plural_zh": "交易会", "icon": "star", "title_field": "code"})
    assert "label: {en: Trade fair, zh-CN: 交易会}" in files["entities/exhibition.yaml"]
    entity = kit_site.registry.entity("exhibition")
    assert (entity.label.en, entity.plural_label.en, entity.icon, entity.title_field) == ("Trade fair", "Trade fairs", "star", "code")
    assert boss.get("/admin/design/entities/nothing_here").status_code == 404


def test_reordering_fields(kit_site: Site, boss: TestClient) -> None:
    create_exhibition(boss)
    add_field(boss, "exhibition", "date", label_en="Starts on", label_zh="开始日期")
    add_field(boss, "exhibition", "text", label_en="City", label_zh="城市", max_length="80")
    page = boss.get("/admin/design/entities/exhibition/order")
    assert page.status_code == 200 and 'value="up:city"' in page.text
    moved = post(boss, "/admin/design/entities/exhibition/order", {"item": ["name", "starts_on", "city"], "op": "up:city"})
    assert moved.status_code == 200
    assert re.findall(r'name="item" value="([a-z_]+)"', moved.text) == ["name", "city", "starts_on"]
    propose_and_apply(boss, "/admin/design/entities/exhibition/order", {"item": ["city", "name", "starts_on"]})
    assert [f.name for f in kit_site.registry.entity("exhibition").fields] == ["city", "name", "starts_on"]


def test_archiving_a_field_keeps_its_data_for_a_rollback(kit_site: Site, boss: TestClient) -> None:
    add_field(boss, "company", "text", label_en="Booth", label_zh="展位", name="booth")
    before = SiteLayer(kit_site).current()
    record = kit_site.records.create(SYSTEM, "company", {"name": "Keeper", "booth": "A-12"})
    preview = post(boss, "/admin/design/entities/company/fields/booth/archive", {})
    assert preview.status_code == 200 and "archive" in preview.text.lower() and "-  - {name: booth" in preview.text
    files = files_of(preview.text)
    assert "entities/company.yaml" not in files and "booth" not in files.get("forms/company.yaml", "")
    boss.post("/admin/design/apply", data={"csrf_token": boss.csrf, "files": json.dumps(files), "note": "archive booth"})
    assert "booth" not in kit_site.registry.entity("company").field_map
    assert "booth" not in kit_site.records.get(SYSTEM, "company", record["id"])
    assert "/fields/booth/archive" not in boss.get("/admin/design/entities/company").text
    rolled = boss.post(f"/admin/design/versions/{before.id}/rollback", data={"csrf_token": boss.csrf})
    assert rolled.status_code == 200 and "is applied and served" in rolled.text
    assert kit_site.records.get(SYSTEM, "company", record["id"])["booth"] == "A-12"


def test_a_pack_field_cannot_be_archived(kit_site: Site, boss: TestClient) -> None:
    response = post(boss, "/admin/design/entities/company/fields/name/archive", {})
    assert response.status_code == 422 and "a pack&#39;s own fields cannot be changed or archived" in response.text
    assert boss.get("/admin/design/entities/company/fields/name").status_code == 404
    assert SiteLayer(kit_site).versions() == []


def test_form_layout_and_list_view_are_saved_and_served(kit_site: Site, boss: TestClient) -> None:
    create_exhibition(boss)
    add_field(boss, "exhibition", "date", label_en="Starts on", label_zh="开始日期")
    add_field(boss, "exhibition", "text", label_en="City", label_zh="城市")
    add_field(boss, "exhibition", "long_text", label_en="Notes", label_zh="备注")
    form = boss.get("/admin/design/entities/exhibition/form")
    assert form.status_code == 200 and 'value="§s1"' in form.text
    # the buttons without JavaScript: add a section, move a field across the section boundary
    layout = [("item", "§s1"), ("item", "name"), ("item", "starts_on"), ("item", "city"), ("item", "§pool"), ("item", "notes"),
              ("s1_label_en", "Basics"), ("s1_label_zh", "基本信息"), ("s1_columns", "2")]
    added = post(boss, "/admin/design/entities/exhibition/form", [*layout, ("op", "add_section")])
    assert added.status_code == 200 and 'value="§s2"' in added.text
    boss.headers["HX-Request"] = "true"  # the section buttons go through htmx: only the editor comes back
    swapped = post(boss, "/admin/design/entities/exhibition/form", [*layout, ("op", "add_section")])
    del boss.headers["HX-Request"]
    assert swapped.text.lstrip().startswith('<div id="editor">') and 'value="§s2"' in swapped.text and "<html" not in swapped.text
    two = [("item", "§s1"), ("item", "name"), ("item", "starts_on"), ("item", "city"), ("item", "§s2"), ("item", "§pool"), ("item", "notes"),
           ("s1_label_en", "Basics"), ("s1_label_zh", "基本信息"), ("s1_columns", "2"), ("s2_label_en", "Place"), ("s2_label_zh", "地点"), ("s2_columns", "1")]
    moved = post(boss, "/admin/design/entities/exhibition/form", [*two, ("op", "down:city")])
    assert re.findall(r'name="item" value="([^"]+)"', moved.text) == ["§s1", "name", "starts_on", "§s2", "city", "§pool", "notes"]
    placed = post(boss, "/admin/design/entities/exhibition/form", [*two, ("op", "place:notes")])
    assert re.findall(r'name="item" value="([^"]+)"', placed.text) == ["§s1", "name", "starts_on", "city", "§s2", "notes", "§pool"]
    final = [("item", "§s2"), ("item", "city"), ("item", "notes"), ("item", "§s1"), ("item", "name"), ("item", "starts_on"), ("item", "§pool"),
             ("s1_label_en", "Basics"), ("s1_label_zh", "基本信息"), ("s1_columns", "2"), ("s2_label_en", "Place"), ("s2_label_zh", "地点"), ("s2_columns", "1")]
    files = propose_and_apply(boss, "/admin/design/entities/exhibition/form", final)
    assert "- name: main" in files["forms/exhibition.yaml"] and "fields: [city, notes]" in files["forms/exhibition.yaml"]
    main = kit_site.registry.forms["exhibition.main"]
    assert [(s.label.en, s.columns, s.fields) for s in main.sections] == [("Place", 1, ("city", "notes")), ("Basics", 2, ("name", "starts_on"))]
    record = kit_site.records.create(SYSTEM, "exhibition", {"name": "Canton Fair", "city": "Guangzhou", "starts_on": "2026-10-15"})
    detail = boss.get(f"/app/exhibition/{record['id']}")
    assert detail.text.index("Place") < detail.text.index("Basics")

    # the list view: columns in order, sort, a filter, page size
    assert boss.get("/admin/design/entities/exhibition/views").status_code == 200
    editor = boss.get("/admin/design/entities/exhibition/new-view")
    assert editor.status_code == 200 and "data-rules-check" in editor.text and 'data-purpose="filter"' in editor.text
    kit_site.records.create(SYSTEM, "exhibition", {"name": "Small Fair", "city": "Foshan", "starts_on": "2026-03-01"})
    view = [("name", "all"), ("label_en", "All exhibitions"), ("label_zh", "全部展会"), ("item", "§cols"), ("item", "city"), ("item", "name"),
            ("item", "starts_on"), ("item", "§pool"), ("sort_field", "starts_on"), ("sort_desc", "on"), ("page_size", "20"), ("default", "on"),
            ("filter", 'city != "Foshan"')]
    files = propose_and_apply(boss, "/admin/design/entities/exhibition/new-view", view)
    assert "columns: [city, name, starts_on]" in files["views/exhibition.yaml"] and "sort: [-starts_on]" in files["views/exhibition.yaml"]
    listing = boss.get("/app/exhibition")
    assert listing.status_code == 200
    headers = re.findall(r'<th[^>]*scope="col"[^>]*>(.*?)</th>', listing.text, re.S)
    titles = [re.sub(r"<[^>]+>", "", h).split()[0] for h in headers]
    assert titles[:3] == ["City", "Name", "Starts"] and 'aria-sort="descending"' in listing.text
    assert "Canton Fair" in listing.text and "Small Fair" not in listing.text
    assert 'href="/admin/design/entities/exhibition/views/all"' in boss.get("/admin/design/entities/exhibition/views").text


def test_a_view_of_a_pack_entity_is_added_beside_the_packs_default(kit_site: Site, boss: TestClient) -> None:
    editor = boss.get("/admin/design/entities/company/new-view")
    assert "is the default" in editor.text
    refused = post(boss, "/admin/design/entities/company/new-view", [("name", "all"), ("label_en", "All"), ("label_zh", "全部"),
                                                                    ("item", "§cols"), ("item", "name"), ("item", "§pool")])
    assert refused.status_code == 422 and "already has a view &#39;all&#39;" in refused.text
    files = propose_and_apply(boss, "/admin/design/entities/company/new-view", [("name", "dealers"), ("label_en", "Dealers"), ("label_zh", "经销商"),
                                                                                ("item", "§cols"), ("item", "name"), ("item", "revenue"), ("item", "§pool"),
                                                                                ("filter", 'kind = "dealer"')])
    assert "views/company.yaml" in files
    kit_site.records.create(SYSTEM, "company", {"name": "Dealer Co", "kind": "dealer"})
    kit_site.records.create(SYSTEM, "company", {"name": "Customer Co", "kind": "customer"})
    listing = boss.get("/app/company?view=dealers")
    assert "Dealer Co" in listing.text and "Customer Co" not in listing.text
    assert "Customer Co" in boss.get("/app/company").text


@pytest.mark.parametrize(("url", "data", "message"), [
    ("/admin/design/entities/company/new-field", {"type": "text", "name": "email", "label_en": "Email", "label_zh": "邮箱"},
     "the entity already has a field &#39;email&#39;"),
    ("/admin/design/entities/company/new-field", {"type": "text", "name": "Booth Size", "label_en": "Booth size", "label_zh": "展位"},
     "&#39;Booth Size&#39; is not a valid field name: use lowercase letters"),
    ("/admin/design/entities/company/new-field", {"type": "reference", "name": "venue", "label_en": "Venue", "label_zh": "场馆", "entity": "venue"},
     "unknown entity &#39;venue&#39;"),
    ("/admin/design/entities/company/new-field", {"type": "reference", "name": "holding", "label_en": "Holding", "label_zh": "控股", "entity": "compnay"},
     "unknown entity &#39;compnay&#39;; did you mean &#39;company&#39;?"),
    ("/admin/design/entities/company/new-field", {"type": "picklist", "name": "tier", "label_en": "Tier", "label_zh": "等级"}, "give at least one option"),
    ("/admin/design/entities/company/new-field", {"type": "text", "name": "city", "label_en": "City", "label_zh": ""}, "give the Chinese text"),
    ("/admin/design/entities/new", {"label_en": "Company", "label_zh": "公司", "name": "company", "title_en": "Name", "title_zh": "名称"},
     "an entity &#39;company&#39; exists already"),
    ("/admin/design/entities/new", {"label_en": "Show", "label_zh": "展", "name": "2shows", "title_en": "Name", "title_zh": "名称"},
     "&#39;2shows&#39; is not a valid object name"),
    ("/admin/design/entities/company/new-view", [("name", "big"), ("label_en", "Big"), ("label_zh", "大"), ("item", "§cols"), ("item", "name"),
                                                 ("item", "§pool"), ("filter", "employes > 100")],
     "1:1: unknown field &#39;employes&#39; on company; did you mean &#39;employees&#39;?"),
])
def test_bad_input_is_explained_on_the_editor_and_writes_nothing(kit_site: Site, boss: TestClient, url: str, data: Any, message: str) -> None:
    response = post(boss, url, data)
    assert response.status_code == 422
    assert message in response.text
    assert "Nothing was changed" in response.text and 'name="files"' not in response.text
    assert SiteLayer(kit_site).versions() == []


def test_the_object_designer_is_for_administrators(kit_site: Site) -> None:
    user_with_role(kit_site, "clerk", "clerk-password", scope="own")
    with TestClient(create_app(kit_site)) as client:
        log_in(client, "clerk", "clerk-password")
        for url in ("/admin/design/entities/new", "/admin/design/entities/company", "/admin/design/entities/company/form",
                    "/admin/design/entities/company/new-view", "/admin/design/entities/company/new-field?type=text"):
            assert client.get(url).status_code == 403, url
        assert post(client, "/admin/design/entities/new", {"label_en": "X", "label_zh": "X"}).status_code == 403
