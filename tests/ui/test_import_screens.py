"""Import and export through the app: upload -> mapping -> dry run -> start -> progress polled
with htmx -> done; the imports API; Excel exports of a list (same filters as CSV, formula-safe)
and of a report."""

from __future__ import annotations

import io
import json
import re
import time
from collections.abc import Iterator
from urllib.parse import quote

import openpyxl
import pytest
from starlette.testclient import TestClient

from crm_platform.engine.imports_store import ImportStore
from crm_platform.engine.records.actor import Actor
from crm_platform.engine.records.list_query import ListQuery
from crm_platform.engine.site import Site
from crm_platform.ui.app import create_app
from tests.helpers import log_in, user_with_role

SYSTEM = Actor.system()
GOOD_AND_BAD = "名称,员工数,类型\nAlpha,10,经销商\nBeta,many,客户\nGamma,3,Public body\n"


@pytest.fixture
def browser(kit: Site) -> Iterator[TestClient]:
    user_with_role(kit, "sam", "sam-password", display_name="Sam Seller")
    with TestClient(create_app(kit)) as client:
        log_in(client, "sam", "sam-password")
        yield client


def upload(client: TestClient, data: bytes, name: str = "companies.csv", entity: str = "company") -> str:
    response = client.post(f"/app/{entity}/import", data={"csrf_token": client.csrf}, files={"file": (name, data, "text/csv")}, follow_redirects=False)
    assert response.status_code == 303, response.text
    return response.headers["location"]


