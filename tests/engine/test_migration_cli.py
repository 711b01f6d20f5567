"""`crm-platform db plan` and `db sync` as an operator runs them, through a new pack version."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from crm_platform.engine.site import Site
from tests.conftest import REPO
from tests.engine.migration_packs import SYSTEM, PackVersions, fld, raw

CLI = Path(sys.executable).parent / "crm-platform"
NAME = "- {name: name, type: text, label: {en: Name, zh-CN: Name}, required: true}"


@pytest.fixture
def packs(tmp_path: Path, make_site: Callable[..., Site]) -> PackVersions:
    return PackVersions(tmp_path, make_site)


@pytest.fixture
def env(tmp_path: Path, database_url: str, packs: PackVersions) -> dict[str, str]:
    return {"CRM_PACKS": "p", "CRM_PACKS_PATH": str(packs.root), "CRM_DATABASE_URL": database_url, "CRM_VAR_DIR": str(tmp_path / "var")}


def crm(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(CLI), *args], env={**os.environ, **env}, capture_output=True, text=True, cwd=REPO, timeout=120)


def test_plan_and_sync_through_a_new_pack_version(packs: PackVersions, env: dict[str, str]) -> None:
    packs.write({"item": [NAME, fld("code", "text", max_length=200), fld("note", "text")]})
    planned = crm(env, "db", "plan")
    assert planned.returncode == 0, planned.stderr
    assert " + create table ent_item for entity 'item' (name, code, note)" in planned.stdout
    synced = crm(env, "db", "sync")
    assert synced.returncode == 0, synced.stderr
    assert " + create table ent_item" in synced.stdout
    again = crm(env, "db", "plan")
    assert again.returncode == 0 and "nothing to do" in again.stdout

    site = packs.make_site(packs.write({"item": [NAME, fld("code", "text", max_length=200), fld("note", "text")]}), sync=False)
    for code in ("ok", "a" * 11, "b" * 12, "c" * 13, None):
        site.records.create(SYSTEM, "item", {"name": "r", "code": code, "note": "n"})

    # v2: narrow `code` (3 values too long), drop `note`, add `qty`
    packs.write({"item": [NAME, fld("code", "text", max_length=10), fld("qty", "integer")]}, version="2.0.0")
    refused = crm(env, "db", "plan")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    lines = refused.stdout.splitlines()
    assert " x change ent_item.code from text(200) to text(10) (old values kept in archived__code; values that fit are copied)" in lines
    assert "     refused: narrowing text(200) to text(10): 3 of 4 stored value(s) would not fit" in lines
    assert " + archive column ent_item.note as archived__note: field 'note' was removed (data kept)" in lines
    assert " + add column ent_item.qty (integer)" in lines
    assert lines[-1].startswith("3 step(s), 1 refused: rerun with --allow-destructive"), refused.stdout

    failed = crm(env, "db", "sync")
    assert failed.returncode == 1
    assert "nothing was changed" in failed.stderr and "3 of 4" in failed.stderr
    assert "qty" not in {r[0] for r in raw(site, "SELECT column_name FROM crm_schema_column")}
    assert crm(env, "db", "plan").stdout == refused.stdout  # the same plan, still

    allowed = crm(env, "db", "plan", "--allow-destructive")
    assert allowed.returncode == 0 and "applied because --allow-destructive was given" in allowed.stdout
    applied = crm(env, "db", "sync", "--allow-destructive")
    assert applied.returncode == 0, applied.stderr
    assert " ! change ent_item.code" in applied.stdout
    assert "nothing to do" in crm(env, "db", "plan").stdout
    assert raw(site, "SELECT code, archived__code, archived__note FROM ent_item ORDER BY id")[:2] == [("ok", "ok", "n"), (None, "a" * 11, "n")]

    history = crm(env, "db", "history")
    assert history.returncode == 0 and len(history.stdout.strip().splitlines()) == 2
    rows = raw(site, "SELECT packs, applied_by, changes FROM crm_metadata_version ORDER BY id")
    assert json.loads(rows[1].packs) == {"p": "2.0.0"} and rows[1].applied_by.startswith("cli")
    assert {c["action"] for c in json.loads(rows[1].changes)} == {"replace_column", "archive_column", "add_column"}


def test_sync_of_a_broken_pack_fails_without_touching_the_database(packs: PackVersions, env: dict[str, str]) -> None:
    packs.write({"item": [NAME]})
    assert crm(env, "db", "sync").returncode == 0
    (packs.root / "p" / "entities" / "item.yaml").write_text("name: item\nlabel: {en: I, zh-CN: I}\nfields:\n  - {name: qty, type: integr, label: {en: Q, zh-CN: Q}}\n")
    broken = crm(env, "db", "sync")
    assert broken.returncode == 1 and "integr" in broken.stderr
