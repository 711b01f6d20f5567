"""`crm-platform db ...`: plan and apply the schema changes the packs need, and list the metadata
versions applied to the database."""

from __future__ import annotations

import typer

from crm_platform.cli.common import applied_by, err, fail, open_site, out

db_app = typer.Typer(help="Plan and apply schema changes.", no_args_is_help=True)


@db_app.command("plan")
def db_plan(allow_destructive: bool = typer.Option(False, "--allow-destructive", help="Show lossy changes as applicable")) -> None:
    """Print the schema changes `db sync` would apply."""
    plan = open_site().plan(allow_destructive)
    out.print(plan.describe(), markup=False)
    if plan.refused:
        raise typer.Exit(2)


@db_app.command("sync")
def db_sync(allow_destructive: bool = typer.Option(False, "--allow-destructive", help="Apply narrowing or incompatible changes (old values are archived)")) -> None:
    """Apply the plan in one transaction; nothing changes when any step is refused."""
    from crm_platform.engine.migration.apply import PlanRefused
    from crm_platform.engine.records.actor import Actor
    from crm_platform.engine.seeding import load_records

    site = open_site()
    try:
        plan = site.sync(allow_destructive, applied_by=applied_by())
    except PlanRefused as exc:
        err.print(exc.plan.describe(), markup=False)
        fail("nothing was changed")
    seeded = load_records(site, ("seed",), Actor.system())
    out.print(plan.describe(), markup=False)
    if seeded.created:
        out.print(f"loaded {seeded.created} seed record(s)")


@db_app.command("history")
def db_history() -> None:
    """The metadata versions applied to this database."""
    import json

    import sqlalchemy as sa

    site = open_site()
    table = site.schema.system["crm_metadata_version"]
    with site.engine.connect() as conn:
        for row in conn.execute(sa.select(table).order_by(table.c.id)):
            changes = json.loads(row.changes)
            out.print(f"{row.id:4}  {row.applied_at:%Y-%m-%d %H:%M}  {row.content_hash[:12]}  {row.applied_by:20}  {len(changes)} change(s)  {row.packs}")
