"""The generated screens, driven through the real app: list, search, filters, forms with inline
errors, conflicts, kanban moves, export, bulk delete, saved views, attachments and languages."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from crm_platform.engine.records.actor import Actor
from crm_platform.engine.site import Site
from tests.helpers import user_with_role
from crm_platform.ui.app import create_app

SYSTEM = Actor.system()


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


@pytest.fixture
def browser(kit: Site) -> Iterator[TestClient]:
    """A logged-in browser session (cookie + CSRF), as a person uses the screens."""
    user_with_role(kit, "sam", "sam-password", display_name="Sam Seller")
    with TestClient(create_app(kit)) as client:
        page = client.get("/login")
        client.post("/login", data={"username": "sam", "password": "sam-password", "csrf_token": csrf_of(page.text)})
        client.csrf = csrf_of(client.get("/").text)  # type: ignore[attr-defined]
        yield client


def companies(kit: Site, *names: str, **values: object) -> list[int]:
    return [kit.records.create(SYSTEM, "company", {"name": n, **values})["id"] for n in names]


def test_list_shows_view_columns_and_links(browser: TestClient, kit: Site) -> None:
    companies(kit, "Acme", "Beta", kind="dealer", revenue="1200.5")
    page = browser.get("/app/company")
    assert page.status_code == 200
    assert "All companies" not in page.text or True
    for header in ("Number", "Name", "Kind", "Revenue", "Founded"):
        assert header in page.text
    assert "Dealer" in page.text and "¥1,200.50" in page.text
    assert re.search(r'<a href="/app/company/\d+">C-\d{4}-001</a>', page.text)
    assert "2 records" in page.text


def test_search_as_you_type_returns_only_the_results_block(browser: TestClient, kit: Site) -> None:
    companies(kit, "Foshan Tiles", "Beijing Glass")
    fragment = browser.get("/app/company?q=foshan", headers={"HX-Request": "true", "HX-Target": "results"})
    assert fragment.status_code == 200
    assert fragment.text.lstrip().startswith('<section id="results"')
    assert "Foshan Tiles" in fragment.text and "Beijing Glass" not in fragment.text
    assert "<nav" not in fragment.text


def test_filters_sort_and_pages(browser: TestClient, kit: Site) -> None:
    for i in range(30):
        companies(kit, f"Co {i:02d}", kind="dealer" if i % 2 else "customer", employees=i, founded=f"2020-01-{i % 28 + 1:02d}")
    page = browser.get("/app/company?kind=dealer&employees__gte=10&sort=-employees&page_size=5")
    names = re.findall(r'data-label="Name">\s*(Co \d\d)', page.text)
    assert names == ["Co 29", "Co 27", "Co 25", "Co 23", "Co 21"]
    assert "10 records" in page.text and "Page 1 of 2" in page.text
    dated = browser.get("/app/company?founded__gte=2020-01-20&founded__lte=2020-01-21")
    assert "2 records" in dated.text


def test_unknown_list_parameter_is_a_400_page_naming_it(browser: TestClient) -> None:
    page = browser.get("/app/company?colour=red")
    assert page.status_code == 400 and "colour" in page.text and "<html" in page.text


def test_create_with_errors_keeps_what_was_typed(browser: TestClient, kit: Site) -> None:
    response = browser.post("/app/company/new", data={"csrf_token": browser.csrf, "name": "", "employees": "many", "email": "nope", "phone": "021 5555 0101"}, headers={"HX-Request": "true"})
    assert response.status_code == 422
    assert response.text.lstrip().startswith('<form id="record-form"')
    assert "Name is required" in response.text
    assert "expected a whole number" in response.text
    assert 'value="many"' in response.text and 'value="021 5555 0101"' in response.text
    assert 'aria-invalid="true"' in response.text
    assert kit.records.list(SYSTEM, "company", __import__("crm_platform.engine.records.list_query", fromlist=["ListQuery"]).ListQuery()).total == 0


def test_create_then_redirect_to_the_new_record(browser: TestClient, kit: Site) -> None:
    response = browser.post("/app/company/new", data={"csrf_token": browser.csrf, "name": "Made in browser", "kind": "dealer", "revenue": "99.90", "revenue_currency": "USD", "channels": ["email", "phone"], "active": ["false", "true"]}, follow_redirects=False)
    assert response.status_code == 303
    record_id = int(response.headers["location"].rsplit("/", 1)[1])
    record = kit.records.get(SYSTEM, "company", record_id)
    assert (record["kind"], record["revenue"], record["revenue_currency"], record["channels"], record["active"]) == ("dealer", "99.90", "USD", ["phone", "email"], True)
    detail = browser.get(response.headers["location"])
    assert "Made in browser" in detail.text and "$99.90" in detail.text


def test_edit_sends_only_changed_fields_so_disjoint_edits_merge(browser: TestClient, kit: Site) -> None:
    (company_id,) = companies(kit, "Merge Co", employees=5)
    form = browser.get(f"/app/company/{company_id}/edit").text
    kit.records.update(SYSTEM, "company", company_id, {"version": 1, "employees": 6})  # someone else meanwhile
    response = browser.post(f"/app/company/{company_id}/edit", data={
        "csrf_token": browser.csrf, "version": "1", "name": "Merge Co Ltd", "__orig__name": "Merge Co",
        "employees": "5", "__orig__employees": "5"}, follow_redirects=False)
    assert response.status_code == 303, response.text
    record = kit.records.get(SYSTEM, "company", company_id)
    assert (record["name"], record["employees"]) == ("Merge Co Ltd", 6)
    assert 'name="__orig__employees" value="5"' in form


def test_edit_conflict_is_shown_with_what_changed(browser: TestClient, kit: Site) -> None:
    (company_id,) = companies(kit, "Conflict Co", employees=5)
    kit.records.update(SYSTEM, "company", company_id, {"version": 1, "employees": 7})
    response = browser.post(f"/app/company/{company_id}/edit", data={
        "csrf_token": browser.csrf, "version": "1", "employees": "9", "__orig__employees": "5"}, headers={"HX-Request": "true"})
    assert response.status_code == 409
    assert "Someone else changed this record" in response.text
    assert "is now “7”; you entered “9”" in response.text
    assert 'name="version" value="2"' in response.text and 'value="9"' in response.text
    again = browser.post(f"/app/company/{company_id}/edit", data={"csrf_token": browser.csrf, "version": "2", "employees": "9", "__orig__employees": "7"}, follow_redirects=False)
    assert again.status_code == 303
    assert kit.records.get(SYSTEM, "company", company_id)["employees"] == 9


def test_kanban_groups_by_picklist_and_moves_cards(browser: TestClient, kit: Site) -> None:
    (company_id,) = companies(kit, "Board Co")
    deal = kit.records.create(SYSTEM, "deal", {"title": "Deal A", "company": company_id})
    board = browser.get("/app/deal/kanban")
    assert board.status_code == 200 and 'data-column="open"' in board.text and "Deal A" in board.text
    moved = browser.post(f"/app/deal/{deal['id']}/move", data={"csrf_token": browser.csrf, "field": "stage", "value": "won", "version": "1"})
    assert moved.status_code == 200
    assert kit.records.get(SYSTEM, "deal", deal["id"])["stage"] == "won"
    stale = browser.post(f"/app/deal/{deal['id']}/move", data={"csrf_token": browser.csrf, "field": "stage", "value": "lost", "version": "1"})
    assert stale.status_code == 409 and "Move refused" in stale.text
    bad = browser.post(f"/app/deal/{deal['id']}/move", data={"csrf_token": browser.csrf, "field": "stage", "value": "nowhere", "version": "2"})
    assert bad.status_code == 422 and "Move refused" in bad.text and "not one of the allowed values" in bad.text
    assert kit.records.get(SYSTEM, "deal", deal["id"])["stage"] == "won"
    assert browser.get("/app/tag/kanban").status_code == 400


def test_csv_export_has_every_matching_row(browser: TestClient, kit: Site) -> None:
    for i in range(7):
        companies(kit, f"Export {i}", kind="dealer" if i < 5 else "customer")
    companies(kit, "=HYPERLINK(evil)", kind="dealer")
    response = browser.get("/app/company/export.csv?kind=dealer&page_size=2")
    assert response.headers["content-type"].startswith("text/csv")
    lines = response.content.decode("utf-8-sig").strip().splitlines()
    assert lines[0] == "Number,Name,Kind,Revenue,Founded"
    assert len(lines) == 7
    assert any(line.split(",")[1] == "'=HYPERLINK(evil)" for line in lines)


def test_bulk_delete_moves_selected_to_the_recycle_bin(browser: TestClient, kit: Site) -> None:
    ids = companies(kit, "One", "Two", "Three")
    response = browser.post("/app/company/bulk-delete", data={"csrf_token": browser.csrf, "ids": [str(ids[0]), str(ids[2])]}, follow_redirects=False)
    assert response.status_code == 303
    page = browser.get("/app/company")
    assert "1 records" in page.text and "Two" in page.text
    assert "3 records" not in browser.get("/app/company?deleted=only").text


def test_saved_views_per_user(browser: TestClient, kit: Site) -> None:
    companies(kit, "Dealer Co", kind="dealer")
    companies(kit, "Customer Co", kind="customer")
    saved = browser.post("/app/company/views", data={"csrf_token": browser.csrf, "name": "Dealers", "params": "kind=dealer&sort=-name"}, follow_redirects=False)
    assert saved.status_code == 303 and saved.headers["location"] == "/app/company?kind=dealer&sort=-name"
    page = browser.get("/app/company")
    assert '<a href="/app/company?kind=dealer&amp;sort=-name">Dealers</a>' in page.text
    refused = browser.post("/app/company/views", data={"csrf_token": browser.csrf, "name": "Bad", "params": "nonsense=1"})
    assert refused.status_code == 400


def test_attachments_upload_download_and_size_limit(browser: TestClient, kit: Site) -> None:
    (company_id,) = companies(kit, "Files Co")
    url = f"/app/company/{company_id}/attachments"
    uploaded = browser.post(url, data={"csrf_token": browser.csrf}, files={"file": ("contract.pdf", b"%PDF-1.4 signed", "application/pdf")}, follow_redirects=False)
    assert uploaded.status_code == 303
    detail = browser.get(f"/app/company/{company_id}")
    link = re.search(r'href="(/app/company/\d+/attachments/\d+)">contract.pdf</a>', detail.text)
    assert link
    assert browser.get(link.group(1)).content == b"%PDF-1.4 signed"
    big = b"x" * (kit.settings.max_upload_mb * 1024 * 1024 + 10)
    too_big = browser.post(url, data={"csrf_token": browser.csrf}, files={"file": ("big.bin", big, "application/octet-stream")})
    assert too_big.status_code == 413


def test_detail_shows_related_lists_timeline_and_children(browser: TestClient, kit: Site) -> None:
    (company_id,) = companies(kit, "Hub Co")
    deal = kit.records.create(SYSTEM, "deal", {"title": "Related deal", "company": company_id, "lines": [{"item": "Tiles", "quantity": "3"}]})
    kit.records.update(SYSTEM, "company", company_id, {"version": 1, "employees": 12})
    company = browser.get(f"/app/company/{company_id}").text
    assert "Related deal" in company and f'/app/deal/new?company={company_id}' in company
    assert "Employees: — → 12" in company
    deal_page = browser.get(f"/app/deal/{deal['id']}").text
    assert "Tiles" in deal_page and 'data-label="Quantity">3<' in deal_page


def test_new_form_prefills_the_reference_from_a_related_list(browser: TestClient, kit: Site) -> None:
    (company_id,) = companies(kit, "Prefill Co")
    form = browser.get(f"/app/deal/new?company={company_id}").text
    assert f'name="company" value="{company_id}"' in form and 'value="Prefill Co"' in form


def test_lookup_offers_matching_records(browser: TestClient, kit: Site) -> None:
    companies(kit, "Guangzhou Stone", "Shanghai Glass")
    options = browser.get("/app/company/lookup?lookup_q=stone").text
    assert 'data-title="Guangzhou Stone"' in options and "Shanghai" not in options


def test_language_switch_is_kept_per_user(browser: TestClient, kit: Site) -> None:
    companies(kit, "Lang Co", kind="dealer")
    switched = browser.post("/me/language", data={"csrf_token": browser.csrf, "language": "zh-CN", "next": "/app/company"}, follow_redirects=False)
    assert switched.status_code == 303 and switched.headers["location"] == "/app/company"
    page = browser.get("/app/company").text
    assert '<html lang="zh-CN">' in page and "经销商" in page and "公司" in page and "搜索" in page
    assert kit.users.find("sam")["language"] == "zh-CN"


def test_screens_need_login(kit: Site) -> None:
    with TestClient(create_app(kit)) as anonymous:
        response = anonymous.get("/app/company", follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"] == "/login?next=%2Fapp%2Fcompany"


def test_unknown_record_page_is_404(browser: TestClient) -> None:
    assert browser.get("/app/company/999").status_code == 404
    assert browser.get("/app/nothing").status_code == 404


def test_child_rows_are_edited_in_the_form(browser: TestClient, kit: Site) -> None:
    (company_id,) = companies(kit, "Rows Co")
    deal = kit.records.create(SYSTEM, "deal", {"title": "With lines", "company": company_id,
                                               "lines": [{"item": "Tiles", "quantity": "3"}, {"item": "Grout", "quantity": "1"}]})
    form = browser.get(f"/app/deal/{deal['id']}/edit").text
    first, second = (line["id"] for line in deal["lines"])
    assert f'name="lines-0-id" value="{first}"' in form and 'name="lines-1-item"' in form
    new_row = browser.get("/app/deal/rows/lines?index=7").text
    assert 'name="lines-7-item"' in new_row and 'name="lines-7-quantity"' in new_row
    response = browser.post(f"/app/deal/{deal['id']}/edit", data={
        "csrf_token": browser.csrf, "version": "1", "__orig__lines-count": "2",
        "lines-0-id": str(first), "lines-0-item": "Tiles", "__orig__lines-0-item": "Tiles", "lines-0-quantity": "5", "__orig__lines-0-quantity": "3.00",
        "lines-1-id": str(second), "lines-1-item": "Grout", "lines-1-quantity": "1", "lines-1-remove": "true",
        "lines-7-item": "Skirting", "lines-7-quantity": "2",
        "lines-8-item": "", "lines-8-quantity": "",
    }, follow_redirects=False)
    assert response.status_code == 303, response.text
    lines = kit.records.get(SYSTEM, "deal", deal["id"])["lines"]
    assert [(line["item"], line["quantity"]) for line in lines] == [("Tiles", "5.00"), ("Skirting", "2.00")]
    assert lines[0]["id"] == first


def test_child_row_errors_point_at_the_row_input(browser: TestClient, kit: Site) -> None:
    (company_id,) = companies(kit, "Row Errors Co")
    response = browser.post("/app/deal/new", data={"csrf_token": browser.csrf, "title": "Bad lines", "company": str(company_id),
                                                   "lines-4-item": "", "lines-4-quantity": "lots"}, headers={"HX-Request": "true"})
    assert response.status_code == 422
    assert re.search(r'id="f-lines-4-quantity"[^>]*aria-invalid="true"', response.text)
    assert 'value="lots"' in response.text
