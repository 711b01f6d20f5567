"""The designer worked in Chromium against the live demo site, without a restart: the admin designs
an Exhibition object (fields, a validation rule, a two-state workflow, a menu), grants a sales rep
the right to create exhibitions, and the rep then uses it all from a second browser session. The
admin exports the layer as a pack and rolls the grant back and forward: no data is lost."""

from __future__ import annotations

import re
import zipfile

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.e2e.conftest import LiveSite

pytestmark = pytest.mark.browser

END_USER, END_USER_PASSWORD = (
    "li.rep",
    "demo-pass-2026",
)  # a sales_rep of packs/crm_standard/org.yaml (its `password:`)


def log_in(page: Page, site: LiveSite, username: str, password: str) -> None:
    page.goto(site.base + "/")
    expect(page).to_have_url(re.compile(r"/login"))
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Welcome")


def card(page: Page, heading: str) -> Locator:
    return page.locator("section.card").filter(
        has=page.get_by_role("heading", name=heading, exact=True)
    )


def review_and_apply(page: Page, button: str = "Review the change") -> None:
    """Press the editor's review button, check the preview has no problems, apply it."""
    page.get_by_role("button", name=button).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Review the change")
    expect(page.get_by_role("heading", name="Problems to fix first")).to_have_count(0)
    page.get_by_role("button", name="Apply", exact=True).click()
    expect(page.get_by_role("status").filter(has_text="is applied and served")).to_contain_text(
        re.compile(r"Version \d+ is applied and served\.")
    )


def add_field(
    page: Page, site: LiveSite, type_label: str, label_en: str, label_zh: str, name: str
) -> Locator:
    page.goto(site.base + "/admin/design/entities/exhibition")
    card(page, "Add a field").get_by_role("link", name=type_label, exact=True).click()
    page.get_by_label("Label (English)", exact=True).fill(label_en)
    page.get_by_label("Label (中文)", exact=True).fill(label_zh)
    expect(page.get_by_label("Name", exact=True)).to_have_value(
        name
    )  # derived from the English label
    return page.locator("#field-form")


