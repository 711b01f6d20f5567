"""Imports from CSV and Excel: reading files (BOM, GBK, sniffed delimiters, typed .xlsx cells),
the suggested mapping (field names, English and Chinese labels), conversion by field type, the
dry run (every bad row, nothing written), all-or-nothing and valid-rows-only, update-or-insert
by a key, permissions, the job and its progress, and 5,000 rows in reasonable time."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path

import openpyxl
import pytest
import sqlalchemy as sa

from crm_platform.engine import imports, jobs
from crm_platform.engine.imports import Importer, ImportSettings, read_table, suggest_mapping
from crm_platform.engine.imports_store import ImportStore
from crm_platform.engine.records.actor import Actor
from crm_platform.engine.records.errors import BadRequest, Forbidden
from crm_platform.engine.records.list_query import ListQuery
from crm_platform.engine.site import Site
from tests.conftest import FIXTURE_PACKS, REPO
from tests.packs.test_crm_standard_flows import staff

SYSTEM = Actor.system()


@pytest.fixture
def boss(kit: Site) -> Actor:
    user_id = kit.users.create_user("boss", "boss-password", "Boss", is_admin=True)
    actor = kit.users.actor(user_id)
    assert actor is not None
    return actor


def xlsx(rows: list[list[object]], formats: dict[tuple[int, int], str] | None = None) -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    for (r, c), number_format in (formats or {}).items():
        sheet.cell(row=r, column=c).number_format = number_format
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def csv_bytes(text: str, encoding: str = "utf-8") -> bytes:
    return text.encode(encoding)


def count(site: Site, entity: str) -> int:
    table = site.schema.tables[entity]
    with site.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table).where(table.c.deleted_at.is_(None))).scalar_one()


def names(site: Site, entity: str = "company") -> list[str]:
    return sorted(r["name"] for r in site.records.list(SYSTEM, entity, ListQuery(page_size=500)).records)


def run(site: Site, actor: Actor, entity: str, data: bytes, file_name: str = "data.csv", dry_run: bool = False,
        key: str | None = None, mode: str = "all", mapping: list[str | None] | None = None) -> imports.ImportResult:
    table = read_table(data, file_name)
    if mapping is None:
        mapping = suggest_mapping(site, actor, site.registry.entity(entity), table.headers)
    return Importer(site, actor, entity, table, ImportSettings(mapping, key, mode)).run(dry_run=dry_run)


# -- reading files ---------------------------------------------------------------------------------------
def test_csv_with_bom_semicolons_and_quoted_lines() -> None:
    table = read_table(csv_bytes('\ufeffName;Notes;Employees\n"Acme; Ltd";"two\nlines";12\n\n;;\nBeta;;3\n'))
    assert table.headers == ["Name", "Notes", "Employees"]
    assert (table.encoding, table.delimiter, table.file_format) == ("utf-8-sig", ";", "csv")
    assert table.rows == [(2, ["Acme; Ltd", "two\nlines", "12"]), (5, ["Beta", "", "3"])]  # blank rows skipped, numbers kept


def test_gbk_csv_as_chinese_excel_saves_it_and_tabs() -> None:
    table = read_table(csv_bytes("名称,员工数\n佛山陶瓷,12\n", "gbk"), "客户.csv")
    assert (table.headers, table.encoding, table.rows) == (["名称", "员工数"], "gbk", [(2, ["佛山陶瓷", "12"])])
    tabbed = read_table(csv_bytes("Name\tKind\nA, B\tdealer\n"))
    assert (tabbed.delimiter, tabbed.rows) == ("\t", [(2, ["A, B", "dealer"])])


def test_xlsx_cells_keep_their_types() -> None:
    data = xlsx([["Name", "Founded", "Discount", "Active", None], ["Acme", dt.datetime(2024, 3, 5), 0.15, True, None], [None], ["Beta", None, 5, False]],
                formats={(2, 3): "0%"})
    table = read_table(data, "companies.xlsx")
    assert table.headers == ["Name", "Founded", "Discount", "Active"] and table.file_format == "xlsx"
    number, cells = table.rows[0]
    assert number == 2 and cells[0] == "Acme" and cells[1] == dt.datetime(2024, 3, 5) and cells[3] is True
    assert isinstance(cells[2], imports.Percent) and imports.cell_text(cells[2]) == "15%"
    assert table.rows[1][0] == 4  # the row number a spreadsheet shows, blank rows counted


def test_unreadable_files_are_refused_with_a_reason() -> None:
    with pytest.raises(BadRequest, match="xlsx"):
        read_table(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, "old.xls")
    with pytest.raises(BadRequest, match="Excel file cannot be read"):
        read_table(b"PK\x03\x04broken", "x.xlsx")
    with pytest.raises(BadRequest, match="no header"):
        read_table(b"\n\n", "empty.csv")


# -- mapping and conversion -----------------------------------------------------------------------------------
def test_suggested_mapping_matches_names_and_both_labels(kit: Site, boss: Actor) -> None:
    company = kit.registry.entity("company")
    headers = ["名称", "员工数", "KIND", "last contact", "Parent Company", "Revenue currency", "ID", "something else", "Name"]
    assert suggest_mapping(kit, boss, company, headers) == [
        "name", "employees", "kind", "last_contact", "parent", "revenue_currency", None, None, None]  # a field is mapped once


def test_values_are_converted_by_field_type(kit: Site, boss: Actor) -> None:
    parent = kit.records.create(SYSTEM, "company", {"name": "Huanan Group"})
    data = csv_bytes(
        "名称,类型,渠道,成立日期,最近联系,有效,营收,折扣,员工数,上级公司,评分\n"
        "A,经销商,电话、微信,2024/3/5,2024-03-05 14:30,是,\"¥1,200.50\",15%,\"1,200\",huanan group,1.5\n"
        "B,Public body,email; phone,05.03.2024,2024年3月5日 9:05,no,USD 99,7.5,3,#" + str(parent["id"]) + ",\n"
        "C,dealer,,20240305,2024-03-05,Y,１２３,0,0,,\n")
    result = run(kit, boss, "company", data)
    assert (result.created, result.failed, result.errors) == (3, 0, [])
    rows = {r["name"]: r for r in kit.records.list(SYSTEM, "company", ListQuery(page_size=10)).records}
    a, b, c = rows["A"], rows["B"], rows["C"]
    assert (a["kind"], a["channels"], a["founded"], a["active"], a["revenue"], a["discount"], a["employees"], a["parent"]) == (
        "dealer", ["phone", "wechat"], "2024-03-05", True, "1200.50", "15.0000", 1200, parent["id"])
    assert a["last_contact"].startswith("2024-03-05T14:30") and a["score"] == "1.500"
    assert (b["kind"], b["channels"], b["founded"], b["active"], b["revenue"], b["revenue_currency"], b["parent"]) == (
        "public_body", ["phone", "email"], "2024-03-05", False, "99.00", "USD", parent["id"])
    assert b["last_contact"].startswith("2024-03-05T09:05")
    assert (c["founded"], c["active"], c["revenue"], c["last_contact"][:10]) == ("2024-03-05", True, "123.00", "2024-03-05")
    assert {a["owner_id"], b["owner_id"], c["owner_id"]} == {boss.user_id}


def test_xlsx_import_with_typed_cells(kit: Site, boss: Actor) -> None:
    data = xlsx([["Name", "Founded", "Discount", "Active", "Employees", "Revenue", "Last contact"],
                 ["Typed", dt.date(2023, 1, 31), 0.125, False, 40.0, 1234.5, dt.datetime(2024, 5, 6, 7, 8)]], formats={(2, 3): "0.0%"})
    result = run(kit, boss, "company", data, "companies.xlsx")
    assert (result.created, result.errors) == (1, [])
    record = kit.records.list(SYSTEM, "company", ListQuery()).records[0]
    assert (record["founded"], record["discount"], record["active"], record["employees"], record["revenue"]) == (
        "2023-01-31", "12.5000", False, 40, "1234.50")
    assert record["last_contact"].startswith("2024-05-06T07:08")


# -- dry run and modes ------------------------------------------------------------------------------------------
BAD_FILE = ("Name,Employees,Kind,Founded,Parent company,Email\n"
            "Good One,10,dealer,2024-01-02,,a@example.com\n"
            "Bad Number,many,dealer,,,\n"
            ",5,Nope,2024-02-30,Nobody,not-an-email\n"
            "Good Two,-3,customer,,,\n"
            "Good Three,7,,,Good One,\n")


def test_dry_run_lists_every_bad_row_with_field_and_reason_and_writes_nothing(kit: Site, boss: Actor) -> None:
    counters = kit.schema.system["crm_autonumber"]
    result = run(kit, boss, "company", csv_bytes(BAD_FILE), dry_run=True, mode="valid")
    assert (result.total, result.created, result.failed, result.written) == (5, 2, 3, False)
    found = {(e["row"], e["field"]) for e in result.errors}
    assert found == {(3, "employees"), (4, "name"), (4, "kind"), (4, "founded"), (4, "parent"), (4, "email"), (5, "employees")}
    by = {(e["row"], e["field"]): e for e in result.errors}
    assert by[(3, "employees")]["value"] == "many" and "whole number" in by[(3, "employees")]["reason"]
    assert by[(4, "parent")]["reason"] == "no Company is called 'Nobody'"
    assert by[(4, "name")]["reason"] == "Name is required" and by[(4, "kind")]["column"] == "Kind"
    assert "at least 0" in by[(5, "employees")]["reason"]
    assert result.as_dict()["bad_rows"] == [3, 4, 5]
    assert count(kit, "company") == 0
    with kit.engine.connect() as conn:  # not even the auto-number counter or the history moved
        assert conn.execute(sa.select(sa.func.count()).select_from(counters)).scalar_one() == 0
        assert conn.execute(sa.select(sa.func.count()).select_from(kit.schema.system["crm_history"])).scalar_one() == 0


def test_all_or_nothing_writes_nothing_when_one_row_is_bad(kit: Site, boss: Actor) -> None:
    result = run(kit, boss, "company", csv_bytes(BAD_FILE), mode="all")
    assert (result.written, result.failed) == (False, 3)
    assert count(kit, "company") == 0
    good = run(kit, boss, "company", csv_bytes("Name,Employees\nFine,1\nAlso fine,2\n"), mode="all")
    assert (good.written, good.created) == (True, 2) and names(kit) == ["Also fine", "Fine"]


def test_valid_rows_only_writes_the_good_rows_and_reports_the_bad(kit: Site, boss: Actor) -> None:
    result = run(kit, boss, "company", csv_bytes(BAD_FILE), mode="valid")
    assert (result.written, result.created, result.failed) == (True, 2, 3)
    assert names(kit) == ["Good One", "Good Three"]
    three = next(r for r in kit.records.list(SYSTEM, "company", ListQuery(search="Three")).records)
    assert three["_titles"]["parent"] == "Good One"  # a reference to a row created earlier in the same file
    assert sorted({e["row"] for e in result.errors}) == [3, 4, 5]


def test_update_or_insert_by_key_merges_only_the_mapped_fields(kit: Site, boss: Actor) -> None:
    acme = kit.records.create(SYSTEM, "company", {"name": "Acme", "employees": 5, "email": "old@acme.cn", "kind": "customer"})
    data = csv_bytes("Name,Employees,Email\nAcme,50,\nNewco,7,new@newco.cn\nNewco,8,\n")
    result = run(kit, boss, "company", data, key="name", mode="all")
    assert (result.created, result.updated, result.failed) == (1, 2, 0)
    updated = kit.records.get(SYSTEM, "company", acme["id"])
    assert (updated["employees"], updated["email"], updated["kind"], updated["version"]) == (50, "old@acme.cn", "customer", 2)
    newco = next(r for r in kit.records.list(SYSTEM, "company", ListQuery(search="Newco")).records)
    assert (newco["employees"], newco["email"]) == (8, "new@newco.cn")  # the second row updated the record the first created
    by_number = run(kit, boss, "company", csv_bytes(f"Number,Employees\n{acme['number']},60\nC-1999-999,1\n"), key="number", mode="valid")
    assert (by_number.updated, by_number.created, by_number.failed) == (1, 0, 1)
    assert (by_number.errors[0]["row"], by_number.errors[0]["field"]) == (3, "name")  # not found: a new record needs its name
    assert kit.records.get(SYSTEM, "company", acme["id"])["employees"] == 60
    by_id = run(kit, boss, "company", csv_bytes(f"ID,Name\n{acme['id']},Acme Renamed\n99999,Ghost\n"), key="id", mode="valid")
    assert (by_id.updated, by_id.created, by_id.failed) == (1, 0, 1)
    assert by_id.errors[0]["field"] == "id" and "99999" in by_id.errors[0]["reason"]
    assert kit.records.get(SYSTEM, "company", acme["id"])["name"] == "Acme Renamed"


def test_bad_settings_are_refused_before_any_row(kit: Site, boss: Actor) -> None:
    table = read_table(csv_bytes("Name,Number\nA,1\n"))
    with pytest.raises(BadRequest) as refused:
        Importer(kit, boss, "company", table, ImportSettings(["name", "nonsense"], key="kind", mode="sometimes")).check()
    assert {d.field for d in refused.value.details} == {"mode", "mapping", "key"}
    with pytest.raises(BadRequest, match="mapped to two columns"):
        Importer(kit, boss, "company", table, ImportSettings(["name", "name"])).check()
    with pytest.raises(BadRequest, match="imported with their deal"):
        Importer(kit, boss, "deal_line", table, ImportSettings(["item", None])).check()


# -- permissions --------------------------------------------------------------------------------------------------
def test_imports_respect_permissions_and_records_belong_to_the_importer(site: Site) -> None:
    people = staff(site)
    data = csv_bytes("客户名称,客户类型,地区\n佛山建材,经销商/代理商,华南\n")
    with pytest.raises(Forbidden, match="create"):
        run(site, people["cfo"], "account", data)  # finance may read and update accounts, not create them
    with pytest.raises(Forbidden):
        ImportStore(site).upload(people["cfo"], "account", "a.csv", data)
    result = run(site, people["rep"], "account", data)
    assert (result.created, result.errors) == (1, [])
    account = site.records.list(people["rep"], "account", ListQuery()).records[0]
    assert (account["name"], account["customer_type"], account["region"], account["owner_id"]) == ("佛山建材", "dealer", "华南", people["rep"].user_id)
    credit = csv_bytes("Account name,Credit limit\n佛山建材,5000\n")
    with pytest.raises(Forbidden, match="read-only"):  # a field the role may not write
        run(site, people["rep"], "account", credit, mapping=["name", "credit_limit"])
    other = site.records.create(SYSTEM, "account", {"name": "Someone Else's"})
    update = run(site, people["rep"], "account", csv_bytes(f"ID,Region\n{other['id']},华东\n"), key="id", mode="valid")
    assert (update.updated, update.failed) == (0, 1) and update.errors[0]["field"] == "id"  # not visible to the rep
    assert site.records.get(SYSTEM, "account", other["id"])["region"] is None


def test_chinese_xlsx_into_standard_accounts_by_zh_labels(site: Site, admin: Actor) -> None:
    data = xlsx([["客户名称", "客户类型", "行业", "年营业额", "成为客户日期", "有效"],
                 ["广州瓷砖批发", "经销商/代理商", "零售", 1500000, dt.datetime(2020, 6, 1), "是"],
                 ["深圳酒店", "终端客户", "酒店餐饮", "￥2,000,000", "2021/7/8", "否"]])
    table = read_table(data, "客户.xlsx")
    mapping = suggest_mapping(site, admin, site.registry.entity("account"), table.headers)
    assert mapping == ["name", "customer_type", "industry", "annual_revenue", "since", "active"]
    result = Importer(site, admin, "account", table, ImportSettings(mapping)).run()
    assert (result.created, result.errors) == (2, [])
    rows = {r["name"]: r for r in site.records.list(admin, "account", ListQuery()).records}
    assert (rows["广州瓷砖批发"]["customer_type"], rows["广州瓷砖批发"]["industry"], rows["广州瓷砖批发"]["since"]) == ("dealer", "retail", "2020-06-01")
    assert (rows["深圳酒店"]["annual_revenue"], rows["深圳酒店"]["active"]) == ("2000000.00", False)


def test_imported_records_enter_their_workflow_and_a_dry_run_leaves_no_jobs(site: Site, admin: Actor) -> None:
    account = site.records.create(SYSTEM, "account", {"name": "Kiln Supplies"})
    data = csv_bytes("Subject,Account,Kind,Priority,Opened at\nCracked tiles,Kiln Supplies,complaint,high,2026-06-01 08:00\n")
    job_table = site.schema.system["crm_job"]

    def pending() -> int:
        with site.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(job_table).where(job_table.c.status == "pending")).scalar_one()

    before = pending()
    dry = run(site, admin, "service_request", data, dry_run=True)
    assert (dry.created, dry.errors) == (1, []) and pending() == before
    result = run(site, admin, "service_request", data)
    assert result.created == 1
    request = site.records.list(admin, "service_request", ListQuery()).records[0]
    assert (request["status"], request["account"]) == ("new", account["id"])
    assert pending() == before + 1  # the 4-hour SLA timer


# -- the job and its progress ----------------------------------------------------------------------------------------
def test_the_job_runs_the_import_and_its_progress_is_visible(kit: Site, boss: Actor, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = "".join(f"Company {i},{i}\n" for i in range(300))
    store = ImportStore(kit)
    import_id, table = store.upload(boss, "company", "many.csv", csv_bytes("Name,Employees\n" + rows + ",1\n"))
    assert store.get(boss, import_id)["settings"].mapping == ["name", "employees"]
    store.save_settings(boss, import_id, ImportSettings(["name", "employees"], None, "valid"))
    seen: list[dict] = []
    calls = [0]
    original: Callable = Importer._row
    monkeypatch.setattr(imports, "PROGRESS_EVERY", 0.0)

    def watched(self: Importer, *args: object) -> object:
        calls[0] += 1
        if calls[0] == 151:  # the screen polls while the job runs
            seen.append(store.progress(boss, import_id))
        return original(self, *args)

    monkeypatch.setattr(Importer, "_row", watched)
    job_id = store.start(boss, import_id, background=False)
    assert seen and seen[0]["status"] == "running" and 0 < seen[0]["done"] < 301 and seen[0]["total"] == 301
    done = store.progress(boss, import_id)
    assert (done["status"], done["done"], done["created"], done["failed"], done["percent"], done["finished"]) == ("done", 301, 300, 1, 100, True)
    assert done["errors"][0]["row"] == 302 and done["errors"][0]["field"] == "name"
    assert jobs.get_job(kit, job_id)["status"] == "done"
    assert count(kit, "company") == 300
    with pytest.raises(BadRequest, match="done already"):
        store.start(boss, import_id)


def test_an_all_or_nothing_job_with_a_bad_row_is_refused_and_can_be_run_again(kit: Site, boss: Actor) -> None:
    store = ImportStore(kit)
    import_id, _table = store.upload(boss, "company", "bad.csv", csv_bytes(BAD_FILE))
    store.start(boss, import_id, background=False)
    refused = store.progress(boss, import_id)
    assert (refused["status"], refused["created"], refused["failed"]) == ("refused", 0, 3)
    assert "nothing was imported" in refused["message"] and count(kit, "company") == 0
    store.save_settings(boss, import_id, ImportSettings(store.get(boss, import_id)["settings"].mapping, None, "valid"))
    store.start(boss, import_id, background=False)
    assert (store.progress(boss, import_id)["status"], count(kit, "company")) == ("done", 2)


def test_someone_elses_import_is_not_found(kit: Site, boss: Actor) -> None:
    store = ImportStore(kit)
    import_id, _table = store.upload(boss, "company", "a.csv", csv_bytes("Name\nA\n"))
    other_id = kit.users.create_user("other", "other-password")
    kit.permissions.create_role("clerk", "Clerk")
    kit.permissions.grant("clerk", "company", "create", "own")
    kit.permissions.assign_role(other_id, "clerk")
    other = kit.users.actor(other_id)
    with pytest.raises(Exception, match="not found"):
        store.progress(other, import_id)


def test_five_thousand_rows_in_reasonable_time(kit: Site, boss: Actor) -> None:
    kinds = ["Customer", "经销商", "public_body"]
    lines = "".join(f"Firm {i:05d},{i % 900},{kinds[i % 3]},2024-{1 + i % 12:02d}-{1 + i % 28:02d},firm{i}@example.com\n" for i in range(5000))
    data = csv_bytes("Name,Employees,Kind,Founded,Email\n" + lines)
    start = time.perf_counter()
    result = run(kit, boss, "company", data, mode="all")
    elapsed = time.perf_counter() - start
    assert (result.created, result.failed, result.written) == (5000, 0, True)
    assert count(kit, "company") == 5000
    assert elapsed < 180, f"5,000 rows took {elapsed:.1f} s"
    sample = kit.records.list(SYSTEM, "company", ListQuery(search="Firm 04999")).records[0]
    assert (sample["kind"], sample["employees"], sample["founded"]) == ("dealer", 4999 % 900, "2024-08-16")


# -- with Redis: an arq worker runs the import ----------------------------------------------------------------------------
REDIS_URL = os.environ.get("CRM_TEST_REDIS_URL")


@pytest.mark.skipif(not REDIS_URL, reason="needs a Redis server: set CRM_TEST_REDIS_URL (./test does)")
@pytest.mark.timeout(120)
def test_with_redis_a_worker_process_runs_the_import(kit: Site, boss: Actor, database_url: str, tmp_path: Path) -> None:
    import redis

    from tests.engine.test_jobs_redis import WorkerProcess, wait_for

    queue = f"crm-test:{secrets.token_hex(4)}"
    kit.settings = dataclasses.replace(kit.settings, redis_url=REDIS_URL, extra={"job_queue": queue})
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRM_SMTP_", "CRM_CLOCK_"))}
    env.update({"CRM_DATABASE_URL": database_url, "CRM_VAR_DIR": str(tmp_path / "worker-var"), "CRM_SECRET_KEY": "test",
                "CRM_PACKS": "testkit", "CRM_PACKS_PATH": str(FIXTURE_PACKS), "CRM_REDIS_URL": REDIS_URL or "",
                "CRM_JOB_QUEUE": queue, "CRM_JOB_MODULES": "crm_platform.engine.imports",
                "PYTHONPATH": os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)})
    worker = WorkerProcess(env, tmp_path / "worker.log").wait_ready()
    try:
        store = ImportStore(kit)
        import_id, _table = store.upload(boss, "company", "w.csv", csv_bytes("Name,Employees\n" + "".join(f"W{i},{i}\n" for i in range(50))))
        job_id = store.start(boss, import_id)
        wait_for(lambda: store.progress(boss, import_id)["finished"], 60, "the worker to run the import", worker)
        done = store.progress(boss, import_id)
        assert (done["status"], done["created"], done["failed"]) == ("done", 50, 0)
        assert jobs.get_job(kit, job_id)["status"] == "done" and count(kit, "company") == 50
    finally:
        worker.stop()
        client = redis.Redis.from_url(REDIS_URL or "")
        keys = list(client.scan_iter(match=f"*{queue}*"))
        if keys:
            client.delete(*keys)
        client.close()


# -- possible duplicates ------------------------------------------------------------------------------------------------
LOOKALIKES = ("Account name,Phone,Region\n"
              "佛山华夏陶瓷,,华南\n"                  # row 2: like the existing account, by name
              "Kiln Works Ltd,,华东\n"               # row 3: new
              "Kiln Works,,华东\n"                   # row 4: like row 3 of the same file
              "Harbour Hotel,+86 757 88880000,\n"    # row 5: like the existing account, by phone
              "Brand New Trading,,\n")               # row 6: new


def by_name(site: Site) -> dict[str, int]:
    return {r["name"]: r["id"] for r in site.records.list(SYSTEM, "account", ListQuery(page_size=50)).records}


def existing_account(site: Site) -> dict:
    return site.records.create(SYSTEM, "account", {"name": "佛山市华夏陶瓷有限公司", "phone": "0757-8888 0000"})


def test_the_dry_run_lists_rows_that_look_like_records_or_earlier_rows(site: Site, admin: Actor) -> None:
    huaxia = existing_account(site)
    result = run(site, admin, "account", csv_bytes(LOOKALIKES), dry_run=True)
    assert (result.created, result.skipped, result.failed, result.written) == (2, 3, 0, False)
    by_row = {d["row"]: d for d in result.duplicates}
    assert sorted(by_row) == [2, 4, 5] and {d["action"] for d in result.duplicates} == {"skipped"}
    name_match = by_row[2]["matches"][0]
    assert (name_match["id"], name_match["title"], name_match["row"]) == (huaxia["id"], "佛山市华夏陶瓷有限公司", None)
    assert name_match["reasons"][0]["kind"] == "name" and name_match["url"] == f"/app/account/{huaxia['id']}"
    earlier = by_row[4]["matches"][0]
    assert (earlier["row"], earlier["title"], earlier["reasons"][0]["kind"]) == (3, "Kiln Works Ltd", "name")
    assert by_row[5]["matches"][0]["id"] == huaxia["id"] and by_row[5]["matches"][0]["reasons"][0]["kind"] == "phone"
    assert count(site, "account") == 1  # a dry run writes nothing


def test_skipping_importing_anyway_or_updating_the_matched_record(site: Site, admin: Actor) -> None:
    huaxia = existing_account(site)
    table = read_table(csv_bytes(LOOKALIKES))
    mapping = suggest_mapping(site, admin, site.registry.entity("account"), table.headers)
    skipped = Importer(site, admin, "account", table, ImportSettings(mapping, None, "all", "skip")).run()
    assert (skipped.created, skipped.skipped, skipped.written) == (2, 3, True)
    assert sorted(r["name"] for r in site.records.list(SYSTEM, "account", ListQuery(page_size=50)).records) == \
        ["Brand New Trading", "Kiln Works Ltd", "佛山市华夏陶瓷有限公司"]
    with pytest.raises(BadRequest, match="needs a key") as refused:
        Importer(site, admin, "account", table, ImportSettings(mapping, None, "all", "update")).check()
    assert refused.value.details[0].field == "duplicates"
    with pytest.raises(BadRequest, match="possible duplicates are one of"):
        Importer(site, admin, "account", table, ImportSettings(mapping, None, "all", "maybe")).check()
    # update-or-insert by name: rows 3 and 6 find their records by the key; rows 2, 4 and 5 would be
    # new records but look like existing ones, which they update instead
    updated = Importer(site, admin, "account", table, ImportSettings(mapping, "name", "all", "update")).run()
    assert (updated.created, updated.updated, updated.skipped, updated.failed) == (0, 5, 0, 0)
    assert {d["row"]: (d["action"], d["updated_id"]) for d in updated.duplicates} == \
        {2: ("updated", huaxia["id"]), 4: ("updated", by_name(site)["Kiln Works"]), 5: ("updated", huaxia["id"])}
    after = site.records.get(SYSTEM, "account", huaxia["id"])
    assert (after["name"], after["region"]) == ("Harbour Hotel", "华南")  # row 2's region, then row 5's name (its blank region left it)
    assert count(site, "account") == 3
    anyway = run(site, admin, "account", csv_bytes("Account name\nKiln Works\n"))  # default: skip
    assert (anyway.created, anyway.skipped) == (0, 1)
    forced = Importer(site, admin, "account", read_table(csv_bytes("Account name\nKiln Works\n")),
                      ImportSettings(["name"], None, "all", "import")).run()
    assert (forced.created, forced.skipped, forced.duplicates[0]["action"]) == (1, 0, "imported")
    assert count(site, "account") == 4


def test_records_the_user_may_not_read_are_not_reported(site: Site) -> None:
    people = staff(site)
    existing_account(site)  # owned by nobody in the rep's scope
    result = run(site, people["rep"], "account", csv_bytes("Account name\n佛山华夏陶瓷\n"), dry_run=True)
    assert (result.created, result.duplicates) == (1, [])


def test_a_row_the_database_refuses_in_a_batch_fails_alone(site: Site, admin: Actor) -> None:
    data = csv_bytes("Name\nTilecorp\nGlazeworks\nTilecorp\nKilnmasters\n")  # competitor names are unique
    result = run(site, admin, "competitor", data, mode="valid", mapping=["name"])
    assert (result.created, result.failed) == (3, 1)
    assert (result.errors[0]["row"], result.errors[0]["field"]) == (4, "name")
    assert sorted(r["name"] for r in site.records.list(SYSTEM, "competitor", ListQuery()).records) == ["Glazeworks", "Kilnmasters", "Tilecorp"]
    with site.engine.connect() as conn:  # each created record has its history; the refused one left none
        history = site.schema.system["crm_history"]
        rows = conn.execute(sa.select(sa.func.count(sa.distinct(history.c.record_id))).where(history.c.entity == "competitor")).scalar_one()
    assert rows == 3
