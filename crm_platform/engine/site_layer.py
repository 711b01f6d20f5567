"""The site customization layer: what business admins design in the browser, kept as the files of
one more pack, `site`, stored in the database (crm_site_layer), never as edits of pack files.

Every applied change is a version (all the layer's files, who, when, a note). Applying loads the
packs plus the new layer, checks the rules, plans the migration and applies it in one
transaction with the version row; anything refused or broken leaves the previous version
serving. Other processes switch within a second (site_reload). A rollback applies an earlier
version's files as a new version (columns of removed fields are archived, so data entered since
is kept). The layer exports as an ordinary pack folder that installs on a fresh site.

The org tree (org.yaml: units), roles and their permission matrix (roles.yaml) are layer files
too: the admin screens write them as versions (engine/permissions/layered_admin.py), syncing
applies them to the policy and unit rows, and a version that would leave users in a removed unit
or with a removed role is refused naming them. User accounts and role assignments are data.

The layer is materialized under var/site-layer/<hash>/site/ so the ordinary pack loader reads it.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from crm_platform.engine import clock
from crm_platform.metadata.errors import PackError, Problem
from crm_platform.metadata.loader import load_registry
from crm_platform.metadata.model import Registry

if TYPE_CHECKING:
    from crm_platform.config import Settings
    from crm_platform.engine.migration.plan import Plan
    from crm_platform.engine.site import Site

PACK_NAME = "site"
ALLOWED_FOLDERS = ("entities", "views", "forms", "workflows", "reminders", "scoring", "rules", "seed", "demo")
ALLOWED_FILES = ("menus.yaml", "roles.yaml", "org.yaml")


def layer_table() -> sa.Table:
    """crm_site_layer, also readable before the site's schema is built (Site.open)."""
    from crm_platform.engine.column_types import UTCDateTime

    return sa.Table(
        "crm_site_layer", sa.MetaData(),
        sa.Column("id", sa.BigInteger, primary_key=True),  # as the system table (BIGINT on PostgreSQL)
        sa.Column("files", sa.Text, nullable=False),
        sa.Column("note", sa.String(500)),
        sa.Column("created_by", sa.String(150)),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )


@dataclass(frozen=True)
class LayerVersion:
    id: int
    files: dict[str, str]
    note: str | None
    created_by: str | None
    created_at: str

    def as_dict(self, with_files: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "note": self.note, "created_by": self.created_by, "created_at": self.created_at, "file_names": sorted(self.files)}
        if with_files:
            data["files"] = self.files
        return data


