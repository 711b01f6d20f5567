"""Backup and restore of a site: one .tar.gz holding a consistent snapshot of the database taken
while the site runs (SQLite's online backup API; pg_dump's snapshot on PostgreSQL), the stored
files (content-addressed, never changed, so copying them after the snapshot covers it) and a
manifest (packs, metadata hash, when). Restoring needs an empty target: a missing SQLite file, or
a PostgreSQL database without the site's schema."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from crm_platform.config import Settings

FORMAT = 1


class BackupError(Exception):
    """A backup or restore that cannot be done, with the reason."""


@dataclass(frozen=True)
class Manifest:
    format: int
    created_at: str
    dialect: str
    schema: str | None
    packs: list[str]
    content_hash: str | None

    def as_dict(self) -> dict[str, object]:
        return dict(self.__dict__)


def _pg_tool(name: str) -> str:
    found = shutil.which(name)
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0)
    if candidates:
        return str(candidates[-1])  # the newest server's tools (pg_dump must not be older than the server)
    if found:
        return found
    raise BackupError(f"{name} is needed for PostgreSQL backups: install the postgresql-client package")


def _pg_target(url: str) -> tuple[list[str], dict[str, str], str | None]:
    """libpq arguments, environment (password) and the schema named by search_path, if any."""
    parsed = make_url(url)
    env = {**os.environ}
    if parsed.password:
        env["PGPASSWORD"] = parsed.password
    args = ["-h", parsed.host or "localhost", "-p", str(parsed.port or 5432), "-U", parsed.username or "postgres", "-d", parsed.database or "postgres"]
    options = parsed.query.get("options")
    schema = None
    if options:
        text = unquote(options if isinstance(options, str) else options[0])
        for part in text.split():
            if part.startswith("-csearch_path="):
                schema = part.split("=", 1)[1]
    return args, env, schema


def _sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up")
    return Path(database)


def backup(settings: Settings, out: Path, packs: list[str], content_hash: str | None) -> Path:
    """Write the site's snapshot to `out` (a .tar.gz); returns its path."""
    dialect = make_url(settings.database_url).get_backend_name()
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        schema = None
        if dialect == "sqlite":
            source = sqlite3.connect(str(_sqlite_path(settings.database_url)))
            target = sqlite3.connect(str(work / "database.sqlite3"))
            with target:
                source.backup(target)  # a consistent copy while writers go on (WAL)
            target.close()
            source.close()
        elif dialect == "postgresql":
            args, env, schema = _pg_target(settings.database_url)
            command = [_pg_tool("pg_dump"), *args, "--format=custom", "--no-owner", "--file", str(work / "database.dump")]
            if schema:
                command += ["--schema", schema]
            done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=3600)
            if done.returncode != 0:
                raise BackupError(f"pg_dump failed: {done.stderr.strip()}")
        else:
            raise BackupError(f"no backup for the {dialect} database")
        manifest = Manifest(FORMAT, dt.datetime.now(dt.UTC).isoformat(), dialect, schema, packs, content_hash)
        (work / "manifest.json").write_text(json.dumps(manifest.as_dict(), indent=2), encoding="utf-8")
        files = settings.var_dir / "files"
        with tarfile.open(out, "w:gz") as archive:
            archive.add(work / "manifest.json", "manifest.json")
            for name in ("database.sqlite3", "database.dump"):
                if (work / name).exists():
                    archive.add(work / name, name)
            if files.is_dir():
                archive.add(files, "files")
    return out


def read_manifest(path: Path) -> Manifest:
    try:
        with tarfile.open(path, "r:gz") as archive:
            member = archive.extractfile("manifest.json")
            if member is None:
                raise KeyError("manifest.json")
            data = json.loads(member.read())
    except (OSError, KeyError, tarfile.TarError, ValueError) as exc:
        raise BackupError(f"{path} is not a backup of this platform: {exc}") from None
    if data.get("format") != FORMAT:
        raise BackupError(f"{path}: backup format {data.get('format')} is not supported (this platform reads {FORMAT})")
    return Manifest(**data)


def restore(settings: Settings, path: Path) -> Manifest:
    """Restore the snapshot into the (empty) database and files folder of `settings`."""
    manifest = read_manifest(path)
    dialect = make_url(settings.database_url).get_backend_name()
    if dialect != manifest.dialect:
        raise BackupError(f"this backup is of a {manifest.dialect} database; the target is {dialect}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        with tarfile.open(path, "r:gz") as archive:
            archive.extractall(work, filter="data")
        if dialect == "sqlite":
            target = _sqlite_path(settings.database_url)
            if target.exists() and target.stat().st_size > 0:
                raise BackupError(f"{target} exists: restore into a new database (move it away first)")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(work / "database.sqlite3", target)
        else:
            args, env, schema = _pg_target(settings.database_url)
            engine = sa.create_engine(settings.database_url)
            try:
                with engine.connect() as conn:
                    tables = sa.inspect(conn).get_table_names(schema=schema or manifest.schema)
            finally:
                engine.dispose()
            if any(t.startswith("crm_") for t in tables):
                raise BackupError("the target database already holds a site: restore into an empty database")
            done = subprocess.run([_pg_tool("pg_restore"), *args, "--no-owner", "--exit-on-error", str(work / "database.dump")],
                                  env=env, capture_output=True, text=True, timeout=3600)
            if done.returncode != 0:
                raise BackupError(f"pg_restore failed: {done.stderr.strip()}")
        if (work / "files").is_dir():
            shutil.copytree(work / "files", settings.var_dir / "files", dirs_exist_ok=True)
    return manifest

