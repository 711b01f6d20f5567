"""The site customization layer: applying designed files as versions (atomic, checked), other
processes switching to them, rollback keeping data, and export as a pack that installs on a
fresh site to the same metadata."""

from __future__ import annotations

from pathlib import Path

import pytest

from crm_platform.engine.records.actor import Actor
from crm_platform.engine.site import Site
from crm_platform.engine.site_layer import LayerRefused, SiteLayer
from crm_platform.engine.site_reload import RegistryWatcher
from crm_platform.metadata.loader import load_registry
from tests.conftest import FIXTURE_PACKS

SYSTEM = Actor.system()

EXHIBITION = """
name: exhibition
label: {en: Exhibition, zh-CN: 展会}
title_field: name
fields:
  - {name: name, type: text, label: {en: Name, zh-CN: 名称}, required: true}
  - {name: starts_on, type: date, label: {en: Starts on, zh-CN: 开始日期}}
  - {name: ends_on, type: date, label: {en: Ends on, zh-CN: 结束日期}}
  - {name: company, type: reference, entity: company, label: {en: Organizer, zh-CN: 主办方}}
"""
COMPANY_EXTENSION = """
extends: company
fields:
  - {name: booth_size, type: integer, label: {en: Booth size, zh-CN: 展位面积}}
"""
RULES = 'validate exhibition "An exhibition ends after it starts" on ends_on\n  when ends_on < starts_on\n'
V1 = {"entities/exhibition.yaml": EXHIBITION, "entities/company_ext.yaml": COMPANY_EXTENSION, "rules/exhibition.rules": RULES}


@pytest.fixture
def kit_site(make_site) -> Site:  # type: ignore[no-untyped-def]
    return make_site(["testkit"], search=[FIXTURE_PACKS])


@pytest.fixture(autouse=True)
def packs_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRM_PACKS_PATH", str(FIXTURE_PACKS))


def test_applying_a_layer_serves_new_entities_fields_and_rules(kit_site: Site) -> None:
    layer = SiteLayer(kit_site)
    plan = layer.preview(V1)
    assert "create table ent_exhibition" in plan.describe() and "add column ent_company.booth_size" in plan.describe()
    version = layer.apply(V1, "exhibitions", "admin")
    assert (version.note, version.created_by, sorted(version.files)) == ("exhibitions", "admin", sorted(V1))
    company = kit_site.records.create(SYSTEM, "company", {"name": "Canton Fair Co", "booth_size": 36})
    show = kit_site.records.create(SYSTEM, "exhibition", {"name": "Canton Fair", "starts_on": "2026-10-15", "ends_on": "2026-10-19", "company": company["id"]})
    assert show["company"] == company["id"]
    from crm_platform.engine.records.errors import ValidationFailed

    with pytest.raises(ValidationFailed) as backwards:
        kit_site.records.create(SYSTEM, "exhibition", {"name": "Backwards", "starts_on": "2026-10-15", "ends_on": "2026-10-01"})
    assert backwards.value.details[0].message == "An exhibition ends after it starts"


def test_a_broken_layer_is_refused_with_places_and_the_old_version_keeps_serving(kit_site: Site) -> None:
    layer = SiteLayer(kit_site)
    layer.apply(V1, None, "admin")
    broken = {**V1, "rules/exhibition.rules": 'validate exhibition "x" on ends_on\n  when ends_on < strats_on\n'}
    with pytest.raises(LayerRefused) as refused:
        layer.apply(broken, None, "admin")
    [problem] = refused.value.problems
    assert (problem.file, problem.line) == ("rules/exhibition.rules", 2) and "strats_on" in problem.message and "starts_on" in problem.message
    with pytest.raises(LayerRefused) as outside:
        layer.preview({"../../etc/passwd": "x"})
    assert "is not a file of the pack format" in outside.value.problems[0].message
    assert len(layer.versions()) == 1
    assert "exhibition" in kit_site.registry.entities