class LayerRefused(Exception):
    """A layer that does not load, whose rules do not check, or whose migration is refused."""

    def __init__(self, message: str, problems: list[Problem] | None = None, plan: Plan | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.problems = problems or []
        self.plan = plan


def check_file_names(files: dict[str, str]) -> list[Problem]:
    problems = []
    for name in files:
        path = PurePosixPath(name)
        ok = (len(path.parts) == 2 and path.parts[0] in ALLOWED_FOLDERS and path.suffix in (".yaml", ".rules")
              and ".." not in path.parts and not name.startswith("/")) or name in ALLOWED_FILES
        if not ok:
            problems.append(Problem(name, None, None, f"'{name}' is not a file of the pack format: use {', '.join(f + '/<name>.yaml' for f in ALLOWED_FOLDERS)}, menus.yaml, roles.yaml or org.yaml", "layer.file"))
    return problems


def read_latest(engine: Engine) -> LayerVersion | None:
    if "crm_site_layer" not in sa.inspect(engine).get_table_names():
        return None
    table = layer_table()
    with engine.connect() as conn:
        row = conn.execute(sa.select(table).order_by(table.c.id.desc()).limit(1)).mappings().first()
    return _version(row) if row else None


def _version(row: Any) -> LayerVersion:
    created = row["created_at"]
    return LayerVersion(row["id"], json.loads(row["files"]), row["note"], row["created_by"], created.isoformat() if hasattr(created, "isoformat") else str(created))


def materialize(settings: Settings, files: dict[str, str], depends: list[str]) -> Path:
    """The layer as a pack folder under var/site-layer/<hash>/site (written once per content)."""
    manifest = f"name: {PACK_NAME}\nversion: 1.0.0\ntitle: {{en: Site customizations, zh-CN: 站点定制}}\ndepends: [{', '.join(depends)}]\n"
    digest = hashlib.sha256(json.dumps([manifest, sorted(files.items())]).encode()).hexdigest()[:16]
    folder = settings.var_dir / "site-layer" / digest / PACK_NAME
    if not (folder / "pack.yaml").is_file():
        staging = folder.parent / f".{PACK_NAME}-staging"
        shutil.rmtree(staging, ignore_errors=True)
        for name, text in files.items():
            target = staging / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        staging.mkdir(parents=True, exist_ok=True)
        (staging / "pack.yaml").write_text(manifest, encoding="utf-8")
        shutil.rmtree(folder, ignore_errors=True)
        staging.rename(folder)
    return folder


def pack_refs(settings: Settings, engine: Engine, files: dict[str, str] | None = None, refs: tuple[str, ...] | None = None) -> tuple[str, ...]:
    """The packs a site serves (CRM_PACKS, installed, removed; or `refs`) and its layer (the
    latest, or `files`)."""
    from crm_platform.engine.site_packs import effective_packs, read_choices

    if refs is None:
        refs = effective_packs(settings.packs, read_choices(engine))
    if files is None:
        latest = read_latest(engine)
        files = latest.files if latest else {}
    if not files:
        return refs
    names = [ref.rstrip("/").split("/")[-1] for ref in refs]
    return (*refs, str(materialize(settings, files, names)))


class SiteLayer:
    def __init__(self, site: Site) -> None:
        self.site = site
        self.table = site.schema.system["crm_site_layer"]

    def current(self) -> LayerVersion | None:
        return read_latest(self.site.engine)

    def current_files(self) -> dict[str, str]:
        latest = self.current()
        return dict(latest.files) if latest else {}

    def registry_for(self, files: dict[str, str]) -> Registry:
        """The Registry the packs plus these layer files give; raises LayerRefused with every
        problem, and when it would leave users in a unit or with a role it no longer has."""
        from crm_platform.engine.permissions.stranded import stranded_users
        from crm_platform.engine.site_packs import effective_packs, read_choices
        from crm_platform.rules.site_rules import compile_site_rules

        problems = check_file_names(files)
        if problems:
            raise LayerRefused("the layer has files outside the pack format", problems)
        served = {p.name: str(Path(p.path).resolve()) for p in self.site.registry.packs if p.name != PACK_NAME}
        refs = tuple(served.get(_pack_name(ref), ref) for ref in effective_packs(self.site.settings.packs, read_choices(self.site.engine)))
        try:
            registry = load_registry(pack_refs(self.site.settings, self.site.engine, files, refs))
            compile_site_rules(registry)
        except PackError as exc:
            raise LayerRefused("the layer does not load", [_relative(p) for p in exc.problems]) from None
        stranded = stranded_users(self.site, registry)
        if stranded:
            raise LayerRefused("the change would leave users in a unit or with a role it removes", stranded)
        return registry

    def preview(self, files: dict[str, str]) -> Plan:
        """The migration the layer needs (reads only); raises LayerRefused when it does not load."""
        from crm_platform.engine.site import Site

        registry = self.registry_for(files)
        return Site(self.site.settings, self.site.engine, registry).plan()

    def apply(self, files: dict[str, str], note: str | None, by: str, allow_destructive: bool = False) -> LayerVersion:
        """Migrate and record the new version in one transaction, then serve it here."""
        from crm_platform.engine.migration.apply import PlanRefused
        from crm_platform.engine.site import Site

        registry = self.registry_for(files)
        candidate = Site(self.site.settings, self.site.engine, registry)
        new_id: list[int] = []

        def record(conn: sa.Connection) -> None:
            new_id.append(conn.execute(self.table.insert().values(files=json.dumps(files, ensure_ascii=False, sort_keys=True), note=note, created_by=by,
                                                                  created_at=clock.now()).returning(self.table.c.id)).scalar_one())

        try:
            candidate.sync(allow_destructive, applied_by=f"designer:{by}", also=record)
        except PlanRefused as exc:
            raise LayerRefused("the change needs a migration that is refused", plan=exc.plan) from None
        self.site.switch_registry(registry)
        version = self.version(new_id[0])
        assert version is not None
        return version

    def versions(self, limit: int = 100) -> list[LayerVersion]:
        if "crm_site_layer" not in sa.inspect(self.site.engine).get_table_names():
            return []
        with self.site.engine.connect() as conn:
            return [_version(r) for r in conn.execute(sa.select(self.table).order_by(self.table.c.id.desc()).limit(limit)).mappings()]

    def version(self, version_id: int) -> LayerVersion | None:
        if "crm_site_layer" not in sa.inspect(self.site.engine).get_table_names():
            return None
        with self.site.engine.connect() as conn:
            row = conn.execute(sa.select(self.table).where(self.table.c.id == version_id)).mappings().first()
        return _version(row) if row else None

    def rollback(self, version_id: int, by: str) -> LayerVersion:
        """Serve an earlier version's files again, as a new version."""
        old = self.version(version_id)
        if old is None:
            raise LookupError(f"no layer version {version_id}")
        return self.apply(old.files, f"rollback to version {version_id}", by)

    def export(self, folder: Path, version_id: int | None = None) -> Path:
        """The layer as a pack folder `folder/site` that installs on a fresh site with the same packs."""
        version = self.version(version_id) if version_id is not None else self.current()
        files = version.files if version else {}
        source = materialize(self.site.settings, files, [p.name for p in self.site.registry.packs if p.name != PACK_NAME])
        target = folder / PACK_NAME
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(source, target)
        return target


def diff(before: dict[str, str], after: dict[str, str]) -> str:
    """A unified diff of two versions' files."""
    lines: list[str] = []
    for name in sorted(set(before) | set(after)):
        a, b = before.get(name, ""), after.get(name, "")
        if a != b:
            lines += difflib.unified_diff(a.splitlines(keepends=True), b.splitlines(keepends=True),
                                          f"a/{name}" if name in before else "/dev/null", f"b/{name}" if name in after else "/dev/null")
    return "".join(lines)


def _pack_name(ref: str) -> str:
    return ref.rstrip("/").split("/")[-1]


def _relative(problem: Problem) -> Problem:
    """A problem in a materialized layer file, named by the file's path inside the layer."""
    marker = f"/{PACK_NAME}/"
    if problem.file and "site-layer" in problem.file and marker in problem.file:
        return Problem(problem.file.split(marker, 1)[1], problem.line, problem.column, problem.message, problem.code)
    return problem
