"""Installing a pack on a site that holds data, and removing it: the CLI as an implementer runs it.
Existing records stay as they were; a removed pack's columns and tables are archived and come
back with their data on a reinstall; every process opening the database serves the same packs."""

from __future__ import annotations

from pathlib import Path

import pytest

from crm_platform.config import Settings
from crm_platform.engine.records.actor import Actor
from crm_platform.engine.records.list_query import ListQuery
from crm_platform.engine.site import Site
from tests.conftest import FIXTURE_PACKS
from tests.helpers import entity_yaml, write_pack
from tests.test_cli import run

SYSTEM = Actor.system()


@pytest.fixture
def env(tmp_path: Path, database_url: str) -> dict[str, str]:
    write_pack(tmp_path / "extra", "addon", {
        "entities/company.yaml": """
            extends: company
            fields:
              - {name: tier, type: picklist, label: {en: Tier, zh-CN: 等级}, options: [{value: gold, label: {en: Gold, zh-CN: 金牌}}]}
        """,
        "entities/visit.yaml": entity_yaml("visit", """
            - {name: company, type: reference, entity: company, label: {en: Company, zh-CN: 公司}, required: true}
            - {name: notes, type: text, label: {en: Notes, zh-CN: 备注}}
        """),
    }, depends=["testkit"])
    return {"CRM_DATABASE_URL": database_url, "CRM_VAR_DIR": str(tmp_path / "var"), "CRM_PACKS": "testkit",
            "CRM_PACKS_PATH": f"{FIXTURE_PACKS}:{tmp_path / 'extra'}"}


def open_site(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Site:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return Site.open(Settings.from_env())


def test_install_adds_columns_and_entities_without_touching_data_and_remove_archives(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    assert run(["db", "sync"], env).returncode == 0
    before = open_site(env, monkeypatch)
    company = before.records.create(SYSTEM, "company", {"name": "Kiln Works", "employees": 40})
    before.dispose()

    dry = run(["pack", "install", "addon", "--dry-run"], env)
    assert dry.returncode == 0, dry.stderr
    assert "add column ent_company.tier" in dry.stdout and "create table ent_visit" in dry.stdout
    installed = run(["pack", "install", "addon"], env)
    assert installed.returncode == 0, installed.stderr
    assert "installed addon; the site serves testkit 1.0.0, addon 1.0.0" in installed.stdout

    site = open_site(env, monkeypatch)  # a new process serves the installed pack too
    assert {p.name for p in site.registry.packs} == {"testkit", "addon"}
    kept = site.records.get(SYSTEM, "company", company["id"])
    assert (kept["name"], kept["employees"], kept["version"], kept["tier"]) == ("Kiln Works", 40, company["version"], None)
    site.records.update(SYSTEM, "company", company["id"], {"version": kept["version"], "tier": "gold"})
    site.records.create(SYSTEM, "visit", {"company": company["id"], "notes": "showroom"})
    site.dispose()

    needed = run(["pack", "remove", "testkit"], env)
    assert needed.returncode == 1 and "pack 'testkit' is needed by addon" in needed.stderr
    removed = run(["pack", "remove", "addon"], env)
    assert removed.returncode == 0, removed.stderr
    assert "archive" in removed.stdout
    site = open_site(env, monkeypatch)
    assert {p.name for p in site.registry.packs} == {"testkit"}
    assert "tier" not in site.records.get(SYSTEM, "company", company["id"])
    site.dispose()

    assert run(["pack", "install", "addon"], env).returncode == 0
    site = open_site(env, monkeypatch)
    assert site.records.get(SYSTEM, "company", company["id"])["tier"] == "gold"
    assert [v["notes"] for v in site.records.list(SYSTEM, "visit", ListQuery()).records] == ["showroom"]
    site.dispose()


def test_installing_a_broken_pack_changes_nothing(env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert run(["db", "sync"], env).returncode == 0
    write_pack(tmp_path, "broken", {"entities/thing.yaml": entity_yaml("thing", "- {name: amount, type: moneyy, label: {en: A, zh-CN: A}}")})
    result = run(["pack", "install", str(tmp_path / "broken")], env)
    assert result.returncode == 1
    assert "entities/thing.yaml:4" in result.stderr and "unknown type 'moneyy'" in result.stderr
    site = open_site(env, monkeypatch)
    assert {p.name for p in site.registry.packs} == {"testkit"}
    site.dispose()


def test_a_running_app_serves_a_pack_installed_by_another_process(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    from starlette.testclient import TestClient

    from crm_platform.ui.app import create_app
    from tests.helpers import log_in

    assert run(["db", "sync"], env).returncode == 0
    serving = open_site(env, monkeypatch)
    serving.users.create_user("admin", "admin-password", "Admin", is_admin=True)
    with TestClient(create_app(serving)) as client:
        log_in(client, "admin", "admin-password")
        assert client.get("/app/visit").status_code == 404
        assert run(["pack", "install", "addon"], env).returncode == 0
        client.app.state.registry_watcher.check(force=True)  # what the next request does within a second
        assert client.get("/app/visit").status_code == 200
        assert client.post("/api/v1/records/visit", json={"company": serving.records.create(SYSTEM, "company", {"name": "Co"})["id"]}).status_code == 201
    serving.dispose()
