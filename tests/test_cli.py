"""The command line as a user runs it: console script, `python -m crm_platform`, exit codes, output."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import FIXTURE_PACKS, REPO
from tests.helpers import entity_yaml, write_pack

BIN = Path(sys.executable).parent


def run(args: list[str], env: dict[str, str], input_text: str | None = None, module: bool = False) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "crm_platform", *args] if module else [str(BIN / "crm-platform"), *args]
    return subprocess.run(command, env={**os.environ, **env}, capture_output=True, text=True, input=input_text, cwd=REPO, timeout=120)


@pytest.fixture
def cli_env(tmp_path: Path, database_url: str) -> dict[str, str]:
    return {"CRM_DATABASE_URL": database_url, "CRM_VAR_DIR": str(tmp_path / "var"), "CRM_PACKS": "testkit", "CRM_PACKS_PATH": str(FIXTURE_PACKS)}


def test_console_script_and_module_both_answer_help() -> None:
    for module in (False, True):
        result = run(["--help"], {}, module=module)
        assert result.returncode == 0, result.stderr
        for command in ("serve", "pack", "db", "demo", "user", "token"):
            assert command in result.stdout


def test_pack_validate_reports_problems_with_place_and_fails(tmp_path: Path) -> None:
    write_pack(tmp_path, "broken", {"entities/thing.yaml": entity_yaml("thing", """
        - {name: amount, type: moneyy, label: {en: Amount, zh-CN: 金额}}
        - {name: owner, type: reference, entity: acount, label: {en: Owner, zh-CN: 负责人}}
    """)})
    result = run(["pack", "validate", str(tmp_path / "broken")], {})
    assert result.returncode == 1
    assert "entities/thing.yaml:4:26: field 'amount': unknown type 'moneyy'; expected one of text, long_text" in result.stderr
    assert result.stderr.rstrip().endswith("1 problem found")


def test_pack_validate_accepts_a_good_pack() -> None:
    result = run(["pack", "validate", str(FIXTURE_PACKS / "testkit")], {})
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok: testkit 1.0.0: 4 entities")


def test_sync_then_user_and_token_then_pack_list(cli_env: dict[str, str]) -> None:
    plan = run(["db", "plan"], cli_env)
    assert plan.returncode == 0 and "create table ent_company" in plan.stdout
    synced = run(["db", "sync"], cli_env)
    assert synced.returncode == 0, synced.stderr
    assert "loaded 2 seed record(s)" in synced.stdout
    assert "nothing to do" in run(["db", "plan"], cli_env).stdout
    assert "testkit" in run(["db", "history"], cli_env).stdout
    created = run(["user", "create", "ops", "--password", "ops-password", "--admin"], cli_env)
    assert created.returncode == 0 and "created user ops" in created.stdout
    duplicate = run(["user", "create", "ops", "--password", "ops-password"], cli_env)
    assert duplicate.returncode == 1 and "already exists" in duplicate.stderr
    short = run(["user", "create", "shorty", "--password", "x"], cli_env)
    assert short.returncode == 1 and "at least 8 characters" in short.stderr
    token = run(["token", "create", "ops", "--name", "ci"], cli_env)
    assert token.returncode == 0 and token.stdout.strip().startswith("crm_")
    assert run(["token", "create", "nobody"], cli_env).returncode == 1
    listed = run(["pack", "list"], cli_env)
    assert "testkit" in listed.stdout and "4 entities" in listed.stdout


def test_commands_refuse_an_unsynced_database(cli_env: dict[str, str]) -> None:
    result = run(["user", "create", "x1", "--password", "password-1"], cli_env)
    assert result.returncode == 1 and "db sync" in result.stderr


def test_a_broken_configured_pack_stops_every_command(cli_env: dict[str, str], tmp_path: Path) -> None:
    write_pack(tmp_path / "packs", "bad", {"entities/x.yaml": "name: x\n  bad indent: ["})
    env = {**cli_env, "CRM_PACKS": "bad", "CRM_PACKS_PATH": str(tmp_path / "packs")}
    result = run(["db", "plan"], env)
    assert result.returncode == 1 and "YAML syntax error" in result.stderr


def test_demo_load_size_generates_demo_data_once(tmp_path: Path, database_url: str) -> None:
    env = {"CRM_DATABASE_URL": database_url, "CRM_VAR_DIR": str(tmp_path / "var"), "CRM_PACKS": "crm_standard", "CRM_PACKS_PATH": str(REPO / "packs")}
    assert run(["db", "sync"], env).returncode == 0
    generated = run(["demo", "load", "--size", "15", "--seed", "4"], env)
    assert generated.returncode == 0, generated.stderr
    assert "generated run 1 (seed 4): " in generated.stdout and "account 15," in generated.stdout and "rows/s" in generated.stdout
    again = run(["demo", "load", "--size", "15"], env)
    assert again.returncode == 1 and "generated demo data is already there: run 1 with size 15 and seed 4" in again.stderr and "--append" in again.stderr


# -- roles through the site layer (in-process: CliRunner, the environment set by monkeypatch) ----

SHOP_ROLES = """
    roles:
      - name: clerk
        label: {en: Clerk, zh-CN: 职员}
        permissions:
          - {entity: item, actions: [read], scope: own}