def wait_until_finished(client: TestClient, url: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        html = client.get(url).text
        if 'hx-trigger="every 1s"' not in html:
            return html
        time.sleep(0.1)
    raise AssertionError("the import did not finish")


def wait_for(client: TestClient, url: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = client.get(url).json()
        if body["finished"]:
            return body
        time.sleep(0.1)
    raise AssertionError("the import did not finish")


def company_names(kit: Site) -> list[str]:
    return sorted(r["name"] for r in kit.records.list(SYSTEM, "company", ListQuery(page_size=100)).records)


def test_the_list_links_to_the_import(browser: TestClient) -> None:
    page = browser.get("/app/company")
    assert 'href="/app/company/import"' in page.text
    form = browser.get("/app/company/import")
    assert form.status_code == 200 and 'enctype="multipart/form-data"' in form.text and 'type="file"' in form.text


def test_upload_map_dry_run_start_progress_done(browser: TestClient, kit: Site) -> None:
    location = upload(browser, GOOD_AND_BAD.encode("gbk"))
    import_id = int(location.rsplit("/", 1)[1])
    mapping = browser.get(location)
    assert mapping.status_code == 200
    for index, field in enumerate(("name", "employees", "kind")):  # suggested from the Chinese labels
        select = re.search(rf'<select id="map-{index}" name="map_{index}">(.*?)</select>', mapping.text, re.S)
        assert select and f'<option value="{field}" selected>' in select.group(1)
    assert "Alpha · Beta · Gamma" in mapping.text
    form = {"csrf_token": browser.csrf, "map_0": "name", "map_1": "employees", "map_2": "kind", "key": "", "mode": "all"}
    checked = browser.post(f"{location}/check", data=form)
    assert checked.status_code == 200
    assert 'id="dry-run"' in checked.text and "nothing was written" in checked.text
    errors = re.search(r'<table class="compact import-errors">(.*?)</table>', checked.text, re.S)
    assert errors and "<td>3</td>" in errors.group(1) and "many" in errors.group(1) and "whole number" in errors.group(1)
    assert 'id="start-form"' not in checked.text and "All or nothing" in checked.text  # a bad row blocks all-or-nothing
    assert company_names(kit) == []
    checked = browser.post(f"{location}/check", data={**form, "mode": "valid"})
    assert 'id="start-form"' in checked.text
    started = browser.post(f"{location}/start", data={"csrf_token": browser.csrf}, follow_redirects=False)
    assert started.status_code == 303 and started.headers["location"] == location
    first = browser.get(location).text
    assert 'id="import-progress"' in first and "<progress" in first
    done = wait_until_finished(browser, f"{location}/progress")
    assert 'hx-trigger' not in done and "Import finished" in done
    assert "2 created" in done and "1 not valid" in done and 'href="/app/company"' in done
    assert company_names(kit) == ["Alpha", "Gamma"]
    assert ImportStore(kit).progress(SYSTEM, import_id)["status"] == "done"


def test_progress_polls_with_htmx_while_the_job_runs(browser: TestClient, kit: Site) -> None:
    rows = "".join(f"Firm {i},{i}\n" for i in range(400))
    location = upload(browser, ("Name,Employees\n" + rows).encode())
    browser.post(f"{location}/check", data={"csrf_token": browser.csrf, "map_0": "name", "map_1": "employees", "mode": "all"})
    browser.post(f"{location}/start", data={"csrf_token": browser.csrf})
    fragment = browser.get(f"{location}/progress", headers={"HX-Request": "true"})
    assert fragment.status_code == 200 and fragment.text.lstrip().startswith('<section class="card" id="import-progress"')
    assert "<html" not in fragment.text
    done = wait_until_finished(browser, f"{location}/progress")
    assert "400 of 400 rows" in done and "400 created" in done


def test_import_screens_in_chinese(browser: TestClient, kit: Site) -> None:
    browser.post("/me/language", data={"csrf_token": browser.csrf, "language": "zh-CN", "next": "/"})
    assert "导入公司" in browser.get("/app/company/import").text
    location = upload(browser, b"Name\nA\n")
    page = browser.get(location).text
    assert "将列映射到字段" in page and "检查（试运行）" in page and "全部或全不" in page


def test_a_bad_file_is_explained_on_the_upload_page(browser: TestClient) -> None:
    response = browser.post("/app/company/import", data={"csrf_token": browser.csrf}, files={"file": ("x.xlsx", b"PK\x03\x04junk", "application/octet-stream")})
    assert response.status_code == 400 and "Excel file cannot be read" in response.text


def test_the_import_screen_needs_create_permission(kit: Site) -> None:
    user_id = kit.users.create_user("viewer", "viewer-password")
    kit.permissions.create_role("viewer", "Viewer")
    kit.permissions.grant("viewer", "company", "read", "all")
    kit.permissions.assign_role(user_id, "viewer")
    with TestClient(create_app(kit)) as client:
        log_in(client, "viewer", "viewer-password")
        assert client.get("/app/company/import").status_code == 403
        refused = client.post("/app/company/import", data={"csrf_token": client.csrf}, files={"file": ("a.csv", b"Name\nA\n", "text/csv")})
        assert refused.status_code in (400, 403) and company_names(kit) == []


# -- the API ----------------------------------------------------------------------------------------------------------
def test_api_dry_run_then_import_and_progress(api: TestClient, kit: Site) -> None:
    kit.records.create(SYSTEM, "company", {"name": "Alpha", "employees": 1, "email": "keep@alpha.cn"})
    files = {"file": ("companies.csv", GOOD_AND_BAD.encode(), "text/csv")}
    dry = api.post("/api/v1/imports", data={"entity": "company", "key": "name", "mode": "valid", "dry_run": "true",
                                            "mapping": json.dumps({"名称": "name", "员工数": "employees", "类型": "kind"})}, files=files)
    assert dry.status_code == 200, dry.text
    body = dry.json()
    assert (body["total"], body["created"], body["updated"], body["failed"], body["written"]) == (3, 1, 1, 1, False)
    assert [(e["row"], e["field"], e["value"]) for e in body["errors"]] == [(3, "employees", "many")]
    assert company_names(kit) == ["Alpha"]
    started = api.post("/api/v1/imports", data={"entity": "company", "key": "name", "mode": "valid"}, files=files)
    assert started.status_code == 202, started.text
    progress = wait_for(api, started.json()["progress_url"])
    assert (progress["status"], progress["created"], progress["updated"], progress["failed"], progress["done"], progress["total"]) == ("done", 1, 1, 1, 3, 3)
    assert progress["errors"][0]["reason"].startswith("expected a whole number")
    assert company_names(kit) == ["Alpha", "Gamma"]
    alpha = kit.records.list(SYSTEM, "company", ListQuery(search="Alpha")).records[0]
    assert (alpha["employees"], alpha["email"], alpha["kind"]) == (10, "keep@alpha.cn", "dealer")


def test_api_xlsx_all_or_nothing_refuses_and_reports(api: TestClient, kit: Site) -> None:
    book = openpyxl.Workbook()
    book.active.append(["Name", "Employees"])
    book.active.append(["Fine", 1])
    book.active.append([None, 2])
    buffer = io.BytesIO()
    book.save(buffer)
    started = api.post("/api/v1/imports", data={"entity": "company", "mode": "all"},
                       files={"file": ("c.xlsx", buffer.getvalue(), "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")})
    assert started.status_code == 202
    progress = wait_for(api, started.json()["progress_url"])
    assert (progress["status"], progress["created"], progress["failed"]) == ("refused", 0, 1)
    assert progress["errors"][0]["row"] == 3 and progress["errors"][0]["field"] == "name"
    assert company_names(kit) == []


def test_api_refusals(api: TestClient, client: TestClient, kit: Site) -> None:
    files = {"file": ("a.csv", b"Name\nA\n", "text/csv")}
    assert api.post("/api/v1/imports", data={"entity": "nothing"}, files=files).status_code == 404
    bad = api.post("/api/v1/imports", data={"entity": "company", "mapping": json.dumps({"Missing": "name"})}, files=files)
    assert bad.status_code == 400 and "no column 'Missing'" in bad.text
    assert api.get("/api/v1/imports/999").status_code == 404
    user_id = kit.users.create_user("reader", "reader-password")
    kit.permissions.create_role("reader", "Reader")
    kit.permissions.grant("reader", "company", "read", "all")
    kit.permissions.assign_role(user_id, "reader")
    token, _ = kit.users.create_token(user_id, "t")
    refused = client.post("/api/v1/imports", data={"entity": "company"}, files=files, headers={"Authorization": f"Bearer {token}"})
    assert refused.status_code == 403 and company_names(kit) == []


# -- possible duplicates --------------------------------------------------------------------------------------------------
LOOKALIKE = "客户名称,电话\n佛山华夏陶瓷,\n新客户贸易,\n"


def test_the_dry_run_lists_possible_duplicates_and_the_users_choice_decides(site: Site) -> None:
    huaxia = site.records.create(SYSTEM, "account", {"name": "佛山市华夏陶瓷有限公司"})
    user_with_role(site, "ivy", "ivy-password", display_name="Ivy")
    with TestClient(create_app(site)) as browser:
        log_in(browser, "ivy", "ivy-password")
        location = upload(browser, LOOKALIKE.encode(), "accounts.csv", "account")
        page = browser.get(location).text
        assert 'name="duplicates" value="skip" style="width: auto;" checked' in page and 'value="update"' in page
        form = {"csrf_token": browser.csrf, "map_0": "name", "map_1": "phone", "key": "", "mode": "all", "duplicates": "skip"}
        checked = browser.post(f"{location}/check", data=form)
        assert checked.status_code == 200 and 'id="duplicates-notice"' in checked.text
        table = re.search(r'<table class="compact import-duplicates".*?</table>', checked.text, re.S)
        assert table and f'href="/app/account/{huaxia["id"]}"' in table.group(0) and "similar name" in table.group(0)
        assert '<tr data-row="2">' in table.group(0) and "<td>skipped</td>" in table.group(0) and "新客户贸易" not in table.group(0)
        assert "1 to create" in checked.text
        refused = browser.post(f"{location}/check", data={**form, "duplicates": "update"})
        assert refused.status_code == 400 and "needs a key" in refused.text
        anyway = browser.post(f"{location}/check", data={**form, "duplicates": "import"})
        assert "2 to create" in anyway.text and "imported as a new record" in anyway.text
        browser.post(f"{location}/start", data={"csrf_token": browser.csrf})
        done = wait_until_finished(browser, f"{location}/progress")
        assert "2 created" in done and 'class="compact import-duplicates"' in done  # the outcome still lists them
    names = sorted(r["name"] for r in site.records.list(SYSTEM, "account", ListQuery()).records)
    assert names == ["佛山华夏陶瓷", "佛山市华夏陶瓷有限公司", "新客户贸易"]


def test_api_import_reports_and_skips_possible_duplicates(site: Site, admin: Actor) -> None:
    site.records.create(SYSTEM, "account", {"name": "佛山市华夏陶瓷有限公司"})
    token, _ = site.users.create_token(admin.user_id, "t")
    with TestClient(create_app(site)) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        files = {"file": ("accounts.csv", LOOKALIKE.encode(), "text/csv")}
        dry = client.post("/api/v1/imports", data={"entity": "account", "dry_run": "true"}, files=files).json()
        assert (dry["created"], dry["skipped"], [d["row"] for d in dry["duplicates"]]) == (1, 1, [2])
        assert dry["duplicates"][0]["matches"][0]["title"] == "佛山市华夏陶瓷有限公司"
        bad = client.post("/api/v1/imports", data={"entity": "account", "dry_run": "true", "duplicates": "update"}, files=files)
        assert bad.status_code == 400 and "needs a key" in bad.text and "duplicates" in bad.text
        started = client.post("/api/v1/imports", data={"entity": "account"}, files=files)
        progress = wait_for(client, started.json()["progress_url"])
        assert (progress["status"], progress["created"], progress["skipped"]) == ("done", 1, 1)
        assert progress["duplicates"][0]["action"] == "skipped"


# -- exports ------------------------------------------------------------------------------------------------------------
def test_excel_export_has_the_csv_filters_typed_cells_and_no_formulas(browser: TestClient, kit: Site) -> None:
    for i in range(3):
        kit.records.create(SYSTEM, "company", {"name": f"Export {i}", "kind": "dealer", "revenue": "1234.50", "founded": "2020-01-0" + str(i + 1)})
    kit.records.create(SYSTEM, "company", {"name": "=HYPERLINK(evil)", "kind": "dealer"})
    kit.records.create(SYSTEM, "company", {"name": "Not a dealer", "kind": "customer"})
    response = browser.get("/app/company/export.xlsx?kind=dealer&page_size=2")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    assert 'filename="company.xlsx"' in response.headers["content-disposition"]
    sheet = openpyxl.load_workbook(io.BytesIO(response.content)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0] == ("Number", "Name", "Kind", "Revenue", "Founded")
    csv_lines = browser.get("/app/company/export.csv?kind=dealer&page_size=2").content.decode("utf-8-sig").strip().splitlines()
    assert len(rows) == len(csv_lines) == 5  # the same records as the CSV export
    names = [r[1] for r in rows[1:]]
    assert "'=HYPERLINK(evil)" in names and "Not a dealer" not in names
    cells = {c.value: c for c in sheet["B"]}
    assert cells["'=HYPERLINK(evil)"].data_type == "s"
    export0 = next(r for r in rows if r[1] == "Export 0")
    assert export0[2] == "Dealer" and float(export0[3]) == 1234.5 and export0[4].date().isoformat() == "2020-01-01"


def test_excel_export_needs_the_export_permission(kit: Site) -> None:
    user_id = kit.users.create_user("reader", "reader-password")
    kit.permissions.create_role("reader", "Reader")
    kit.permissions.grant("reader", "company", "read", "all")
    kit.permissions.assign_role(user_id, "reader")
    with TestClient(create_app(kit)) as client:
        log_in(client, "reader", "reader-password")
        assert client.get("/app/company/export.xlsx").status_code == 403
        assert client.get("/reports/export.xlsx?spec=" + quote(json.dumps({"entity": "company"}))).status_code == 403


def test_report_results_as_excel_and_csv(browser: TestClient, kit: Site) -> None:
    for kind, revenue in (("dealer", "100"), ("dealer", "50.5"), ("customer", "7")):
        kit.records.create(SYSTEM, "company", {"name": f"{kind} {revenue}", "kind": kind, "revenue": revenue})
    spec = {"entity": "company", "group_by": ["kind"], "measures": [{"aggregate": "count"}, {"aggregate": "sum", "field": "revenue"}]}
    response = browser.get("/reports/export.xlsx?spec=" + quote(json.dumps(spec)))
    assert response.status_code == 200, response.text
    rows = list(openpyxl.load_workbook(io.BytesIO(response.content)).active.iter_rows(values_only=True))
    assert rows[0] == ("Kind", "Count", "Sum · Revenue")
    body = {r[0]: r[1:] for r in rows[1:]}
    assert body["Dealer"][0] == 2 and float(body["Dealer"][1]) == 150.5
    assert body["Customer"][0] == 1 and body["Total"][0] == 3 and float(body["Total"][1]) == 157.5
    as_csv = browser.get("/reports/export.csv?spec=" + quote(json.dumps(spec)))
    lines = as_csv.content.decode("utf-8-sig").strip().splitlines()
    assert lines[0] == "Kind,Count,Sum · Revenue" and "Total,3,157.50" in lines
    assert browser.get("/reports/export.xlsx?spec=nonsense").status_code == 400


def test_excel_export_keeps_a_views_filter_like_the_csv(site: Site, admin: Actor) -> None:
    for name, kind in (("Dealer A", "dealer"), ("Dealer B", "dealer"), ("End C", "end_customer")):
        site.records.create(admin, "account", {"name": name, "customer_type": kind, "region": "华南"})
    site.users.set_password("admin", "admin-password")
    with TestClient(create_app(site)) as client:
        log_in(client, "admin", "admin-password")
        sheet = openpyxl.load_workbook(io.BytesIO(client.get("/app/account/export.xlsx?view=dealers").content)).active
        rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:3] == ("Account No.", "Account name", "Region")
    assert sorted(r[1] for r in rows[1:]) == ["Dealer A", "Dealer B"]
