"""Throwaway databases for one benchmark run: each site gets its own, removed at the end.

SQLite: a new file in a temporary folder. PostgreSQL: a new schema on the server named by the
URL (the user needs CREATE on the database), reached through `search_path`, dropped afterwards
with everything in it, the way the test suite isolates its tests.

    with Databases("postgresql", "postgresql+psycopg://postgres@127.0.0.1:54331/postgres") as dbs:
        url = dbs.new("list")        # a fresh, empty database URL
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
from pathlib import Path
from types import TracebackType

import sqlalchemy as sa

KINDS = ("sqlite", "postgresql")


class Databases:
    def __init__(self, kind: str, server_url: str | None = None) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown database '{kind}' (one of {', '.join(KINDS)})")
        if kind == "postgresql" and not (server_url or "").startswith("postgresql"):
            raise ValueError(f"a PostgreSQL run needs a postgresql+psycopg:// URL, got {server_url!r}")
        self.kind = kind
        self.server_url = server_url
        self.folder = Path(tempfile.mkdtemp(prefix=f"bench_{kind}_"))
        self.schemas: list[str] = []
        self._admin: sa.Engine | None = None

    def new(self, name: str) -> str:
        """The URL of a new empty database for the site `name`."""
        if self.kind == "sqlite":
            return f"sqlite:///{self.folder / f'{name}.sqlite3'}"
        schema = f"bench_{name}_{secrets.token_hex(4)}"
        with self.admin().begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
        self.schemas.append(schema)
        url = self.server_url or ""
        return f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"

    def var_dir(self, name: str) -> Path:
        """A folder of its own for the site `name` (its files, secret key)."""
        return self.folder / f"{name}-var"

    def admin(self) -> sa.Engine:
        if self._admin is None:
            self._admin = sa.create_engine(self.server_url or "")
        return self._admin

    def version(self) -> str:
        """The server's version, e.g. 'SQLite 3.40.1' or 'PostgreSQL 15.8'."""
        if self.kind == "sqlite":
            import sqlite3

            return f"SQLite {sqlite3.sqlite_version}"
        with self.admin().connect() as conn:
            return "PostgreSQL " + str(conn.exec_driver_sql("SHOW server_version").scalar_one()).split()[0]

    def close(self) -> None:
        if self._admin is not None:
            with self._admin.begin() as conn:
                for schema in self.schemas:
                    conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            self._admin.dispose()
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> Databases:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
