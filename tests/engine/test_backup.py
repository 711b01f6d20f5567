"""Backup of a live site and restore into a fresh one: the same records, files and metadata; a
restore never overwrites a site. Runs on SQLite, and on PostgreSQL (pg_dump) when it is the test
database."""

from __future__ import annotations

import secrets
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from crm_platform.config import Settings
from crm_platform.engine.backup import BackupError, backup, read_manifest, restore
from crm_platform.engine.records.actor import Actor
from crm_platform.engine.records.list_query import ListQuery
from crm_platform.engine.site import Site
from tests.conftest import FIXTURE_PACKS, PG_URL

SYSTEM = Actor.system()


def _restore_target(tmp_path: Path, source_url: str) -> tuple[str, object]:
    """A URL of an empty database to restore into, and a cleanup."""
    if not PG_URL:
        return f"sqlite:///{tmp_path / 'restored.sqlite3'}", lambda: None
    name = f"restore_{secrets.token_hex(4)}"
    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.engine.make_url(source_url).set(database=name).render_as_string(hide_password=False)

    def drop() -> None:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()

    return url, drop


def test_a_live_site_restores_into_a_fresh_one(make_site, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    site: Site = make_site(["testkit"], search=[FIXTURE_PACKS])
    for i in range(50):
        site.records.create(SYSTEM, "company", {"name": f"Kiln {i}", "revenue": f"{i * 1000}.50", "kind": "dealer" if i % 2 else "customer"})
    from crm_platform.engine.files import FileStore

    stored = FileStore(site).save(b"%PDF-1.4 contract", "contract.pdf", "application/pdf", None)
    stop = threading.Event()

    def keep_writing() -> None:  # the site stays busy while the snapshot is taken
        n = 0
        while not stop.is_set():
            site.records.create(SYSTEM, "company", {"name": f"During backup {n}"})
            n += 1

    writer = threading.Thread(target=keep_writing)
    writer.start()
    try:
        archive = backup(site.settings, tmp_path / "backup.tar.gz", ["testkit"], site.registry.content_hash)
    finally:
        stop.set()
        writer.join()
    manifest = read_manifest(archive)
    assert (manifest.packs, manifest.content_hash) == (["testkit"], site.registry.content_hash)

    url, cleanup = _restore_target(tmp_path, site.settings.database_url)
    try:
        target = Settings(database_url=url, packs=("testkit",), var_dir=tmp_path / "restored-var", secret_key="x")  # PostgreSQL: the same schema, in a new database
        restore(target, archive)
        restored = Site.open(target, site.registry)
        try:
            assert restored.plan().empty  # the schema matches the packs
            copied = {r["name"]: r for r in restored.records.list(SYSTEM, "company", ListQuery(page_size=200)).records}
            original = {r["name"]: r for r in site.records.list(SYSTEM, "company", ListQuery(page_size=200)).records}
            assert {f"Kiln {i}" for i in range(50)} <= set(copied)
            for name, row in copied.items():  # every restored record is as it was (a consistent snapshot)
                assert {k: row[k] for k in ("id", "revenue", "kind", "version")} == {k: original[name][k] for k in ("id", "revenue", "kind", "version")}
            assert FileStore(restored).open(stored["id"])[1].read_bytes() == b"%PDF-1.4 contract"
            with pytest.raises(BackupError, match="already holds a site|exists"):
                restore(target, archive)
        finally:
            restored.dispose()
    finally:
        cleanup()


def test_a_file_that_is_not_a_backup_is_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"not a tarball")
    with pytest.raises(BackupError, match="is not a backup of this platform"):
        read_manifest(junk)
