"""Roles, the permission matrix and the org tree as versions of the site layer: an admin's change
is a version with a diff, applies to the policy (here and in another process), rolls back without
stranding users, replaces a pack's role, and exports as roles.yaml / org.yaml that install on a
fresh site to the same metadata."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from crm_platform.engine.permissions.layered_admin import LayeredAccessAdmin
from crm_platform.engine.records.actor import Actor
from crm_platform.engine.records.errors import Forbidden, ValidationFailed
from crm_platform.engine.records.list_query import ListQuery
from crm_platform.engine.site import Site
from crm_platform.engine.site_layer import LayerRefused, SiteLayer, diff
from crm_platform.engine.site_reload import RegistryWatcher
from crm_platform.metadata.errors import PackError
from crm_platform.metadata.loader import load_registry
from crm_platform.metadata.model import Registry
from tests.conftest import FIXTURE_PACKS

SYSTEM = Actor.system()


@pytest.fixture(autouse=True)
def packs_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRM_PACKS_PATH", str(FIXTURE_PACKS))


def _names(site: Site, actor: Actor) -> set[str]:
    return {r["name"] for r in site.records.list(actor, "company", ListQuery(page_size=100)).records}


def test_a_role_and_its_matrix_are_versions_that_roll_back_without_stranding_users(kit: Site) -> None:
    admin = LayeredAccessAdmin(kit)
    layer = SiteLayer(kit)
    admin.create_role("seller", "Seller", "销售", "boss")
    admin.set_matrix("seller", {("company", "read"): "own", ("company", "create"): "own"}, "boss")
    admin.set_field_access("seller", "company", "revenue", "hidden", "boss")
    versions = layer.versions()
    assert [v.note for v in versions] == ["role seller: field access company.revenue", "role seller: permissions", "new role seller"]
    assert all(v.created_by == "boss" for v in versions)
    change = diff(versions[2].files, versions[1].files)
    assert "+      - {entity: company, actions: [read, create], scope: own}" in change
    assert admin.set_matrix("seller", {("company", "read"): "own"}, "boss") is None  # nothing changed: no version
    user_id = kit.users.create_user("sara", "sara-password")
    kit.permissions.assign_role(user_id, "seller")
    sara = kit.users.actor(user_id)
    assert sara is not None
    kit.records.create(sara, "company", {"name": "Hers"})
    kit.records.create(SYSTEM, "company", {"name": "Not hers"})
    assert _names(kit, sara) == {"Hers"}
    assert "revenue" not in kit.records.get(sara, "company", kit.records.list(sara, "company", ListQuery()).records[0]["id"])

    with pytest.raises(LayerRefused) as refused:  # back to before the role: sara would hold a role that is gone
        layer.apply({}, "drop everything", "boss")
    [problem] = refused.value.problems
    assert problem.file == "roles.yaml" and "role 'seller'" in problem.message and "sara" in problem.message
    assert "seller" in {r.name for r in kit.registry.extra["roles"]} and _names(kit, sara) == {"Hers"}  # nothing changed

    back = layer.rollback(versions[1].id, "boss")  # before the field access: revenue visible again
    assert back.note == f"rollback to version {versions[1].id}"
    time.sleep(0.6)
    record = kit.records.list(sara, "company", ListQuery()).records[0]
    assert "revenue" in record
    kit.permissions.unassign_role(user_id, "seller")
    layer.apply({}, "no roles", "boss")
    assert all(r["name"] != "seller" for r in kit.permissions.list_roles())


def test_includes_and_labels_refuse_unknown_roles_and_cycles(kit: Site) -> None:
    admin = LayeredAccessAdmin(kit)
    admin.create_role("rep", "Rep", None, "boss")
    admin.create_role("lead", "Lead", "组长", "boss")
    admin.update_role("lead", "boss", label_en="Team lead", includes=["rep"])
    lead = next(r for r in kit.permissions.list_roles() if r["name"] == "lead")
    assert (lead["label_en"], lead["label_zh"], lead["includes"]) == ("Team lead", "组长", ["rep"])
    with pytest.raises(ValidationFailed) as unknown:
        admin.update_role("lead", "boss", includes=["nobody"])
    assert unknown.value.details[0].field == "includes" and "nobody" in unknown.value.details[0].message
    with pytest.raises(ValidationFailed) as cycle:
        admin.update_role("rep", "boss", includes=["lead"])
    assert "cycle" in cycle.value.details[0].message and cycle.value.details[0].field == "roles.yaml"
    with pytest.raises(ValidationFailed) as duplicate:
        admin.create_role("rep", "Rep again", None, "boss")
    assert "already exists" in duplicate.value.details[0].message
    with pytest.raises(ValidationFailed) as bad:
        admin.set_matrix("rep", {("compny", "raed"): "everything"}, "boss")
    assert {d.field for d in bad.value.details} == {"entity", "action", "scope"}
    assert len(SiteLayer(kit).versions()) == 3


def test_the_org_tree_is_versioned_moves_follow_scopes_and_archiving_never_strands(kit: Site) -> None:
    admin = LayeredAccessAdmin(kit)
    legacy = kit.permissions.create_unit("Old sales", "department")  # a row from before the tree was versioned
    group = admin.create_unit("Group", "group", None, "boss", name_zh="集团")
    south = admin.create_unit("South", "subsidiary", group, "boss")
    team = admin.create_unit("Team A", "team", legacy, "boss")  # takes the old unit into the layer
    org = SiteLayer(kit).current_files()["org.yaml"]
    assert "{key: unit_1, kind: department, name: {en: Old sales, zh-CN: Old sales}}" in org.replace(f"unit_{legacy}", "unit_1")
    assert "users: []" in org  # user accounts are data, never in the layer
    admin.create_role("manager", "Manager", None, "boss")
    admin.set_matrix("manager", {("company", "read"): "unit_and_below"}, "boss")
    boss_id = kit.users.create_user("mgr", "mgr-password", unit_id=south)
    kit.permissions.assign_role(boss_id, "manager")
    rep_id = kit.users.create_user("rep", "rep-password", unit_id=team)
    rep = kit.users.actor(rep_id)
    assert rep is not None
    made = kit.records.create(SYSTEM, "company", {"name": "Team A's"})
    table = kit.schema.tables["company"]
    with kit.engine.begin() as conn:
        conn.execute(table.update().where(table.c.id == made["id"]).values(owner_id=rep_id, unit_id=team))
    manager = kit.users.actor(boss_id)
    assert manager is not None
    assert _names(kit, manager) == set()
    admin.update_unit(team, "boss", parent_id=south, name_en="Team Guangzhou", name_zh="广州组")  # move and rename
    units = {u.id: u for u in admin.units()}
    assert units[team].path == f"{units[south].path}{team}/" and units[team].name == "广州组 Team Guangzhou"
    assert _names(kit, manager) == {"Team A's"}  # unit and below follows the move

    with pytest.raises(ValidationFailed) as stranded:
        admin.update_unit(team, "boss", archived=True)
    assert "rep" in stranded.value.details[0].message and stranded.value.details[0].field == "org.yaml"
    with pytest.raises(ValidationFailed) as below:
        admin.update_unit(south, "boss", archived=True)  # a unit below it is not archived
    assert "archived unit" in below.value.details[0].message
    kit.permissions.set_unit(rep_id, south)
    admin.update_unit(team, "boss", archived=True)
    assert {u.id: u.archived for u in admin.units()}[team] is True
    assert kit.records.get(SYSTEM, "company", made["id"])["unit_id"] == team  # records keep their unit
    with pytest.raises(ValidationFailed) as into_archived:
        admin.create_unit("Late", "team", team, "boss")
    assert "archived" in into_archived.value.details[0].message
    with pytest.raises(ValidationFailed) as loop:
        admin.update_unit(group, "boss", parent_id=south)
    assert "below itself" in loop.value.details[0].message
    notes = [v.note for v in SiteLayer(kit).versions()]
    assert notes[0] == "unit Team Guangzhou: archived" and "unit Team Guangzhou: moved" in notes and "new unit Group" in notes


def test_a_pack_role_changed_by_the_layer_is_replaced_and_comes_back_on_rollback(site: Site) -> None:
    admin = LayeredAccessAdmin(site)
    before = SiteLayer(site).versions()
    first = admin.set_matrix("sales_rep", {("competitor", "read"): None, ("competitor", "create"): "own"}, "boss")
    assert first is not None
    roles_yaml = SiteLayer(site).current_files()["roles.yaml"]
    assert "  - name: sales_rep\n    replaces: true\n" in roles_yaml and "{entity: competitor, actions: [create], scope: own}" in roles_yaml
    grants = {(g["entity"], g["action"]): (g["scope"], g["source"]) for r in site.permissions.list_roles() if r["name"] == "sales_rep" for g in r["grants"]}
    assert grants[("competitor", "create")] == ("own", "pack:site") and ("competitor", "read") not in grants
    assert grants[("account", "read")] == ("own", "pack:site")  # the rest of the role is kept, whole
    SiteLayer(site).apply({}, "back to the pack", "boss")
    grants = {(g["entity"], g["action"]): (g["scope"], g["source"]) for r in site.permissions.list_roles() if r["name"] == "sales_rep" for g in r["grants"]}
    assert grants[("competitor", "read")] == ("all", "pack:crm_standard") and ("competitor", "create") not in grants
    assert len(SiteLayer(site).versions()) == len(before) + 2


def test_another_process_serves_the_change_and_reloads_the_policy(kit: Site, make_site) -> None:  # type: ignore[no-untyped-def]
    other = make_site(kit.registry, sync=False)
    watcher = RegistryWatcher(other)
    user_id = other.users.create_user("ann", "ann-password")
    admin = LayeredAccessAdmin(kit)
    admin.create_role("viewer", "Viewer", None, "boss")
    other.permissions.assign_role(user_id, "viewer")
    ann = other.users.actor(user_id)
    assert ann is not None
    with pytest.raises(Forbidden):
        other.records.list(ann, "company", ListQuery())
    admin.set_matrix("viewer", {("company", "read"): "all"}, "boss")
    assert watcher.check(force=True) is True
    assert "viewer" in {r.name for r in other.registry.extra["roles"]}
    assert other.records.list(ann, "company", ListQuery()).total == 0  # allowed now, nothing there yet


def test_export_carries_roles_and_org_and_installs_to_the_same_metadata(kit: Site, make_site, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    admin = LayeredAccessAdmin(kit)
    group = admin.create_unit("Group", "group", None, "boss", name_zh="集团")
    admin.create_unit("Sales", "department", group, "boss", name_zh="销售部")
    admin.create_role("seller", "Seller", "销售", "boss")
    admin.set_matrix("seller", {("company", "read"): "unit"}, "boss")
    folder = SiteLayer(kit).export(tmp_path / "export")
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) == ["org.yaml", "pack.yaml", "roles.yaml"]
    fresh_registry = load_registry(["testkit", str(folder)], [FIXTURE_PACKS])
    assert fresh_registry.content_hash == kit.registry.content_hash
    fresh = _fresh_site(fresh_registry, tmp_path)
    units = {u.label_en: u for u in LayeredAccessAdmin(fresh).units()}
    assert set(units) == {"Group", "Sales"} and units["Sales"].parent_id == units["Group"].id
    assert any(r["name"] == "seller" and r["grants"] == [{"entity": "company", "action": "read", "scope": "unit", "source": "pack:site"}]
               for r in fresh.permissions.list_roles())


def _fresh_site(registry: Registry, tmp_path: Path) -> Site:
    """A second, empty database (a SQLite file) with the exported pack installed."""
    from crm_platform.config import Settings

    url = f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
    settings = Settings(database_url=url, packs=tuple(p.name for p in registry.packs), var_dir=tmp_path / "fresh-var", secret_key="test")
    site = Site.open(settings, registry)
    site.sync(applied_by="test")
    return site


def test_the_pack_format_replaces_roles_only_when_asked(tmp_path: Path) -> None:
    base = tmp_path / "base"
    (base).mkdir()
    (base / "pack.yaml").write_text("name: base\nversion: 1.0.0\ntitle: {en: Base, zh-CN: 基础}\n", encoding="utf-8")
    (base / "roles.yaml").write_text("roles:\n  - {name: clerk, label: {en: Clerk, zh-CN: 职员}}\n", encoding="utf-8")
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "pack.yaml").write_text("name: extra\nversion: 1.0.0\ntitle: {en: Extra, zh-CN: 扩展}\ndepends: [base]\n", encoding="utf-8")
    (extra / "roles.yaml").write_text("roles:\n  - {name: clerk, label: {en: Clerk 2, zh-CN: 职员2}}\n", encoding="utf-8")
    with pytest.raises(PackError) as duplicate:
        load_registry(["extra"], [tmp_path])
    assert "add `replaces: true` to replace it" in str(duplicate.value)
    (extra / "roles.yaml").write_text("roles:\n  - {name: clerk, replaces: true, label: {en: Clerk 2, zh-CN: 职员2}}\n", encoding="utf-8")
    [clerk] = load_registry(["extra"], [tmp_path]).extra["roles"]
    assert (clerk.label.en, clerk.pack) == ("Clerk 2", "extra")
    (extra / "roles.yaml").write_text("roles:\n  - {name: typist, replaces: true, label: {en: Typist, zh-CN: 打字员}}\n", encoding="utf-8")
    with pytest.raises(PackError) as nothing:
        load_registry(["extra"], [tmp_path])
    assert "replaces nothing" in str(nothing.value)