def test_rollback_keeps_the_data_entered_since(kit_site: Site) -> None:
    layer = SiteLayer(kit_site)
    first = layer.apply(V1, "v1", "admin")
    company = kit_site.records.create(SYSTEM, "company", {"name": "Organizer", "booth_size": 54})
    without_field = {k: v for k, v in V1.items() if k != "entities/company_ext.yaml"}
    layer.apply(without_field, "drop booth size", "admin")
    assert "booth_size" not in kit_site.records.get(SYSTEM, "company", company["id"])
    back = layer.rollback(first.id, "admin")
    assert back.note == f"rollback to version {first.id}"
    assert kit_site.records.get(SYSTEM, "company", company["id"])["booth_size"] == 54
    assert [v.note for v in layer.versions()] == [f"rollback to version {first.id}", "drop booth size", "v1"]


def test_another_process_serves_the_change(kit_site: Site, make_site) -> None:  # type: ignore[no-untyped-def]
    other = make_site(kit_site.registry, sync=False)  # a second process on the same database
    watcher = RegistryWatcher(other)
    assert watcher.check(force=True) is False
    SiteLayer(kit_site).apply(V1, None, "admin")
    assert watcher.check(force=True) is True
    assert other.records.create(SYSTEM, "exhibition", {"name": "Seen elsewhere"})["name"] == "Seen elsewhere"


def test_export_installs_on_a_fresh_site_to_the_same_result(kit_site: Site, make_site, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    SiteLayer(kit_site).apply(V1, None, "admin")
    folder = SiteLayer(kit_site).export(tmp_path / "export")
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) == sorted([*V1, "pack.yaml"])
    fresh_registry = load_registry(["testkit", str(folder)], [FIXTURE_PACKS])
    assert fresh_registry.content_hash == kit_site.registry.content_hash
    fresh = make_site(fresh_registry)
    assert fresh.records.create(SYSTEM, "exhibition", {"name": "Installed"})["name"] == "Installed"


def test_the_design_api_is_for_administrators(kit_site: Site) -> None:
    import io
    import zipfile

    from starlette.testclient import TestClient

    from crm_platform.ui.app import create_app
    from tests.helpers import log_in, user_with_role

    kit_site.users.create_user("boss", "boss-password", "Boss", is_admin=True)
    user_with_role(kit_site, "clerk", "clerk-password", scope="own")
    with TestClient(create_app(kit_site)) as client:
        log_in(client, "clerk", "clerk-password")
        assert client.post("/api/v1/design/apply", json={"files": V1}).status_code == 403
    with TestClient(create_app(kit_site)) as client:
        log_in(client, "boss", "boss-password")
        preview = client.post("/api/v1/design/preview", json={"files": V1}).json()
        assert preview["ok"] and "+++ b/entities/exhibition.yaml" in preview["diff"]
        bad = client.post("/api/v1/design/apply", json={"files": {"entities/x.yaml": "name: x\nlabel: {en: X}\nfields: []\n"}})
        assert bad.status_code == 422 and bad.json()["error"]["details"][0]["field"] == "entities/x.yaml"
        applied = client.post("/api/v1/design/apply", json={"files": V1, "note": "exhibitions"})
        assert applied.status_code == 201
        assert client.post("/api/v1/records/exhibition", json={"name": "Canton Fair"}).status_code == 201
        assert [v["note"] for v in client.get("/api/v1/design/versions").json()["versions"]] == ["exhibitions"]
        assert "+name: exhibition" in client.get(f"/api/v1/design/versions/{applied.json()['id']}/diff").json()["diff"]
        archive = zipfile.ZipFile(io.BytesIO(client.get("/api/v1/design/export").content))
        assert "site/entities/exhibition.yaml" in archive.namelist() and "site/pack.yaml" in archive.namelist()


def test_a_version_id_beyond_32_bits_is_simply_not_found(kit_site: Site) -> None:
    from starlette.testclient import TestClient

    from crm_platform.ui.app import create_app
    from tests.helpers import log_in

    kit_site.users.create_user("boss", "boss-password", "Boss", is_admin=True)
    with TestClient(create_app(kit_site)) as client:
        log_in(client, "boss", "boss-password")
        assert client.get("/api/v1/design/versions/2147483648/diff").status_code == 404  # found by the API fuzzer on PostgreSQL
        assert client.post("/api/v1/design/versions/2147483648/rollback").status_code == 404
