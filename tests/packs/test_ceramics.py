"""The ceramics pack (packs/ceramics): configuration only, installed on a site that already holds
crm_standard records, removed and reinstalled without losing data, and its rules and workflows as
users meet them through the record service and the API: ceramic product rules, custom orders
reviewed before finance while stock orders within the credit limit go straight on, dealers' stock
reports, samples, engineering project bids, kiln batches and quality complaints whose
compensation is approved by the quality manager (and finance above 5,000)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from crm_platform.config import Settings
from crm_platform.engine.clock import CLOCK
from crm_platform.engine.records.actor import Actor
from crm_platform.engine.records.errors import Forbidden, RecordError, ValidationFailed
from crm_platform.engine.records.list_query import ListQuery
from crm_platform.engine.site import Site
from crm_platform.metadata.loader import load_registry
from crm_platform.metadata.model import Registry
from crm_platform.ui.app import create_app
from tests.conftest import PACKS
from tests.test_cli import run

SYSTEM = Actor.system()
CERAMICS = PACKS / "ceramics"


# -- fixtures -----------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def ceramics_registry() -> Registry:
    return load_registry(["ceramics"], [PACKS])


@pytest.fixture
def cer(make_site: Callable[..., Site], ceramics_registry: Registry) -> Site:
    """A site serving crm_standard and ceramics."""
    return make_site(ceramics_registry)


def staff(site: Site) -> dict[str, Actor]:
    """The posts of a ceramics maker: sales (rep, manager), the plant (engineer, planner,
    quality manager and inspector) and finance, each holding a ceramics role."""
    admin = site.permissions
    sales = admin.create_unit("South sales", "department")
    plant = admin.create_unit("Foshan plant", "department")
    office = admin.create_unit("Finance", "department")
    found: dict[str, Actor] = {}
    for name, role, unit, manager in (
        ("director", "ceramics_sales_manager", sales, None), ("rep", "ceramics_sales_rep", sales, "director"),
        ("engineer", "technical_engineer", plant, None), ("planner", "production_planner", plant, None),
        ("qm", "quality_manager", plant, None), ("inspector", "quality_inspector", plant, "qm"),
        ("cfo", "ceramics_finance", office, None), ("agent", "ceramics_service_agent", sales, None),
    ):
        user_id = site.users.create_user(name, f"{name}-password", unit_id=unit, manager_id=found[manager].user_id if manager else None)
        admin.assign_role(user_id, role)
        actor = site.users.actor(user_id)
        assert actor is not None
        found[name] = actor
    time.sleep(0.6)  # the policy version is checked at most twice a second
    return found


def product_line(site: Site) -> int:
    lines = site.records.list(SYSTEM, "product_line", ListQuery()).records
    return lines[0]["id"] if lines else site.records.create(SYSTEM, "product_line", {"code": "PL-TILE", "name": "瓷砖 Tiles"})["id"]


def a_tile(site: Site, code: str = "TL-8080", **values: object) -> dict:
    data = {"code": code, "name": f"全抛釉砖 {code}", "product_line": product_line(site), "unit": "square_metre", "list_price": "100.00",
            "category": "floor_tile", "body": "porcelain", "size": "800×800", "thickness": "11", "water_absorption": "0.1", **values}
    return site.records.create(SYSTEM, "product", data)


def a_dealer(site: Site, actor: Actor, credit_limit: str | None = "100000", name: str = "东莞市鸿福陶瓷商行") -> dict:
    """A dealer owned by `actor`; its credit limit (read-only for sales) is set by the system, as finance would."""
    account = site.records.create(actor, "account", {"name": name, "customer_type": "dealer", "region": "广东·东莞", "dealer_tier": "tier_2"})
    if credit_limit is not None:
        account = site.records.update(SYSTEM, "account", account["id"], {"version": account["version"], "credit_limit": credit_limit})
    return account


def an_order(site: Site, actor: Actor, account: dict, product: dict, quantity: str, price: str, **values: object) -> dict:
    return site.records.create(actor, "sales_order", {"subject": "佛山陶瓷供货", "account": account["id"],
                                                      "lines": [{"product": product["id"], "quantity": quantity, "unit_price": price}], **values})


def fire(site: Site, actor: Actor, entity: str, record: dict, name: str, values: dict | None = None, comment: str | None = None) -> dict:
    return site.workflows.fire(actor, entity, record["id"], name, values, comment)


def refusal(call: Callable[[], object]) -> RecordError:
    with pytest.raises(RecordError) as caught:
        call()
    return caught.value


def steps(site: Site, entity: str, record: dict) -> list[str]:
    return [h["transition"] for h in site.workflows.history(entity, record["id"])]


# -- the pack is configuration ----------------------------------------------------------------

def test_the_pack_folder_holds_configuration_only() -> None:
    files = [p for p in CERAMICS.rglob("*") if p.is_file()]
    assert files, "the ceramics pack is missing"
    assert {p.suffix for p in files} <= {".yaml", ".rules", ".md"}, sorted({p.suffix for p in files})
    for path in files:
        assert not path.read_bytes().startswith(b"#!"), f"{path} is a script"
    validated = run(["pack", "validate", str(CERAMICS)], {})
    assert validated.returncode == 0, validated.stderr
    assert validated.stdout.startswith("ok: crm_standard 1.0.0, ceramics 1.0.0")
    checked = run(["rules", "check", str(CERAMICS)], {})
    assert checked.returncode == 0, checked.stderr


def test_the_pack_extends_the_standard_model(ceramics_registry: Registry) -> None:
    reg = ceramics_registry
    assert {p.name for p in reg.packs} == {"crm_standard", "ceramics"}
    product = reg.entity("product")
    for name in ("category", "body", "glaze_finish", "size", "thickness", "water_absorption", "firing_temperature", "shade", "calibre", "grade"):
        assert product.field(name).pack == "ceramics"
    assert reg.entity("account").field("credit_limit").pack == "crm_standard"  # reused, not redeclared
    assert "developer" in reg.entity("account").field("customer_type").option_values
    assert {"technical_review", "capacity_review", "pricing_review"} <= set(reg.entity("sales_order").field("status").option_values)
    for name in ("dealer_stock_report", "sample_request", "engineering_project", "kiln_batch", "quality_complaint"):
        assert reg.entities[name].pack == "ceramics"
    flow = next(w for w in reg.extra["workflows"] if w.name == "order_approval")
    assert {"technical_review", "capacity_review", "pricing_review"} <= {s.name for s in flow.states}
    assert {"release", "submit_for_review", "confirm_feasibility", "confirm_capacity", "confirm_pricing"} <= {t.name for t in flow.transitions}
    roles = {r.name: r for r in reg.extra["roles"]}
    assert roles["ceramics_sales_rep"].includes == ("sales_rep",) and "quality_manager" in roles
    director = {(m.name, i.view) for m in reg.menus for i in m.items if m.name == "director_desk"}
    assert {v for _, v in director} >= {"custom_review", "over_credit_limit", "bidding", "by_batch", "awaiting_feedback"}
    for view in reg.list_views.values():
        if view.pack == "ceramics":
            assert view.label.en and view.label.zh_cn


# -- installing on a site with data, removing, reinstalling -------------------------------------

@pytest.fixture
def std_env(tmp_path: Path, database_url: str) -> dict[str, str]:
    return {"CRM_DATABASE_URL": database_url, "CRM_VAR_DIR": str(tmp_path / "var"), "CRM_PACKS": "crm_standard", "CRM_PACKS_PATH": str(PACKS)}


def open_site(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Site:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return Site.open(Settings.from_env())


def test_installing_on_a_standard_site_keeps_its_records_and_removing_archives_the_columns(std_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    assert run(["db", "sync"], std_env).returncode == 0
    before = open_site(std_env, monkeypatch)
    dealer = before.records.create(SYSTEM, "account", {"name": "长沙金宇建材经营部", "customer_type": "dealer", "region": "湖南·长沙", "credit_limit": "300000"})
    tile = before.records.create(SYSTEM, "product", {"code": "TL-6060-X", "name": "抛光砖 600×600", "product_line": product_line(before), "unit": "square_metre"})
    order = before.records.create(SYSTEM, "sales_order", {"subject": "年度经销合同", "account": dealer["id"],
                                                         "lines": [{"product": tile["id"], "quantity": "100", "unit_price": "72.00"}]})
    old = {name: before.records.get(SYSTEM, entity, record["id"]) for name, entity, record in
           (("dealer", "account", dealer), ("tile", "product", tile), ("order", "sales_order", order))}
    before.dispose()

    dry = run(["pack", "install", "ceramics", "--dry-run"], std_env)
    assert dry.returncode == 0, dry.stderr
    assert "add column ent_product.water_absorption" in dry.stdout and "create table ent_kiln_batch" in dry.stdout
    installed = run(["pack", "install", "ceramics"], std_env)
    assert installed.returncode == 0, installed.stderr
    assert "installed ceramics; the site serves crm_standard 1.0.0, ceramics 1.0.0" in installed.stdout

    site = open_site(std_env, monkeypatch)
    assert {p.name for p in site.registry.packs} == {"crm_standard", "ceramics"}
    entities = {"dealer": "account", "tile": "product", "order": "sales_order"}
    for name, entity in entities.items():
        now = site.records.get(SYSTEM, entity, old[name]["id"])
        assert {k: now[k] for k in old[name]} == old[name], f"the {entity} changed"  # same values, same version
    kept = site.records.get(SYSTEM, "product", tile["id"])
    assert (kept["category"], kept["water_absorption"]) == (None, None)  # the new columns, empty
    assert site.records.get(SYSTEM, "sales_order", order["id"])["order_type"] is None  # an old order counts as a stock order
    kept = site.records.update(SYSTEM, "product", tile["id"], {"version": kept["version"], "category": "floor_tile", "body": "porcelain",
                                                              "size": "600×600", "thickness": "10", "water_absorption": "0.2"})
    batch = site.records.create(SYSTEM, "kiln_batch", {"batch_no": "K1-20260820-04", "kiln": "roller_kiln_1", "fired_on": "2026-01-20",
                                                       "product": tile["id"], "quantity": "20000"})
    released = site.workflows.fire(SYSTEM, "sales_order", order["id"], "release")  # 7,200 within the 300,000 limit
    assert released["status"] == "approved"
    site.dispose()

    removed = run(["pack", "remove", "ceramics"], std_env)
    assert removed.returncode == 0, removed.stderr
    assert "archive column ent_product.water_absorption" in removed.stdout
    site = open_site(std_env, monkeypatch)
    assert {p.name for p in site.registry.packs} == {"crm_standard"} and "kiln_batch" not in site.registry.entities
    product = site.records.get(SYSTEM, "product", tile["id"])
    assert "water_absorption" not in product and product["name"] == "抛光砖 600×600"
    assert site.records.get(SYSTEM, "account", dealer["id"])["credit_limit"] == "300000.00"
    site.dispose()

    assert run(["pack", "install", "ceramics"], std_env).returncode == 0
    site = open_site(std_env, monkeypatch)
    product = site.records.get(SYSTEM, "product", tile["id"])
    assert (product["category"], product["water_absorption"], product["size"]) == ("floor_tile", "0.2000", "600×600")
    assert site.records.get(SYSTEM, "kiln_batch", batch["id"])["batch_no"] == "K1-20260820-04"
    assert site.records.get(SYSTEM, "sales_order", order["id"])["status"] == "approved"
    site.dispose()


# -- products ---------------------------------------------------------------------------------------

def test_a_porcelain_tile_absorbs_at_most_half_a_percent(cer: Site) -> None:
    with pytest.raises(ValidationFailed) as wet:
        a_tile(cer, water_absorption="0.8")
    (detail,) = wet.value.details
    assert detail.field == "water_absorption" and "0.5 %" in detail.message
    assert a_tile(cer, water_absorption="0.5")["water_absorption"] == "0.5000"
    stoneware = a_tile(cer, "TL-6060-RS", body="stoneware", water_absorption="3.5")  # only porcelain is held to 0.5 %
    assert stoneware["body"] == "stoneware"
    with pytest.raises(ValidationFailed) as bare:
        a_tile(cer, "TL-X", size=None, thickness=None)
    assert {d.field for d in bare.value.details} == {"size", "thickness"}  # tiles are sold by size and thickness
    with pytest.raises(ValidationFailed) as size:
        a_tile(cer, "TL-Y", size="big")
    assert size.value.details[0].field == "size"
    basin = cer.records.create(SYSTEM, "product", {"code": "SW-1", "name": "台上盆", "product_line": product_line(cer), "unit": "piece",
                                                   "category": "sanitary_ware", "body": "porcelain", "water_absorption": "0.3"})
    assert basin["size"] is None  # sanitary ware needs no tile size


def test_the_api_refuses_a_porcelain_tile_that_absorbs_too_much(cer: Site) -> None:
    user_id = cer.users.create_user("admin", "admin-password", "Admin", is_admin=True)
    token, _ = cer.users.create_token(user_id, "tests")
    body = {"code": "TL-API", "name": "瓷质砖", "product_line": product_line(cer), "unit": "square_metre",
            "category": "wall_tile", "body": "porcelain", "size": "300×600", "thickness": "9", "water_absorption": "0.8"}
    with TestClient(create_app(cer), base_url="http://testserver") as client:
        client.headers["Authorization"] = f"Bearer {token}"
        refused = client.post("/api/v1/records/product", json=body)
        assert refused.status_code == 422
        assert [d["field"] for d in refused.json()["error"]["details"]] == ["water_absorption"]
        created = client.post("/api/v1/records/product", json={**body, "water_absorption": "0.4"})
        assert created.status_code == 201, created.text
        catalogue = client.get("/api/v1/records/product", params={"view": "ceramic_catalogue"}).json()
        assert [r["code"] for r in catalogue["data"]] == ["TL-API"]


# -- orders: custom orders are reviewed, stock orders within the credit limit go straight on --------

def test_a_custom_order_goes_through_review_and_a_stock_order_does_not(cer: Site) -> None:
    crew = staff(cer)
    rep = crew["rep"]
    dealer = a_dealer(cer, rep, credit_limit="500000")
    tile = a_tile(cer)

    stock = an_order(cer, rep, dealer, tile, "100", "50.00")
    assert stock["order_type"] == "stock"
    assert refusal(lambda: fire(cer, rep, "sales_order", stock, "submit_for_review")).details[0].message == "Only custom orders are reviewed"
    assert "credit limit" in refusal(lambda: fire(cer, rep, "sales_order", stock, "submit")).details[0].message
    assert fire(cer, rep, "sales_order", stock, "release")["status"] == "approved"
    assert steps(cer, "sales_order", stock) == ["_start", "release"]
    assert cer.approvals.pending_for(crew["cfo"]) == []

    custom = an_order(cer, rep, dealer, tile, "3000", "80.00", order_type="custom", requested_delivery="2027-03-31")
    assert "credit limit" in refusal(lambda: fire(cer, rep, "sales_order", custom, "release")).details[0].message
    assert refusal(lambda: fire(cer, rep, "sales_order", custom, "submit")).details[0].code == "guard"
    assert {d.field for d in refusal(lambda: fire(cer, rep, "sales_order", custom, "submit_for_review")).details} == {"custom_spec"}
    reviewed = fire(cer, rep, "sales_order", custom, "submit_for_review", {"custom_spec": "900×1800 定制岩板，万和灰，同色号 3000 ㎡"})
    assert reviewed["status"] == "technical_review"
    assert isinstance(refusal(lambda: fire(cer, rep, "sales_order", custom, "confirm_feasibility", {"technical_feasibility": "feasible", "technical_notes": "ok"})), Forbidden)
    not_feasible = refusal(lambda: fire(cer, crew["engineer"], "sales_order", custom, "confirm_feasibility",
                                        {"technical_feasibility": "not_feasible", "technical_notes": "900×1800 超出压机规格"}))
    assert "not feasible" in not_feasible.details[0].message
    fire(cer, crew["engineer"], "sales_order", custom, "confirm_feasibility", {"technical_feasibility": "feasible", "technical_notes": "现有配方可做，需打样两次"})
    missing = refusal(lambda: fire(cer, crew["planner"], "sales_order", custom, "confirm_capacity"))
    assert {d.field for d in missing.details} == {"planned_kiln", "planned_firing_date", "production_days"}
    fire(cer, crew["planner"], "sales_order", custom, "confirm_capacity", {"planned_kiln": "roller_kiln_2", "planned_firing_date": "2027-01-10", "production_days": 20})
    low_margin = refusal(lambda: fire(cer, crew["director"], "sales_order", custom, "confirm_pricing", {"review_margin": "12"}))
    assert [d.field for d in low_margin.details] == ["pricing_notes"]  # a margin under 15 % is explained
    priced = fire(cer, crew["director"], "sales_order", custom, "confirm_pricing", {"review_margin": "12", "pricing_notes": "战略项目，首单让利"})
    assert priced["status"] == "finance_review"
    (approval,) = cer.approvals.pending_for(crew["cfo"])
    done = cer.approvals.decide(crew["cfo"], approval["id"], True)
    assert done["record"]["status"] == "approved"
    assert steps(cer, "sales_order", custom) == ["_start", "submit_for_review", "confirm_feasibility", "confirm_capacity", "confirm_pricing", "approve"]
    after = cer.records.get(rep, "sales_order", custom["id"])
    assert (after["technical_feasibility"], after["planned_kiln"], after["review_margin"]) == ("feasible", "roller_kiln_2", "12.0000")
    locked = refusal(lambda: cer.records.update(rep, "sales_order", custom["id"], {"version": after["version"], "technical_feasibility": "feasible_with_changes"}))
    assert locked.details[0].field == "technical_feasibility"  # the review's outcome stays as decided
    locked = refusal(lambda: cer.records.update(rep, "sales_order", custom["id"], {"version": after["version"], "order_type": "stock"}))
    assert locked.details[0].field == "order_type"


def test_a_reviewer_sends_a_custom_order_back_with_a_reason(cer: Site) -> None:
    crew = staff(cer)
    dealer = a_dealer(cer, crew["rep"])
    order = an_order(cer, crew["rep"], dealer, a_tile(cer), "500", "90.00", order_type="custom", custom_spec="木纹砖专供色")
    fire(cer, crew["rep"], "sales_order", order, "submit_for_review")
    assert refusal(lambda: fire(cer, crew["engineer"], "sales_order", order, "return_to_sales")).details[0].field == "comment"
    back = fire(cer, crew["engineer"], "sales_order", order, "return_to_sales", comment="釉色需客户确认色板")
    assert back["status"] == "draft"
    view = cer.registry.list_views["sales_order.custom_review"]
    assert cer.records.list(SYSTEM, "sales_order", ListQuery(expressions=(view.filter,))).total == 0
    fire(cer, crew["rep"], "sales_order", order, "submit_for_review")
    assert [r["id"] for r in cer.records.list(SYSTEM, "sales_order", ListQuery(expressions=(view.filter,))).records] == [order["id"]]


def test_an_order_past_the_dealers_credit_limit_needs_finance(cer: Site) -> None:
    crew = staff(cer)
    rep, cfo = crew["rep"], crew["cfo"]
    dealer = a_dealer(cer, rep, credit_limit="100000")
    tile = a_tile(cer)
    first = an_order(cer, rep, dealer, tile, "1000", "80.00")  # 80,000: within the limit
    fire(cer, rep, "sales_order", first, "release")
    fire(cer, rep, "sales_order", first, "sign", {"signed_on": "2026-10-10", "signer": "何国强"})
    assert cer.records.get(SYSTEM, "account", dealer["id"])["receivable"] == "80000.00"

    second = an_order(cer, rep, dealer, tile, "300", "80.00")  # 24,000 more: 104,000 > 100,000
    refused = refusal(lambda: fire(cer, rep, "sales_order", second, "release"))
    assert refused.details[0].message.startswith("The order takes the customer past its credit limit")
    assert cer.records.get(rep, "sales_order", second["id"])["status"] == "draft"
    assert fire(cer, rep, "sales_order", second, "submit")["status"] == "finance_review"
    (approval,) = cer.approvals.pending_for(cfo)
    assert approval["label"]["en"] == "Finance approval"
    assert cer.approvals.decide(cfo, approval["id"], True)["record"]["status"] == "approved"

    over = cer.registry.list_views["account.over_credit_limit"]
    assert cer.records.list(SYSTEM, "account", ListQuery(expressions=(over.filter,))).total == 0
    fire(cer, rep, "sales_order", second, "sign", {"signed_on": "2026-11-01", "signer": "何国强"})
    listed = cer.records.list(SYSTEM, "account", ListQuery(expressions=(over.filter,))).records
    assert [(a["id"], a["receivable"], a["credit_available"]) for a in listed] == [(dealer["id"], "104000.00", "-4000.00")]

    walk_in = cer.records.create(rep, "account", {"name": "张先生（个人）"})  # no credit line: always finance
    third = an_order(cer, rep, walk_in, tile, "10", "80.00")
    assert refusal(lambda: fire(cer, rep, "sales_order", third, "release")).details[0].code == "guard"
    assert fire(cer, rep, "sales_order", third, "submit")["status"] == "finance_review"


def test_the_credit_check_over_the_api(cer: Site) -> None:
    crew = staff(cer)
    dealer = a_dealer(cer, crew["rep"], credit_limit="10000")
    order = an_order(cer, crew["rep"], dealer, a_tile(cer), "200", "80.00")  # 16,000 > 10,000
    token, _ = cer.users.create_token(crew["rep"].user_id, "tests")
    with TestClient(create_app(cer), base_url="http://testserver") as client:
        client.headers["Authorization"] = f"Bearer {token}"
        options = client.get(f"/api/v1/records/sales_order/{order['id']}/transitions").json()
        assert {o["name"] for o in options["data"]} >= {"submit", "release", "submit_for_review"}
        refused = client.post(f"/api/v1/records/sales_order/{order['id']}/transitions/release", json={})
        assert refused.status_code == 422
        assert "credit limit" in refused.json()["error"]["details"][0]["message"]
        submitted = client.post(f"/api/v1/records/sales_order/{order['id']}/transitions/submit", json={})
        assert submitted.status_code == 200 and submitted.json()["status"] == "finance_review"
        waiting = client.get("/api/v1/records/sales_order", params={"view": "finance_queue"}).json()
        assert [r["id"] for r in waiting["data"]] == [order["id"]]


# -- dealers: stock reports on visits ----------------------------------------------------------------

def test_a_dealer_stock_report_is_taken_on_a_visit(cer: Site) -> None:
    crew = staff(cer)
    rep = crew["rep"]
    dealer = a_dealer(cer, rep)
    slab, plank = a_tile(cer, "TL-7515"), a_tile(cer, "TL-2012", size="200×1200")
    visit = cer.records.create(rep, "activity", {"subject": "季度拜访与库存盘点", "kind": "visit", "account": dealer["id"],
                                                 "status": "done", "occurred_at": "2026-11-05T02:00:00+00:00"})
    report = cer.records.create(rep, "dealer_stock_report", {"activity": visit["id"], "lines": [
        {"product": slab["id"], "shade": "A12", "quantity_on_hand": "1450", "monthly_sales": "900"},
        {"product": plank["id"], "shade": "W03", "quantity_on_hand": "380", "monthly_sales": "1100"},
    ]})
    assert (report["account"], report["reported_on"]) == (dealer["id"], "2026-11-05")  # from the visit
    assert (report["total_quantity"], report["low_stock_lines"]) == ("1830.0000", 1)
    assert [line["stock_days"] for line in report["lines"]] == [48, 10]
    assert cer.records.get(rep, "account", dealer["id"])["last_stock_report_on"] == "2026-11-05"
    shop = cer.records.create(rep, "account", {"name": "Harbour Hotel"})
    assert refusal(lambda: cer.records.create(rep, "dealer_stock_report", {"account": shop["id"], "reported_on": "2026-11-05"})).details[0].field == "account"
    other = a_dealer(cer, rep, name="武汉楚天建材有限公司")
    wrong = refusal(lambda: cer.records.create(rep, "dealer_stock_report", {"account": other["id"], "activity": visit["id"]}))
    assert wrong.details[0].field == "activity"


def test_only_a_dealer_holds_an_exclusive_territory(cer: Site) -> None:
    crew = staff(cer)
    shop = cer.records.create(crew["director"], "account", {"name": "Harbour Hotel"})
    with pytest.raises(ValidationFailed) as refused:
        cer.records.update(crew["director"], "account", shop["id"], {"version": shop["version"], "exclusive_territory": "广东·东莞市", "territory_until": "2027-12-31"})
    assert refused.value.details[0].field == "exclusive_territory"
    dealer = a_dealer(cer, crew["director"])
    agent = cer.records.update(crew["director"], "account", dealer["id"], {"version": dealer["version"], "exclusive_territory": "广东·东莞市", "territory_until": "2027-12-31"})
    assert agent["exclusive_territory"] == "广东·东莞市"


# -- samples and engineering projects ---------------------------------------------------------------

def test_a_sample_request_is_shipped_and_waits_for_feedback(cer: Site) -> None:
    crew = staff(cer)
    rep = crew["rep"]
    lead = cer.records.create(rep, "lead", {"company": "杭州滨江城建发展有限公司", "contact_name": "吴磊", "phone": "0571-8669 2210"})
    tile = a_tile(cer, list_price="268.00")
    assert refusal(lambda: cer.records.create(rep, "sample_request", {"subject": "选样"})).details[0].field == "account"
    sample = cer.records.create(rep, "sample_request", {"subject": "人才公寓选样", "lead": lead["id"],
                                                        "lines": [{"product": tile["id"], "quantity": "2", "form": "full_piece"}]})
    assert (sample["status"], sample["account"], sample["sample_value"]) == ("requested", None, "536.00")
    fire(cer, rep, "sample_request", sample, "prepare")
    assert {d.field for d in refusal(lambda: fire(cer, rep, "sample_request", sample, "ship")).details} == {"shipped_on", "courier", "tracking_no"}
    shipped = fire(cer, rep, "sample_request", sample, "ship", {"shipped_on": CLOCK.today().isoformat(), "courier": "顺丰速运", "tracking_no": "SF1403"})
    waiting = cer.registry.list_views["sample_request.awaiting_feedback"]
    assert [r["id"] for r in cer.records.list(rep, "sample_request", ListQuery(expressions=(waiting.filter,))).records] == [shipped["id"]]
    done = fire(cer, rep, "sample_request", sample, "record_feedback", {"feedback": "needs_changes", "feedback_notes": "希望出 150×900 规格"})
    assert (done["status"], done["feedback_on"]) == ("feedback_received", CLOCK.today().isoformat())
    account = a_dealer(cer, rep)
    deal = cer.records.create(rep, "opportunity", {"name": "展厅上样", "account": account["id"]})
    linked = cer.records.create(rep, "sample_request", {"subject": "展厅上样", "opportunity": deal["id"]})
    assert linked["account"] == account["id"]  # the opportunity's account
    other = cer.records.create(rep, "account", {"name": "Other Co"})
    assert refusal(lambda: cer.records.create(rep, "sample_request", {"subject": "x", "account": other["id"], "opportunity": deal["id"]})).details[0].field == "opportunity"


def test_an_engineering_project_is_bid_for_with_its_dealers_and_products(cer: Site) -> None:
    crew = staff(cer)
    rep = crew["rep"]
    developer = cer.records.create(rep, "account", {"name": "佛山万和置业有限公司", "customer_type": "developer"})
    dealer = a_dealer(cer, rep)
    tile = a_tile(cer)
    project = cer.records.create(rep, "engineering_project", {
        "name": "滨江壹号精装住宅", "developer": developer["id"], "project_type": "residential", "city": "广东·佛山",
        "dealers": [{"dealer": dealer["id"], "role": "supply"}], "lines": [{"product": tile["id"], "usage": "客厅地面", "quantity": "30000", "unit_price": "235.00"}],
    })
    assert (project["stage"], project["estimated_amount"], [d["dealer"] for d in project["dealers"]]) == ("tracking", "7050000.00", [dealer["id"]])
    with pytest.raises(ValidationFailed) as not_a_dealer:
        cer.records.update(rep, "engineering_project", project["id"], {"version": project["version"], "dealers": [
            {"dealer": dealer["id"], "role": "supply"}, {"dealer": developer["id"], "role": "laying"}]})
    assert [(d.field, d.message) for d in not_a_dealer.value.details] == [("dealer", "Only a dealer is listed as the project's dealer")]
    fire(cer, rep, "engineering_project", project, "specify")
    assert {d.field for d in refusal(lambda: fire(cer, rep, "engineering_project", project, "start_bid")).details} == {"bid_date", "bid_amount"}
    bidding = fire(cer, rep, "engineering_project", project, "start_bid", {"bid_date": "2026-12-08", "bid_amount": "7680000"})
    assert bidding["bid_result"] == "pending"
    view = cer.registry.list_views["engineering_project.bidding"]
    assert [r["id"] for r in cer.records.list(rep, "engineering_project", ListQuery(expressions=(view.filter,))).records] == [project["id"]]
    won = fire(cer, rep, "engineering_project", project, "win")
    assert (won["stage"], won["bid_result"], won["awarded_on"]) == ("won", "won", CLOCK.today().isoformat())
    assert {d.field for d in refusal(lambda: fire(cer, rep, "engineering_project", project, "start_supply")).details} == {"sales_order"}


# -- quality: kiln batches and complaints --------------------------------------------------------

def a_batch(site: Site, actor: Actor, product: dict, batch_no: str = "K3-20261102-02") -> dict:
    return site.records.create(actor, "kiln_batch", {"batch_no": batch_no, "kiln": "roller_kiln_3", "fired_on": "2026-11-02",
                                                     "product": product["id"], "quantity": "15000", "shade": "P01", "calibre": "C2"})


def a_complaint(site: Site, actor: Actor, account: dict, batch: dict | None, **values: object) -> dict:
    data: dict[str, object] = {"subject": "到货色差", "account": account["id"], "defect_type": "shade_difference", "quantity_affected": "300", **values}
    if batch is not None:
        data["kiln_batch"] = batch["id"]
    return site.records.create(actor, "quality_complaint", data)


def test_a_kiln_batch_counts_its_complaints(cer: Site) -> None:
    crew = staff(cer)
    tile = a_tile(cer)
    batch = a_batch(cer, crew["planner"], tile)
    assert (batch["complaint_count"], batch["open_complaints"]) == (0, 0)
    dealer = a_dealer(cer, crew["rep"])
    first = a_complaint(cer, crew["rep"], dealer, batch)
    assert (first["product"], first["reported_on"], first["status"]) == (tile["id"], CLOCK.today().isoformat(), "registered")  # from the batch
    second = a_complaint(cer, crew["agent"], dealer, batch, defect_type="breakage", quantity_affected="36")
    counted = cer.records.get(SYSTEM, "kiln_batch", batch["id"])
    assert (counted["complaint_count"], counted["open_complaints"], counted["complained_quantity"]) == (2, 2, "336.0000")
    fire(cer, crew["qm"], "quality_complaint", second, "reject", comment="运输破损由物流公司理赔")
    counted = cer.records.get(SYSTEM, "kiln_batch", batch["id"])
    assert (counted["complaint_count"], counted["open_complaints"], counted["complained_quantity"]) == (2, 1, "300.0000")
    cer.records.delete(crew["qm"], "quality_complaint", first["id"])
    assert cer.records.get(SYSTEM, "kiln_batch", batch["id"])["complaint_count"] == 1
    other = a_tile(cer, "TL-OTHER")
    wrong = refusal(lambda: a_complaint(cer, crew["rep"], dealer, batch, product=other["id"]))
    assert wrong.details[0].field == "kiln_batch"
    by_batch = cer.registry.list_views["quality_complaint.by_batch"]
    assert [r["id"] for r in cer.records.list(crew["qm"], "quality_complaint", ListQuery(expressions=(by_batch.filter,))).records] == [second["id"]]


def inspected(site: Site, crew: dict[str, Actor], complaint: dict) -> dict:
    fire(site, crew["inspector"], "quality_complaint", complaint, "schedule_inspection", {"inspector": "方工", "inspection_date": "2026-11-17"})
    return fire(site, crew["inspector"], "quality_complaint", complaint, "record_inspection",
                {"inspection_result": "confirmed", "responsibility": "factory", "inspection_notes": "P01 与 P02 色差超标"})


def test_a_small_compensation_is_approved_by_the_quality_manager(cer: Site) -> None:
    crew = staff(cer)
    dealer = a_dealer(cer, crew["rep"])
    complaint = a_complaint(cer, crew["rep"], dealer, a_batch(cer, crew["planner"], a_tile(cer)))
    assert inspected(cer, crew, complaint)["status"] == "inspected"
    claim = {"compensation_type": "replacement", "compensation_amount": "2480"}
    with_finance = refusal(lambda: fire(cer, crew["inspector"], "quality_complaint", complaint, "request_comp_finance", claim))
    assert "quality manager alone" in with_finance.details[0].message
    review = fire(cer, crew["inspector"], "quality_complaint", complaint, "request_compensation", claim)
    assert review["status"] == "compensation_review"
    frozen = refusal(lambda: cer.records.update(crew["qm"], "quality_complaint", complaint["id"], {"version": review["version"], "compensation_amount": "1"}))
    assert frozen.details[0].field == "compensation_amount"  # what is being approved does not change
    assert cer.approvals.pending_for(crew["cfo"]) == []
    (approval,) = cer.approvals.pending_for(crew["qm"])
    assert approval["label"]["en"] == "Compensation approval"
    approved = cer.approvals.decide(crew["qm"], approval["id"], True)["record"]
    assert (approved["status"], approved["compensation_approved_on"]) == ("compensation_approved", CLOCK.today().isoformat())
    assert {d.field for d in refusal(lambda: fire(cer, crew["qm"], "quality_complaint", complaint, "close")).details} == {"resolution"}
    closed = fire(cer, crew["qm"], "quality_complaint", complaint, "close", {"resolution": "补发 P02 色号 300 ㎡"})
    assert (closed["status"], closed["closed_on"]) == ("closed", CLOCK.today().isoformat())
    assert steps(cer, "quality_complaint", complaint) == ["_start", "schedule_inspection", "record_inspection", "request_compensation", "approve_compensation", "close"]


def test_a_large_compensation_needs_the_quality_manager_then_finance(cer: Site) -> None:
    crew = staff(cer)
    dealer = a_dealer(cer, crew["rep"])
    complaint = a_complaint(cer, crew["rep"], dealer, a_batch(cer, crew["planner"], a_tile(cer)))
    inspected(cer, crew, complaint)
    unsettled = refusal(lambda: fire(cer, crew["qm"], "quality_complaint", complaint, "close", {"resolution": "补发"}))
    assert [d.field for d in unsettled.details] == ["compensation_type"]  # closing says whether we compensate
    unapproved = refusal(lambda: fire(cer, crew["qm"], "quality_complaint", complaint, "close", {"resolution": "补发", "compensation_type": "replacement"}))
    assert unapproved.details[0].message == "A compensation must be approved before the complaint is closed"
    claim = {"compensation_type": "replacement", "compensation_amount": "20400"}
    alone = refusal(lambda: fire(cer, crew["inspector"], "quality_complaint", complaint, "request_compensation", claim))
    assert "finance" in alone.details[0].message
    fire(cer, crew["inspector"], "quality_complaint", complaint, "request_comp_finance", claim)
    assert isinstance(refusal(lambda: fire(cer, crew["qm"], "quality_complaint", complaint, "approve_compensation_finance")), Forbidden)
    assert cer.approvals.pending_for(crew["cfo"]) == []
    (first,) = cer.approvals.pending_for(crew["qm"])
    assert cer.approvals.decide(crew["qm"], first["id"], True)["status"] == "approved"
    assert cer.records.get(SYSTEM, "quality_complaint", complaint["id"])["status"] == "compensation_finance"
    (second,) = cer.approvals.pending_for(crew["cfo"])
    rejected = cer.approvals.decide(crew["cfo"], second["id"], False, "先与物流公司确认责任")
    assert rejected["record"]["status"] == "inspected"  # rejected: back to the inspected complaint
    fire(cer, crew["inspector"], "quality_complaint", complaint, "request_comp_finance", {"compensation_amount": "12000"})
    cer.approvals.decide(crew["qm"], cer.approvals.pending_for(crew["qm"])[0]["id"], True)
    approved = cer.approvals.decide(crew["cfo"], cer.approvals.pending_for(crew["cfo"])[0]["id"], True)["record"]
    assert (approved["status"], approved["compensation_amount"]) == ("compensation_approved", "12000.00")
    assert steps(cer, "quality_complaint", complaint)[-3:] == ["reject_compensation", "request_comp_finance", "approve_compensation_finance"]


def test_a_complaint_needs_its_batch_once_a_shade_difference_is_inspected(cer: Site) -> None:
    crew = staff(cer)
    complaint = a_complaint(cer, crew["rep"], a_dealer(cer, crew["rep"]), None)
    fire(cer, crew["inspector"], "quality_complaint", complaint, "schedule_inspection", {"inspector": "方工", "inspection_date": "2026-11-17"})
    refused = refusal(lambda: fire(cer, crew["inspector"], "quality_complaint", complaint, "record_inspection",
                                   {"inspection_result": "confirmed", "responsibility": "factory", "inspection_notes": "色差"}))
    assert [d.field for d in refused.details] == ["kiln_batch"]


# -- roles and the screens a sales director opens ------------------------------------------------

def test_ceramics_roles_keep_the_standard_restrictions(cer: Site) -> None:
    crew = staff(cer)
    dealer = a_dealer(cer, crew["rep"])
    with pytest.raises((Forbidden, ValidationFailed)) as refused:
        cer.records.update(crew["rep"], "account", dealer["id"], {"version": dealer["version"], "credit_limit": "999999"})
    assert "credit_limit" in str(refused.value) or refused.value.details[0].field == "credit_limit"
    assert "credit_limit" not in cer.records.get(crew["inspector"], "account", dealer["id"])
    assert "credit_limit" not in cer.records.get(crew["agent"], "account", dealer["id"])
    sample = cer.records.create(crew["rep"], "sample_request", {"subject": "展厅上样", "account": dealer["id"]})
    assert cer.records.get(crew["director"], "sample_request", sample["id"])["subject"] == "展厅上样"
    with pytest.raises(RecordError):
        cer.records.get(crew["planner"], "sample_request", sample["id"])  # not the planner's business


def test_the_sales_director_opens_the_ceramics_views(cer: Site) -> None:
    crew = staff(cer)
    dealer = a_dealer(cer, crew["rep"])
    order = an_order(cer, crew["rep"], dealer, a_tile(cer), "10", "80.00", order_type="custom", custom_spec="定制 logo 包装")
    fire(cer, crew["rep"], "sales_order", order, "submit_for_review")
    with TestClient(create_app(cer), base_url="http://testserver") as client:
        from tests.helpers import log_in

        log_in(client, "director", "director-password")
        home = client.get("/").text
        for label in ("Sales director", "Custom orders under review", "Dealers over their credit limit", "Projects in bidding",
                      "Complaints by kiln batch", "Samples awaiting feedback"):
            assert label in home, label
        page = client.get("/app/sales_order", params={"view": "custom_review"})
        assert page.status_code == 200 and order["code"] in page.text
        for entity, view in (("account", "over_credit_limit"), ("engineering_project", "bidding"), ("quality_complaint", "by_batch"),
                             ("sample_request", "awaiting_feedback"), ("kiln_batch", "with_complaints")):
            assert client.get(f"/app/{entity}", params={"view": view}).status_code == 200, (entity, view)
        assert client.get(f"/app/sales_order/{order['id']}").status_code == 200
        packs = client.get("/api/v1/meta/packs").json()
        assert "ceramics" in str(packs)


@pytest.fixture
def demo_site(make_site: Callable[..., Site], ceramics_registry: Registry) -> Iterator[Site]:
    from crm_platform.engine.permissions.org_loader import load_org_chart
    from crm_platform.engine.seeding import load_records

    site = make_site(ceramics_registry)
    load_org_chart(site)
    load_records(site, ("seed", "demo"), SYSTEM)
    yield site


def test_the_demo_data_loads_with_the_standard_demo(demo_site: Site) -> None:
    site = demo_site
    over = site.registry.list_views["account.over_credit_limit"]
    names = {a["name"] for a in site.records.list(SYSTEM, "account", ListQuery(expressions=(over.filter,))).records}
    assert "东莞市鸿福陶瓷商行" in names  # a ceramics dealer past its limit
    review = site.registry.list_views["sales_order.custom_review"]
    assert site.records.list(SYSTEM, "sales_order", ListQuery(expressions=(review.filter,))).total == 3
    batches = {b["batch_no"]: b["complaint_count"] for b in site.records.list(SYSTEM, "kiln_batch", ListQuery()).records}
    assert batches["K3-20261102-02"] == 1 and sum(batches.values()) == 4
    reports = {r["total_quantity"]: r["low_stock_lines"] for r in site.records.list(SYSTEM, "dealer_stock_report", ListQuery()).records}
    assert reports["1175.0000"] == 1  # crm_standard's dealer, counted on crm_standard's visit act_09
    guo = site.users.find("guo.quality")
    assert guo is not None
    pending = site.approvals.pending_for(site.users.actor(guo["id"]))
    assert [a["label"]["en"] for a in pending] == ["Compensation approval"]  # the demo complaint waiting in approval


def test_generated_demo_data_includes_the_ceramics_records(cer: Site) -> None:
    from crm_platform.engine.demo_data import generate
    from crm_platform.engine.permissions.org_loader import load_org_chart
    from crm_platform.engine.seeding import load_records

    load_records(cer, ("seed",), SYSTEM)
    load_org_chart(cer)
    result = generate(cer, 60, seed=5)
    for entity in ("dealer_stock_report", "sample_request", "engineering_project", "kiln_batch", "quality_complaint"):
        assert result.counts.get(entity, 0) > 0, entity
    batches = cer.records.list(SYSTEM, "kiln_batch", ListQuery(page_size=200)).records
    complaints = cer.records.list(SYSTEM, "quality_complaint", ListQuery(page_size=200)).total
    assert sum(b["complaint_count"] for b in batches) == complaints  # roll-ups recomputed after the load
    dealers = cer.records.list(SYSTEM, "account", ListQuery(expressions=('customer_type = "dealer"',), page_size=200)).records
    assert dealers and all(d["dealer_tier"] for d in dealers)
