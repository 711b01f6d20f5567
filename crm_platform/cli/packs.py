"""`crm-platform pack ...`: validate packs, list the served ones, install or remove a pack on a
site with data, and export the designer's site layer as a pack folder."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import typer

from crm_platform.cli.common import applied_by, err, fail, open_site, out
from crm_platform.metadata.errors import PackError

if TYPE_CHECKING:
    import sqlalchemy as sa

    from crm_platform.engine.site import Site
    from crm_platform.engine.site_packs import PackChoices

pack_app = typer.Typer(help="Validate and list packs.", no_args_is_help=True)

@pack_app.command("validate")
def pack_validate(paths: list[str] = typer.Argument(..., help="Pack folders or names")) -> None:
    """Check packs (and what they depend on); print every problem with file:line:column."""
    from crm_platform.metadata.loader import load_registry
    from crm_platform.rules.site_rules import compile_site_rules

    try:
        registry = load_registry(paths)
        compile_site_rules(registry)
    except PackError as exc:
        fail(exc.report())
    entities = len(registry.entities)
    out.print(f"ok: {', '.join(p.name + ' ' + p.version for p in registry.packs)}: {entities} entities, registry {registry.content_hash[:12]}")


@pack_app.command("list")
def pack_list() -> None:
    """The packs this site serves (CRM_PACKS) with their versions."""
    site = open_site()
    for p in site.registry.packs:
        count = sum(1 for e in site.registry.entities.values() if e.pack == p.name)
        out.print(f"{p.name:20} {p.version:10} {count:3} entities  {p.title.en} / {p.title.zh_cn}  ({p.path})")


@pack_app.command("export")
def pack_export(out_dir: str = typer.Option(".", "--out", help="Folder to write the pack folder `site` into"),
                version: int = typer.Option(None, "--version", help="A layer version (default: the current one)")) -> None:
    """Write the site's designer layer as a pack folder that installs on a fresh site (`pack install`)."""
    from pathlib import Path

    from crm_platform.engine.site_layer import SiteLayer

    folder = SiteLayer(open_site()).export(Path(out_dir), version)
    out.print(f"exported the site layer to {folder}")


@pack_app.command("install")
def pack_install(ref: str = typer.Argument(..., help="A pack folder, or a pack name in the search path"),
                 demo: bool = typer.Option(False, "--demo", help="Also load the pack's demo records"),
                 dry_run: bool = typer.Option(False, "--dry-run", help="Only print the plan")) -> None:
    """Add a pack to this site: its schema changes and the record of the choice in one transaction, then its seed records."""
    from crm_platform.engine.site_packs import with_pack

    def change(site: Site, choices: PackChoices) -> tuple[tuple[str, ...], PackChoices]:
        return with_pack(site.settings.packs, choices, ref)

    _change_packs(change, demo, dry_run, f"installed {ref}")


@pack_app.command("remove")
def pack_remove(name: str = typer.Argument(..., help="The name of an installed pack"),
                dry_run: bool = typer.Option(False, "--dry-run", help="Only print the plan")) -> None:
    """Stop serving a pack: its columns and tables are archived (data kept; a reinstall brings them back)."""
    from crm_platform.engine.site_packs import without_pack

    current = open_site()
    dependants = [p.name for p in current.registry.packs if name in p.depends]
    if name not in {p.name for p in current.registry.packs}:
        fail(f"pack '{name}' is not served by this site (packs: {', '.join(p.name for p in current.registry.packs)})")
    if dependants:
        fail(f"pack '{name}' is needed by {', '.join(dependants)}: remove those first")

    def change(site: Site, choices: PackChoices) -> tuple[tuple[str, ...], PackChoices]:
        return without_pack(site.settings.packs, choices, name)

    _change_packs(change, False, dry_run, f"removed {name}")


def _change_packs(change: Callable[[Site, PackChoices], tuple[tuple[str, ...], PackChoices]], demo: bool, dry_run: bool, done: str) -> None:
    """Serve the packs `change` picks: print the plan (dry run), or migrate and record the choice
    in one transaction, then load the seed (and with `demo`, the demo) records."""
    from crm_platform.engine.migration.apply import PlanRefused
    from crm_platform.engine.records.actor import Actor
    from crm_platform.engine.seeding import load_records
    from crm_platform.engine.site import Site
    from crm_platform.engine.site_layer import pack_refs
    from crm_platform.engine.site_packs import read_choices, write_choices
    from crm_platform.metadata.loader import load_registry

    current = open_site()
    packs, choices = change(current, read_choices(current.engine))
    try:
        site = Site(current.settings, current.engine, load_registry(pack_refs(current.settings, current.engine, refs=packs)))
    except PackError as exc:
        fail(exc.report())
    if dry_run:
        out.print(site.plan().describe(), markup=False)
        return

    def record_choice(conn: sa.Connection) -> None:
        write_choices(conn, choices)

    try:
        plan = site.sync(applied_by=applied_by(), also=record_choice)
    except PlanRefused as exc:
        err.print(exc.plan.describe(), markup=False)
        fail("nothing was changed")
    out.print(plan.describe(), markup=False)
    loaded = load_records(site, ("seed", "demo") if demo else ("seed",), Actor.system())
    out.print(f"{done}; the site serves {', '.join(p.name + ' ' + p.version for p in site.registry.packs)}"
              + (f"; loaded {loaded.created} record(s)" if loaded.created else "") + ". Restart the app processes to serve the change.")