def test_an_admin_designs_an_object_and_a_sales_rep_uses_it(live_site: LiveSite, new_page) -> None:  # type: ignore[no-untyped-def]
    admin = new_page()
    log_in(admin, live_site, live_site.username, live_site.password)

    # 1. A new object with its title field, then three more fields, each applied.
    # (the side navigation's Administration group has no Designer link: the admin tabs do)
    admin.get_by_role("navigation", name="Main navigation").get_by_role(
        "link", name="Users"
    ).click()
    admin.get_by_role("navigation", name="Administration").get_by_role(
        "link", name="Designer"
    ).click()
    admin.get_by_role("link", name="New object").click()
    obj = admin.get_by_role("group", name="Object")
    obj.get_by_label("Label (English)", exact=True).fill("Exhibition")
    obj.get_by_label("Label (中文)", exact=True).fill("展会")
    obj.get_by_label("Plural label (English)").fill("Exhibitions")
    obj.get_by_label("Plural label (中文)").fill("展会")
    expect(obj.get_by_label("Name", exact=True)).to_have_value("exhibition")
    title = admin.get_by_role("group", name="Title field")
    title.get_by_label("Label (English)", exact=True).fill("Name")
    title.get_by_label("Label (中文)", exact=True).fill("名称")
    expect(title.get_by_label("Name", exact=True)).to_have_value("name")
    review_and_apply(admin)
    for type_label, en, zh, name in [
        ("Date", "Starts on", "开始日期", "starts_on"),
        ("Date", "Ends on", "结束日期", "ends_on"),
        ("Whole number", "Booth size", "展位面积", "booth_size"),
    ]:
        add_field(admin, live_site, type_label, en, zh, name)
        review_and_apply(admin)
    admin.goto(live_site.base + "/admin/design/entities/exhibition")
    fields = card(admin, "Fields")
    for name in ("name", "starts_on", "ends_on", "booth_size"):
        expect(fields.get_by_role("cell", name=name, exact=True)).to_be_visible()

    # 2. A validation rule through the rule builder.
    admin.goto(live_site.base + "/admin/design")
    admin.get_by_role("link", name="Rules", exact=True).click()
    builder = admin.get_by_role("group", name="Add a rule")
    builder.get_by_label("Kind").select_option("validate")
    builder.get_by_label("Object").select_option("exhibition")
    builder.get_by_label("Message (validate)").fill("An exhibition ends after it starts")
    builder.get_by_label("Shown on fields (validate)").fill("ends_on")
    builder.get_by_label("Condition or expression").fill("ends_on < starts_on")
    admin.get_by_role("button", name="Add this rule").click()
    expect(admin.locator("main")).to_contain_text(
        'validate exhibition "An exhibition ends after it starts" on ends_on when ends_on < starts_on'
    )
    expect(admin.get_by_role("heading", name="Problems to fix first")).to_have_count(0)
    admin.get_by_role("button", name="Apply", exact=True).click()
    expect(admin.get_by_role("status").filter(has_text="is applied and served")).to_contain_text(
        "is applied and served"
    )

    # 3. A picklist to hold the state, then the workflow over it.
    form = add_field(admin, live_site, "Picklist", "Status", "状态", "status")
    options = form.get_by_role("group", name="Options")
    for row, (value, en, zh) in enumerate(
        [("planned", "Planned", "计划中"), ("done", "Done", "已结束")], start=1
    ):
        options.get_by_label(f"Value {row}", exact=True).fill(value)
        options.get_by_label(f"English {row}", exact=True).fill(en)
        options.get_by_label(f"中文 {row}", exact=True).fill(zh)
    review_and_apply(admin)
    admin.goto(live_site.base + "/admin/design")
    admin.get_by_role("link", name="Workflows", exact=True).click()
    new_flow = card(admin, "New workflow")
    new_flow.get_by_label("Object and the picklist that holds its state").select_option(
        "exhibition.status"
    )
    new_flow.get_by_role("button", name="Next").click()
    new_flow = card(admin, "New workflow")
    new_flow.get_by_label("Name", exact=True).fill("exhibition_flow")
    new_flow.get_by_label("English").fill("Exhibition lifecycle")
    new_flow.get_by_label("中文").fill("展会流程")
    expect(new_flow.get_by_role("checkbox", name="Planned planned")).to_be_checked()
    expect(new_flow.get_by_role("checkbox", name="Done done")).to_be_checked()
    new_flow.get_by_label("Initial state").select_option("planned")
    new_flow.get_by_role("button", name="Create the draft").click()
    expect(admin.get_by_role("heading", level=1)).to_have_text("Workflow: Exhibition lifecycle")
    admin.get_by_text("+ Add a transition").click()
    adding = admin.locator("details.wf-item").filter(has_text="+ Add a transition")
    adding.get_by_label("Name", exact=True).fill("finish")
    adding.get_by_label("English", exact=True).fill("Finish")
    adding.get_by_label("中文", exact=True).fill("结束")
    adding.get_by_role("group", name="From").get_by_role(
        "checkbox", name="Planned", exact=True
    ).check()
    adding.get_by_role("combobox", name=re.compile(r"^To\b")).select_option("done")
    adding.get_by_role("button", name="Add a transition").click()
    expect(card(admin, "Diagram").locator("svg").first).to_contain_text("Finish")
    review_and_apply(admin, "Review and apply…")

    # 4. A menu "Events" whose first item is the exhibition list.
    admin.goto(live_site.base + "/admin/design")
    admin.get_by_role("link", name="Menus", exact=True).click()
    new_menu = card(admin, "New menu")
    new_menu.get_by_label("Name", exact=True).fill("events")
    new_menu.get_by_label("English", exact=True).fill("Events")
    new_menu.get_by_label("中文", exact=True).fill("活动")
    new_menu.get_by_label("Object").select_option("exhibition")
    new_menu.get_by_role("button", name="New menu").click()
    expect(admin.get_by_role("heading", name="Problems to fix first")).to_have_count(0)
    admin.get_by_role("button", name="Apply", exact=True).click()
    expect(admin.get_by_role("status").filter(has_text="is applied and served")).to_contain_text(
        "is applied and served"
    )

    # No standard role may create records of a new object: the admin grants it to sales reps in the matrix.
    admin.goto(live_site.base + "/admin/roles?role=sales_rep")
    for action in ("read", "create", "update"):
        admin.get_by_label(f"exhibition {action}", exact=True).select_option("own")
    review_and_apply(admin, "Save permissions")  # the matrix is previewed like every designer change
    admin.goto(live_site.base + "/admin/roles?role=sales_rep")
    expect(admin.get_by_label("exhibition create", exact=True)).to_have_value("own")

    # 5. The sales rep, in a second browser session, finds the menu and uses the object.
    rep = new_page()
    log_in(rep, live_site, END_USER, END_USER_PASSWORD)
    nav = rep.get_by_role("navigation", name="Main navigation")
    expect(nav).to_contain_text("Events")
    nav.locator(".navgroup").filter(has_text="Events").get_by_role(
        "link", name="Exhibitions"
    ).click()
    expect(rep).to_have_url(re.compile(r"/app/exhibition"))
    rep.get_by_role("link", name="New", exact=True).click()
    rep.get_by_label(re.compile(r"^Name\b")).fill("Canton Fair")  # "Name *": required
    rep.get_by_label("Starts on").fill("2026-10-15")
    rep.get_by_label("Ends on").fill("2026-10-10")
    rep.get_by_label("Booth size").fill("36")
    rep.get_by_role("button", name="Save").click()
    expect(rep.locator("#form-errors")).to_be_visible()
    expect(rep.locator(".field.has-error")).to_contain_text("An exhibition ends after it starts")
    expect(rep.get_by_label("Ends on")).to_have_value("2026-10-10")  # what was typed stays
    rep.get_by_label("Ends on").fill("2026-10-19")
    rep.get_by_role("button", name="Save").click()
    expect(rep.get_by_role("heading", level=1)).to_have_text("Canton Fair")
    expect(rep.locator("main")).to_contain_text("Planned")
    rep.get_by_role("button", name="Finish").click()
    expect(rep.locator("main")).to_contain_text("Done")
    expect(rep.get_by_role("button", name="Finish")).to_have_count(0)

    # 6. The admin exports the layer as a pack, then rolls the grant back and forward again: the
    # rep loses and regains the object, and the exhibition entered meanwhile is still there.
    admin.goto(live_site.base + "/admin/design")
    with admin.expect_download() as download:
        admin.get_by_role("link", name="Export as a pack").click()
    with zipfile.ZipFile(download.value.path()) as pack:
        names = pack.namelist()
        assert "site/pack.yaml" in names and "site/roles.yaml" in names, names
        assert any("exhibition" in name and name.startswith("site/entities/") for name in names), names
    versions = card(admin, "Versions").locator("tbody tr")
    expect(versions.first).to_contain_text("current")
    applied = admin.get_by_role("status").filter(has_text="is applied and served")
    versions.nth(1).get_by_role("button", name="Roll back to this version").click()
    expect(applied).to_contain_text(re.compile(r"Version \d+ is applied"))
    rolled_back = int(re.findall(r"Version (\d+)", applied.inner_text())[0])
    rep.goto(live_site.base + "/app/exhibition/new")
    expect(rep.get_by_role("heading", level=1)).to_contain_text("Not allowed")
    versions.nth(1).get_by_role("button", name="Roll back to this version").click()
    expect(applied).to_contain_text(f"Version {rolled_back + 1} is applied")
    rep.goto(live_site.base + "/app/exhibition")
    expect(rep.locator("main")).to_contain_text("Canton Fair")
