"""Helpers for the migration tests: versions of a small pack `p`, and reading the live schema."""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from crm_platform.engine.records.actor import Actor
from crm_platform.engine.site import Site
from crm_platform.metadata.loader import load_registry
from crm_platform.metadata.model import Registry
from tests.helpers import entity_yaml, write_pack

SYSTEM = Actor.system()


def lbl(name: str) -> str:
    return f"{{en: {name}, zh-CN: {name}}}"


def fld(name: str, type_: str, **props: Any) -> str:
    """One field as a YAML flow mapping, e.g. fld('qty', 'integer', indexed='true')."""
    extra = "".join(f", {k}: {v}" for k, v in props.items())
    return f"- {{name: {name}, type: {type_}, label: {lbl(name)}{extra}}}"


class PackVersions:
    """Writes successive versions of pack `p` into its own folder and opens sites on them."""

    def __init__(self, root: Path, make_site: Callable[..., Site]) -> None:
        self.root = root / "packs"
        self.make_site = make_site

    def write(self, entities: dict[str, list[str]], version: str = "1.0.0", views: dict[str, str] | None = None, extra: dict[str, str] | None = None) -> Registry:
        """Replace the pack with these entities (name -> field lines) and list views (entity -> sort)."""
        shutil.rmtree(self.root / "p", ignore_errors=True)
        files: dict[str, str] = {}
        for name, fields in entities.items():
            files[f"entities/{name}.yaml"] = entity_yaml(name, "\n".join(fields), (extra or {}).get(name, ""))
        for entity, sort in (views or {}).items():
            files[f"views/{entity}.yaml"] = textwrap.dedent(f"""
                entity: {entity}
                views:
                  - name: all
                    label: {lbl('all')}
                    columns: [{sort.lstrip('-')}]
                    sort: [{sort}]
                    default: true
            """)
        write_pack(self.root, "p", files, version=version)
        return load_registry(["p"], [self.root])

    def open(self, entities: dict[str, list[str]], version: str = "1.0.0", sync: bool = True, allow_destructive: bool = False, **kwargs: Any) -> Site:
        """Write this version and open a site on it (synced unless sync=False)."""
        return self.make_site(self.write(entities, version, **kwargs), sync=sync, allow_destructive=allow_destructive)


def columns(site: Site, table: str) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in sa.inspect(site.engine).get_columns(table)}


def indexes(site: Site, table: str) -> dict[str, tuple[list[str], bool]]:
    return {ix["name"]: (list(ix["column_names"]), bool(ix["unique"])) for ix in sa.inspect(site.engine).get_indexes(table)}


def foreign_keys(site: Site, table: str) -> dict[str, tuple[str, str | None]]:
    """column -> (referred table, ON DELETE rule upper-cased or None)."""
    result: dict[str, tuple[str, str | None]] = {}
    if site.engine.dialect.name == "sqlite":
        # SQLAlchemy does not reflect ON DELETE of column-level REFERENCES; SQLite knows it.
        for row in raw(site, f'PRAGMA foreign_key_list("{table}")'):
            result[row[3]] = (row[2], None if row[6] == "NO ACTION" else row[6])
        return result
    for fk in sa.inspect(site.engine).get_foreign_keys(table):
        ondelete = (fk.get("options") or {}).get("ondelete")
        result[fk["constrained_columns"][0]] = (fk["referred_table"], ondelete.upper() if ondelete else None)
    return result


def raw(site: Site, sql: str, **params: Any) -> list[Any]:
    with site.engine.connect() as conn:
        return list(conn.execute(sa.text(sql), params).all())


def actions(site: Site, allow_destructive: bool = False) -> list[tuple[str, str, str | None]]:
    return [(s.action, s.table, s.column) for s in site.plan(allow_destructive).steps]


def schema_snapshot(site: Site) -> dict[str, Any]:
    """Tables, columns (name and type), indexes and the recorded state: to prove nothing changed."""
    inspector = sa.inspect(site.engine)
    snap: dict[str, Any] = {}
    for table in sorted(inspector.get_table_names()):
        cols = [(c["name"], str(c["type"])) for c in inspector.get_columns(table)]
        idx = sorted((i["name"] or "", tuple(i["column_names"])) for i in inspector.get_indexes(table))
        snap[table] = (cols, idx)
    with site.engine.connect() as conn:
        snap["state"] = sorted(tuple(r) for r in conn.execute(sa.text("SELECT table_name, column_name, spec, archived_at FROM crm_schema_column")))
        snap["versions"] = conn.execute(sa.text("SELECT count(*) FROM crm_metadata_version")).scalar_one()
    return snap
