"""`crm-platform backup` and `crm-platform restore`: a consistent snapshot of a running site
(database and files) and restoring it into an empty site."""

from __future__ import annotations

import typer

from crm_platform.cli.common import fail, open_site


def backup_command(out: str = typer.Option(None, "--out", help="The .tar.gz to write (default var/backups/crm-<time>.tar.gz)")) -> None:
    """A consistent snapshot of the running site: database (SQLite online backup, pg_dump) and files."""
    import datetime as dt
    from pathlib import Path

    from crm_platform.engine.backup import BackupError, backup

    site = open_site()
    target = Path(out) if out else site.settings.var_dir / "backups" / f"crm-{dt.datetime.now(dt.UTC):%Y%m%d-%H%M%S}.tar.gz"
    try:
        written = backup(site.settings, target, [p.name for p in site.registry.packs], site.registry.content_hash)
    except BackupError as exc:
        fail(str(exc))
    print(f"backup written to {written} ({written.stat().st_size:,} bytes)")


def restore_command(path: str = typer.Argument(..., help="A backup made by `crm-platform backup`")) -> None:
    """Restore a backup into this site's (empty) database and files folder (CRM_DATABASE_URL, CRM_VAR_DIR)."""
    from pathlib import Path

    from crm_platform.config import Settings
    from crm_platform.engine.backup import BackupError, restore

    try:
        manifest = restore(Settings.from_env(), Path(path))
    except BackupError as exc:
        fail(str(exc))
    print(f"restored the backup of {manifest.created_at[:19]} (packs {', '.join(manifest.packs)}); start the site with the same packs")
