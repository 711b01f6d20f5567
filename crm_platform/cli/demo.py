"""`crm-platform demo ...`: set a demo site up in one go, load the packs' demo records, or
generate demo data in bulk (`demo load --size N`) with a progress bar."""

from __future__ import annotations

import os
import secrets
from typing import TYPE_CHECKING

import typer

from crm_platform.cli.common import applied_by, err, fail, open_site, out, require_synced
from crm_platform.metadata.errors import PackError

if TYPE_CHECKING:
    from crm_platform.engine.records.actor import Actor
    from crm_platform.engine.site import Site

demo_app = typer.Typer(help="Demo data.", no_args_is_help=True)


@demo_app.command("load")
def demo_load(
    size: int = typer.Option(None, "--size", min=1, max=1_000_000,
                             help="Generate this many accounts with their contacts, opportunities, orders, payments, service requests and "
                                  "follow-ups, as the packs' demo_profile.yaml says (instead of loading the packs' demo records)"),
    seed: int = typer.Option(None, "--seed", help="With --size: the random seed (default 1); the same seed and size give the same data"),
    append: bool = typer.Option(False, "--append", help="With --size: add another generated batch when one was generated before"),
    batch_rows: int = typer.Option(20_000, "--batch-rows", min=100, max=200_000, help="With --size: about this many rows per transaction"),
) -> None:
    """Load the packs' demo records (once; records already loaded are skipped), or with --size
    generate demo data in bulk (refused when generated data is there, unless --append)."""
    from crm_platform.engine.permissions.org_loader import load_org_chart
    from crm_platform.engine.seeding import SeedError, load_records

    if size is None and (seed is not None or append):
        fail("--seed and --append go with --size")
    site = open_site()
    require_synced(site)
    load_org_chart(site)
    if size is not None:
        _demo_generate(site, size, 1 if seed is None else seed, append, batch_rows)
        return
    owner = _demo_owner(site)
    try:
        result = load_records(site, ("seed", "demo"), owner)
    except SeedError as exc:
        fail(str(exc))
    out.print(f"demo data: {result.created} record(s) created, {result.skipped} already loaded")


def _demo_generate(site: Site, size: int, seed: int, append: bool, batch_rows: int) -> None:
    """`demo load --size`: seed records, then generated data with a progress bar on stderr."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskID,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from crm_platform.engine.demo_data import DemoDataError, ProgressEvent, generate
    from crm_platform.engine.records.actor import Actor
    from crm_platform.engine.seeding import SeedError, load_records

    try:
        load_records(site, ("seed",), Actor.system())  # products and the like, which generated rows refer to
    except SeedError as exc:
        fail(str(exc))
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rows]:>12,} rows"),
               TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err) as bar:
        tasks: dict[str, TaskID] = {}

        def progress(event: ProgressEvent) -> None:
            label = {"rows": "accounts", "roll-ups": "roll-ups", "pools": "shared records"}.get(event.phase, event.phase)
            if event.phase not in tasks:
                tasks[event.phase] = bar.add_task(label, total=event.total, rows=event.rows)
            bar.update(tasks[event.phase], completed=event.done, total=event.total, rows=event.rows)

        try:
            result = generate(site, size, seed, append=append, progress=progress, batch_rows=batch_rows)
        except PackError as exc:
            bar.stop()
            fail(exc.report())
        except DemoDataError as exc:
            bar.stop()
            fail(str(exc))
    counts = ", ".join(f"{name} {number:,}" for name, number in sorted(result.counts.items(), key=lambda kv: -kv[1]))
    out.print(f"generated run {result.run} (seed {seed}): {result.records:,} records ({counts})", markup=False)
    out.print(f"{result.rows:,} rows written (with N:N links and history) in {result.seconds:.1f} s: "
              f"{result.rows_per_second:,.0f} rows/s, {result.records / result.seconds if result.seconds else 0:,.0f} records/s; "
              f"roll-ups recomputed, {result.recomputed:,} records changed", markup=False)


def _demo_owner(site: Site) -> Actor:
    """The demo admin (records loaded as demo data belong to someone who can log in), else the system."""
    from crm_platform.engine.records.actor import Actor

    admin = site.users.find("admin")
    if admin:
        return site.users.actor(admin["id"]) or Actor.system()
    return Actor.system()


@demo_app.command("setup")
def demo_setup() -> None:
    """Sync the schema, load seed and demo data once, make sure a demo admin exists, print its login."""
    from crm_platform.engine.migration.apply import PlanRefused
    from crm_platform.engine.permissions.org_loader import load_org_chart
    from crm_platform.engine.seeding import SeedError, load_records

    site = open_site()
    try:
        plan = site.sync(applied_by=applied_by())
    except PlanRefused as exc:
        fail(exc.plan.describe() + "\nnothing was changed")
    if not plan.empty:
        out.print(plan.describe(), markup=False)
    login_file = site.settings.var_dir / "demo-login.txt"
    if site.users.find("admin") is None:
        password = secrets.token_urlsafe(9)
        site.users.create_user("admin", password, "Demo Admin", "admin@example.com", is_admin=True)
        login_file.write_text(f"admin {password}\n", encoding="utf-8")
        os.chmod(login_file, 0o600)
    load_org_chart(site)
    try:
        result = load_records(site, ("seed", "demo"), _demo_owner(site))
    except SeedError as exc:
        fail(str(exc))
    if result.created:
        out.print(f"demo data: {result.created} record(s) created")
    if login_file.is_file():
        username, password = login_file.read_text(encoding="utf-8").split()
        out.print(f"demo login: username [bold]{username}[/bold]  password [bold]{password}[/bold]")
    else:
        out.print("demo login: the user 'admin' existed before; set its password with `crm-platform user password admin`")
    chart = site.registry.extra.get("org")
    if chart is not None and chart.users and chart.password:
        people = ", ".join(f"{u.username} ({'/'.join(u.roles)})" for u in chart.users)
        out.print(f"demo org users (password {chart.password}): {people}")
