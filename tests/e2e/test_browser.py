"""A person working the generated screens in Chromium: log in, create an account, add a contact
from it, create an opportunity and move it on the kanban, meet and fix a validation error,
switch to Chinese, and meet an edit conflict from a second session."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.e2e.conftest import LiveSite

pytestmark = __import__("pytest").mark.browser


def log_in(page: Page, site: LiveSite) -> None:
    page.goto(site.base + "/")
    expect(page).to_have_url(re.compile(r"/login"))
    page.get_by_label("Username").fill(site.username)
    page.get_by_label("Password").fill(site.password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Welcome")


def pick(page: Page, field_id: str, text: str) -> None:
    """Type into a reference type-ahead and choose the first matching option."""
    page.locator(f"#{field_id}").fill(text)
    option = page.locator(f"#{field_id}-options [data-id]").first
    expect(option).to_contain_text(text)
    option.click()


def test_the_daily_path_of_a_sales_rep(live_site: LiveSite, new_page) -> None:  # type: ignore[no-untyped-def]
    page = new_page()
    log_in(page, live_site)

    # Create an account.
    page.get_by_role("navigation", name="Main navigation").get_by_role("link", name="Accounts").click()
    page.get_by_role("link", name="New", exact=True).click()
    page.locator("#f-name").fill("Jingdezhen Porcelain Works")
    page.locator("#f-customer_type").select_option("dealer")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Jingdezhen Porcelain Works")
    account_url = page.url

    # Add a contact from the account page: the account is filled in already.
    page.locator("#related-contact").get_by_role("link", name="New").click()
    expect(page.locator("#f-account")).to_have_value("Jingdezhen Porcelain Works")
    page.locator("#f-name").fill("Wang Lei")
    page.locator("#f-mobile").fill("138 0000 1111")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Wang Lei")
    page.goto(account_url)
    expect(page.locator("#related-contact")).to_contain_text("Wang Lei")

    # Create an opportunity: first without a name (inline error, typed values kept), then fixed.
    page.goto(live_site.base + "/app/opportunity/new")
    pick(page, "f-account", "Jingdezhen")
    page.locator("#f-amount").fill("880000")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#form-errors")).to_be_visible()
    expect(page.locator(".field.has-error")).to_contain_text("is required")
    expect(page.locator("#f-amount")).to_have_value("880000")
    expect(page.locator("#f-account")).to_have_value("Jingdezhen Porcelain Works")
    page.locator("#f-name").fill("Hotel lobby porcelain tiles")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Hotel lobby porcelain tiles")
    opportunity_id = page.url.rsplit("/", 1)[1]

    # Move it on the kanban by drag and drop.
    page.goto(live_site.base + "/app/opportunity/kanban")
    card = page.locator(f'[data-card="{opportunity_id}"]')
    expect(page.locator('[data-column="prospecting"]')).to_contain_text("Hotel lobby porcelain tiles")
    card.drag_to(page.locator('[data-column="proposal"]'))
    expect(page.locator('[data-column="proposal"]')).to_contain_text("Hotel lobby porcelain tiles")
    page.goto(live_site.base + f"/app/opportunity/{opportunity_id}")
    expect(page.locator("main")).to_contain_text("Proposal")

    # Switch to Chinese.
    page.locator("#language-select").select_option("zh-CN")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(page.get_by_role("navigation", name="主导航")).to_contain_text("客户")
    expect(page.locator("main")).to_contain_text("编辑")


def test_search_filters_and_phone_layout(live_site: LiveSite, new_page) -> None:  # type: ignore[no-untyped-def]
    page = new_page(width=390, height=800)
    log_in(page, live_site)
    page.goto(live_site.base + "/app/account")
    total = page.locator(".total")
    expect(total).to_contain_text("records")
    before = total.inner_text()
    page.locator("#q").fill("Pacific")
    expect(page.locator("table.records tbody tr")).to_have_count(1)
    expect(page).to_have_url(re.compile(r"q=Pacific"))
    assert total.inner_text() != before
    # Phone width: the navigation folds behind a button, rows become cards.
    expect(page.locator("#nav")).to_be_hidden()
    page.get_by_role("button", name="☰").click()
    expect(page.locator("#nav")).to_be_visible()


def test_second_session_gets_the_conflict(live_site: LiveSite, new_page) -> None:  # type: ignore[no-untyped-def]
    first, second = new_page(), new_page()
    log_in(first, live_site)
    log_in(second, live_site)
    first.goto(live_site.base + "/app/account/1/edit")
    second.goto(live_site.base + "/app/account/1/edit")
    first.get_by_label("Phone").fill("0757-8888 0001")
    first.get_by_role("button", name="Save").click()
    expect(first.get_by_role("heading", level=1)).not_to_contain_text("Edit")
    second.get_by_label("Phone").fill("0757-8888 0002")
    second.get_by_role("button", name="Save").click()
    conflict = second.locator("#conflict")
    expect(conflict).to_contain_text("Someone else changed this record")
    expect(conflict).to_contain_text("0757-8888 0001")
    expect(second.get_by_label("Phone")).to_have_value("0757-8888 0002")
    second.get_by_role("button", name="Save").click()  # reviewed: save again to overwrite
    expect(second.locator("main")).to_contain_text("0757-8888 0002")


def test_each_post_sees_what_it_allows(live_site: LiveSite, new_page) -> None:  # type: ignore[no-untyped-def]
    """The demo group: a rep, their manager's manager and the CEO each see their part."""
    seen = {}
    for username in ("li.rep", "chen.director", "zhao.ceo"):
        page = new_page()
        page.goto(live_site.base + "/login")
        page.locator("#username").fill(username)
        page.locator("#password").fill("demo-pass-2026")
        page.locator("button[type=submit]").click()
        page.goto(live_site.base + "/app/account")
        seen[username] = int(re.search(r"\d+", page.locator(".total").inner_text()).group())  # type: ignore[union-attr]
        if username == "li.rep":
            expect(page.locator("#nav")).not_to_contain_text("Roles and permissions")
            expect(page.locator("#nav")).not_to_contain_text("Users")
    assert seen["li.rep"] < seen["chen.director"] < seen["zhao.ceo"]