"""


@pytest.fixture
def shop(make_site, tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """A synced site with a pack `shop` (an entity `item`, a pack role `clerk`) that the command line
    is configured for, run by the login name `ana`."""
    packs = tmp_path / "packs"
    write_pack(packs, "shop", {
        "entities/item.yaml": entity_yaml("item", "- {name: name, type: text, label: {en: Name, zh-CN: 名称}}"),
        "roles.yaml": SHOP_ROLES,
    })
    site = make_site(["shop"], search=[packs])
    for name, value in {"CRM_DATABASE_URL": database_url, "CRM_VAR_DIR": str(tmp_path / "var"), "CRM_PACKS": "shop",
                        "CRM_PACKS_PATH": str(packs), "LOGNAME": "ana", "USER": "ana"}.items():
        monkeypatch.setenv(name, value)
    return site


def cli(*args: str):  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from crm_platform.cli import app

    return CliRunner().invoke(app, list(args))


def _grants(output: str, role: str) -> list[str]:
    """The grant lines `role list` prints under `role`."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{role} ("))
    grants = []
    for line in lines[start + 1:]:
        if not line.startswith("    "):
            break
        grants.append(" ".join(line.split()))
    return grants


def test_a_cli_grant_is_a_site_layer_version_that_survives_a_sync(shop) -> None:  # type: ignore[no-untyped-def]
    from crm_platform.config import Settings
    from crm_platform.engine.permissions.layered_admin import LayeredAccessAdmin
    from crm_platform.engine.site import Site
    from crm_platform.engine.site_layer import SiteLayer

    LayeredAccessAdmin(shop).create_role("auditor", "Auditor", "审计", "boss")  # a role the layer declares
    granted = cli("role", "grant", "auditor", "item", "read", "all")
    assert granted.exit_code == 0, granted.output
    latest = SiteLayer(shop).versions()[0]
    assert granted.output.strip() == f"auditor may now read item (all): site layer version {latest.id}"
    assert (latest.created_by, latest.note) == ("cli:ana", "role auditor: permissions")
    assert "{entity: item, actions: [read], scope: all}" in latest.files["roles.yaml"]

    synced = cli("db", "sync")
    assert synced.exit_code == 0, synced.output
    listed = cli("role", "list")
    assert "auditor (Auditor / 审计, pack:site)" in listed.output
    assert _grants(listed.output, "auditor") == ["item read all"]

    # who holds the role is data: no layer version, and the holder reads every item
    versions = len(SiteLayer(shop).versions())
    assert cli("user", "create", "ina", "--password", "ina-password").exit_code == 0
    assigned = cli("user", "assign", "ina", "auditor")
    assert assigned.exit_code == 0 and "ina now holds auditor" in assigned.output
    assert len(SiteLayer(shop).versions()) == versions
    fresh = Site.open(Settings.from_env())
    try:
        ina = fresh.users.actor(fresh.users.find("ina")["id"])
        assert ina is not None and fresh.access.scope(ina, fresh.registry.entity("item"), "read") == "all"
    finally:
        fresh.dispose()


def test_a_cli_grant_on_a_pack_role_writes_the_role_whole_into_the_layer(shop) -> None:  # type: ignore[no-untyped-def]
    from crm_platform.engine.site_layer import SiteLayer

    granted = cli("role", "grant", "clerk", "item", "update", "own")
    assert granted.exit_code == 0, granted.output
    roles_yaml = SiteLayer(shop).current_files()["roles.yaml"]
    assert "  - name: clerk\n    replaces: true\n" in roles_yaml
    assert "{entity: item, actions: [read, update], scope: own}" in roles_yaml  # the pack's grant is kept
    assert cli("db", "sync").exit_code == 0
    listed = cli("role", "list")
    assert "clerk (Clerk / 职员, pack:site)" in listed.output
    assert _grants(listed.output, "clerk") == ["item read own", "item update own"]


def test_a_wrong_cli_grant_is_named_and_changes_nothing(shop, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    from crm_platform.engine.site_layer import SiteLayer

    before = cli("role", "list").output
    cases = {
        ("clerk", "item", "read", "everything"): "scope: unknown scope 'everything'; expected one of own, unit, unit_and_below, all",
        ("clerk", "nowhere", "read", "own"): "entity: unknown entity 'nowhere'",
        ("clerk", "item", "fly", "own"): "action: unknown action 'fly'",
        ("nobody", "item", "read", "own"): "no role 'nobody'",
    }
    for args, message in cases.items():
        result = cli("role", "grant", *args)
        assert result.exit_code == 1 and message in result.output, (args, result.output)
    same = cli("role", "grant", "clerk", "item", "read", "own")
    assert same.exit_code == 0 and "clerk may already read item (own); nothing changed" in same.output
    assert SiteLayer(shop).versions() == [] and cli("role", "list").output == before

    monkeypatch.setenv("CRM_DATABASE_URL", f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    unsynced = cli("role", "grant", "clerk", "item", "update", "own")
    assert unsynced.exit_code == 1 and "run `crm-platform db plan` and `crm-platform db sync` first" in unsynced.output
