"""The org tree and roles administered in Chromium against the live demo site: every change is
reviewed before it applies. The admin adds a team under an existing department and renames it,
then adds a role labelled in English and Chinese that includes the sales rep role; each change
shows its diff first (going back changes nothing), is applied, and shows on the screens."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import LiveSite
from tests.e2e.test_designer import card, log_in

pytestmark = pytest.mark.browser


def apply_reviewed(page: Page, *expected: str) -> None:
    """On the preview: the diff names what was expected, no problem is listed; Apply it."""
    expect(page.get_by_role("heading", level=1)).to_have_text("Review the change")
    diff = page.locator("pre.diff")
    for text in expected:
        expect(diff).to_contain_text(text)
    expect(page.get_by_role("heading", name="Problems to fix first")).to_have_count(0)
    page.get_by_role("button", name="Apply", exact=True).click()
    expect(page.get_by_role("status").filter(has_text="is applied and served")).to_contain_text(
        re.compile(r"Version \d+ is applied and served\.")
    )


def test_an_admin_adds_and_renames_a_unit_and_adds_a_role_each_reviewed(live_site: LiveSite, new_page) -> None:  # type: ignore[no-untyped-def]
    admin = new_page()
    log_in(admin, live_site, live_site.username, live_site.password)

    # 1. A team under the existing "South sales" department.
    admin.goto(live_site.base + "/admin/units")
    new_unit = card(admin, "New unit")
    new_unit.get_by_label("Name (English)").fill("Foshan team")
    new_unit.get_by_label("Name (中文)").fill("佛山组")
    new_unit.get_by_label("Kind").select_option("team")
    parent = new_unit.get_by_label("Parent")
    south_sales = parent.locator("option", has_text="South sales").get_attribute("value")
    assert south_sales
    parent.select_option(south_sales)
    new_unit.get_by_role("button", name="Create").click()
    apply_reviewed(admin, "Foshan team", "佛山组", "parent: south_sales")

    admin.goto(live_site.base + "/admin/units")
    team = admin.locator("ul.tree details").filter(has=admin.get_by_text("Foshan team", exact=True))
    expect(team).to_have_count(1)
    team.locator("summary").click()
    expect(team.get_by_label("Parent").locator("option:checked")).to_contain_text("South sales")

    # 2. Renamed, reviewed, applied.
    team.get_by_label("Name (English)").fill("Foshan showroom team")
    team.get_by_role("button", name="Save", exact=True).click()
    apply_reviewed(admin, "Foshan showroom team")
    admin.goto(live_site.base + "/admin/units")
    tree = admin.locator("ul.tree")
    expect(tree.get_by_text("Foshan showroom team", exact=True)).to_be_visible()
    expect(tree.get_by_text("Foshan team", exact=True)).to_have_count(0)
    renamed = tree.locator("details").filter(has=admin.get_by_text("Foshan showroom team", exact=True))
    renamed.locator("summary").click()
    expect(renamed.get_by_label("Parent").locator("option:checked")).to_contain_text("South sales")
    expect(renamed.get_by_label("Name (中文)")).to_have_value("佛山组")

    # 3. A role in both languages that includes the sales rep role; going back first changes nothing.
    admin.goto(live_site.base + "/admin/roles")

    def fill_new_role() -> None:
        new_role = card(admin, "New role")
        new_role.get_by_label("Name", exact=True).fill("showroom_guide")
        new_role.get_by_label("English", exact=True).fill("Showroom guide")
        new_role.get_by_label("中文", exact=True).fill("展厅导购")
        new_role.get_by_role("group", name="Included roles").get_by_label("Sales rep", exact=True).check()
        new_role.get_by_role("button", name="Create").click()
        expect(admin.get_by_role("heading", level=1)).to_have_text("Review the change")

    fill_new_role()
    expect(admin.locator("pre.diff")).to_contain_text("name: showroom_guide")
    admin.get_by_role("link", name="Back", exact=True).click()
    expect(admin).to_have_url(re.compile(r"/admin/roles\?"))
    expect(admin.get_by_role("link", name="Showroom guide", exact=True)).to_have_count(0)
    typed = card(admin, "New role")  # what was typed is still there
    expect(typed.get_by_label("Name", exact=True)).to_have_value("showroom_guide")
    expect(typed.get_by_label("中文", exact=True)).to_have_value("展厅导购")
    expect(typed.get_by_role("group", name="Included roles").get_by_label("Sales rep", exact=True)).to_be_checked()

    fill_new_role()
    apply_reviewed(admin, "name: showroom_guide", "{en: Showroom guide, zh-CN: 展厅导购}", "includes: [sales_rep]")
    admin.goto(live_site.base + "/admin/roles")
    admin.get_by_role("link", name="Showroom guide", exact=True).click()
    expect(admin.get_by_role("heading", level=2, name=re.compile(r"^Showroom guide"))).to_contain_text("includes sales_rep")
    labels = card(admin, "Label and included roles")
    expect(labels.get_by_label("中文", exact=True)).to_have_value("展厅导购")
    expect(labels.get_by_label("Sales rep", exact=True)).to_be_checked()
