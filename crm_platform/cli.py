"""The command line: `crm-platform` (also `python -m crm_platform`)."""

from __future__ import annotations

import getpass
import os
import secrets
import sys

import typer
from rich.console import Console

from crm_platform.config import Settings
from crm_platform.metadata.errors import PackError

app = typer.Typer(help="A metadata-driven CRM platform.", no_args_is_help=True, add_completion=False)
pack_app = typer.Typer(help="Validate and list packs.", no_args_is_help=True)
db_app = typer.Typer(help="Plan and apply schema changes.", no_args_is_help=True)
demo_app = typer.Typer(help="Demo data.", no_args_is_help=True)
user_app = typer.Typer(help="Users.", no_args_is_help=True)
token_app = typer.Typer(help="Personal access tokens for the API.", no_args_is_help=True)
role_app = typer.Typer(help="Roles and what they may do.", no_args_is_help=True)
rules_app = typer.Typer(help="The rules language.", no_args_is_help=True)
app.add_typer(pack_app, name="pack")
app.add_typer(db_app, name="db")
app.add_typer(demo_app, name="demo")
app.add_typer(user_app, name="user")
app.add_typer(token_app, name="token")
app.add_typer(role_app, name="role")
app.add_typer(rules_app, name="rules")
score_app = typer.Typer(help="Scores and classes by rank (customer value, ABC).", no_args_is_help=True)
app.add_typer(score_app, name="score")
formulas_app = typer.Typer(help="Stored formula values.", no_args_is_help=True)
app.add_typer(formulas_app, name="formulas")

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def _site():  # type: ignore[no-untyped-def]
    from crm_platform.engine.site import Site

    settings = Settings.from_env()
    try:
        return Site.open(settings)
    except PackError as exc:
        err.print(exc.report(), markup=False)
        raise typer.Exit(1) from None


def _applied_by() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def _fail(message: str) -> None:
    err.print(message, markup=False)
    raise typer.Exit(1)


@pack_app.command("validate")
def pack_validate(paths: list[str] = typer.Argument(..., help="Pack folders or names")) -> None:
    """Check packs (and what they depend on); print every problem with file:line:column."""
    from crm_platform.metadata.loader import load_registry
    from crm_platform.rules.site_rules import compile_site_rules

    try:
        registry = load_registry(paths)
        compile_site_rules(registry)
    except PackError as exc:
        _fail(exc.report())
        return
    entities = len(registry.entities)
    out.print(f"ok: {', '.join(p.name + ' ' + p.version for p in registry.packs)}: {entities} entities, registry {registry.content_hash[:12]}")


@rules_app.command("check")
def rules_check(paths: list[str] = typer.Argument(..., help="Pack folders or names")) -> None:
    """Parse and type-check every rule of the packs (rules files, formula fields, view filters)."""
    from crm_platform.metadata.loader import load_registry
    from crm_platform.rules.site_rules import compile_site_rules

    try:
        registry = load_registry(paths)
        rules = compile_site_rules(registry)
    except PackError as exc:
        _fail(exc.report())
        return
    count = len(rules.ruleset.rules) + sum(len(v) for v in rules.formula_fields.values()) + len(rules.view_filters)
    out.print(f"ok: {count} rule(s) in {', '.join(p.name for p in registry.packs)} check and compile")


@score_app.command("run")
def score_run(name: str = typer.Argument(None, help="A scoring of the packs (default: all)")) -> None:
    """Score every record now (scoring/*.yaml) and assign the classes; the worker also does this periodically."""
    from crm_platform.engine.scoring import Scorer

    scorer = Scorer(_site())
    names = [name] if name else [s.name for s in scorer.scorings()]
    if not names:
        out.print("no scorings in the packs")
    for each in names:
        try:
            result = scorer.run(each)
        except LookupError as exc:
            _fail(str(exc))
            return
        classes = ", ".join(f"{k}: {v}" for k, v in result.classes.items())
        out.print(f"{each}: {result.scored} scored, {result.skipped} without a score" + (f"; classes {classes}" if classes else ""))


@formulas_app.command("recompute")
def formulas_recompute(entities: list[str] = typer.Argument(None, help="Entities (default: every entity with formulas)")) -> None:
    """Recompute stored formulas of existing records (after a pack adds or changes a formula)."""
    from crm_platform.engine.formula_recompute import entities_with_formulas, recompute

    site = _site()
    known = entities_with_formulas(site)
    for name in entities or known:
        if name not in known:
            _fail(f"{name}: not an entity with stored formulas (those are: {', '.join(known) or 'none'})")
        result = recompute(site, name)
        line = f"{name}: {result.records} record(s), {result.changed} changed"
        if result.failed:
            first_id, problem = next(iter(result.failed.items()))
            line += f", {len(result.failed)} could not be computed (first: #{first_id}: {problem})"
        out.print(line, markup=False)


@pack_app.command("list")
def pack_list() -> None:
    """The packs this site serves (CRM_PACKS) with their versions."""
    site = _site()
    for p in site.registry.packs:
        count = sum(1 for e in site.registry.entities.values() if e.pack == p.name)
        out.print(f"{p.name:20} {p.version:10} {count:3} entities  {p.title.en} / {p.title.zh_cn}  ({p.path})")


@app.command("backup")
def backup_command(out: str = typer.Option(None, "--out", help="The .tar.gz to write (default var/backups/crm-<time>.tar.gz)")) -> None:
    """A consistent snapshot of the running site: database (SQLite online backup, pg_dump) and files."""
    import datetime as dt
    from pathlib import Path

    from crm_platform.engine.backup import BackupError, backup

    site = _site()
    target = Path(out) if out else site.settings.var_dir / "backups" / f"crm-{dt.datetime.now(dt.UTC):%Y%m%d-%H%M%S}.tar.gz"
    try:
        written = backup(site.settings, target, [p.name for p in site.registry.packs], site.registry.content_hash)
    except BackupError as exc:
        _fail(str(exc))
        return
    print(f"backup written to {written} ({written.stat().st_size:,} bytes)")


@app.command("restore")
def restore_command(path: str = typer.Argument(..., help="A backup made by `crm-platform backup`")) -> None:
    """Restore a backup into this site's (empty) database and files folder (CRM_DATABASE_URL, CRM_VAR_DIR)."""
    from pathlib import Path

    from crm_platform.config import Settings
    from crm_platform.engine.backup import BackupError, restore

    try:
        manifest = restore(Settings.from_env(), Path(path))
    except BackupError as exc:
        _fail(str(exc))
        return
    print(f"restored the backup of {manifest.created_at[:19]} (packs {', '.join(manifest.packs)}); start the site with the same packs")


@pack_app.command("export")
def pack_export(out_dir: str = typer.Option(".", "--out", help="Folder to write the pack folder `site` into"),
                version: int = typer.Option(None, "--version", help="A layer version (default: the current one)")) -> None:
    """Write the site's designer layer as a pack folder that installs on a fresh site (`pack install`)."""
    from pathlib import Path

    from crm_platform.engine.site_layer import SiteLayer

    folder = SiteLayer(_site()).export(Path(out_dir), version)
    out.print(f"exported the site layer to {folder}")


@pack_app.command("install")
def pack_install(ref: str = typer.Argument(..., help="A pack folder, or a pack name in the search path"),
                 demo: bool = typer.Option(False, "--demo", help="Also load the pack's demo records"),
                 dry_run: bool = typer.Option(False, "--dry-run", help="Only print the plan")) -> None:
    """Add a pack to this site: its schema changes and the record of the choice in one transaction, then its seed records."""
    from crm_platform.engine.site_packs import read_choices, with_pack, write_choices

    def change(site, choices):  # type: ignore[no-untyped-def]
        return with_pack(site.settings.packs, choices, ref)

    _change_packs(change, write_choices, read_choices, demo, dry_run, f"installed {ref}")


@pack_app.command("remove")
def pack_remove(name: str = typer.Argument(..., help="The name of an installed pack"),
                dry_run: bool = typer.Option(False, "--dry-run", help="Only print the plan")) -> None:
    """Stop serving a pack: its columns and tables are archived (data kept; a reinstall brings them back)."""
    from crm_platform.engine.site_packs import read_choices, without_pack, write_choices

    current = _site()
    dependants = [p.name for p in current.registry.packs if name in p.depends]
    if name not in {p.name for p in current.registry.packs}:
        _fail(f"pack '{name}' is not served by this site (packs: {', '.join(p.name for p in current.registry.packs)})")
        return
    if dependants:
        _fail(f"pack '{name}' is needed by {', '.join(dependants)}: remove those first")
        return

    def change(site, choices):  # type: ignore[no-untyped-def]
        return without_pack(site.settings.packs, choices, name)

    _change_packs(change, write_choices, read_choices, False, dry_run, f"removed {name}")


def _change_packs(change, write_choices, read_choices, demo: bool, dry_run: bool, done: str) -> None:  # type: ignore[no-untyped-def]
    from crm_platform.engine.migration.apply import PlanRefused
    from crm_platform.engine.records.actor import Actor
    from crm_platform.engine.seeding import load_records
    from crm_platform.engine.site import Site
    from crm_platform.metadata.loader import load_registry

    from crm_platform.engine.site_layer import pack_refs

    current = _site()
    packs, choices = change(current, read_choices(current.engine))
    try:
        site = Site(current.settings, current.engine, load_registry(pack_refs(current.settings, current.engine, refs=packs)))
    except PackError as exc:
        _fail(exc.report())
        return
    if dry_run:
        out.print(site.plan().describe(), markup=False)
        return
    try:
        plan = site.sync(applied_by=_applied_by(), also=lambda conn: write_choices(conn, choices))
    except PlanRefused as exc:
        err.print(exc.plan.describe(), markup=False)
        _fail("nothing was changed")
        return
    out.print(plan.describe(), markup=False)
    loaded = load_records(site, ("seed", "demo") if demo else ("seed",), Actor.system())
    out.print(f"{done}; the site serves {', '.join(p.name + ' ' + p.version for p in site.registry.packs)}"
              + (f"; loaded {loaded.created} record(s)" if loaded.created else "") + ". Restart the app processes to serve the change.")


@db_app.command("plan")
def db_plan(allow_destructive: bool = typer.Option(False, "--allow-destructive", help="Show lossy changes as applicable")) -> None:
    """Print the schema changes `db sync` would apply."""
    plan = _site().plan(allow_destructive)
    out.print(plan.describe(), markup=False)
    if plan.refused:
        raise typer.Exit(2)


@db_app.command("sync")
def db_sync(allow_destructive: bool = typer.Option(False, "--allow-destructive", help="Apply narrowing or incompatible changes (old values are archived)")) -> None:
    """Apply the plan in one transaction; nothing changes when any step is refused."""
    from crm_platform.engine.migration.apply import PlanRefused

    site = _site()
    try:
        plan = site.sync(allow_destructive, applied_by=_applied_by())
    except PlanRefused as exc:
        err.print(exc.plan.describe(), markup=False)
        _fail("nothing was changed")
        return
    from crm_platform.engine.records.actor import Actor
    from crm_platform.engine.seeding import load_records

    seeded = load_records(site, ("seed",), Actor.system())
    out.print(plan.describe(), markup=False)
    if seeded.created:
        out.print(f"loaded {seeded.created} seed record(s)")


@db_app.command("history")
def db_history() -> None:
    """The metadata versions applied to this database."""
    import json

    import sqlalchemy as sa

    site = _site()
    table = site.schema.system["crm_metadata_version"]
    with site.engine.connect() as conn:
        for row in conn.execute(sa.select(table).order_by(table.c.id)):
            changes = json.loads(row.changes)
            out.print(f"{row.id:4}  {row.applied_at:%Y-%m-%d %H:%M}  {row.content_hash[:12]}  {row.applied_by:20}  {len(changes)} change(s)  {row.packs}")


def _require_synced(site) -> None:  # type: ignore[no-untyped-def]
    plan = site.plan()
    if not plan.empty:
        _fail("the database schema is behind the packs; run `crm-platform db plan` and `crm-platform db sync` first:\n" + plan.describe())


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
    from crm_platform.engine.seeding import SeedError, load_records

    if size is None and (seed is not None or append):
        _fail("--seed and --append go with --size")
    site = _site()
    _require_synced(site)
    from crm_platform.engine.permissions.org_loader import load_org_chart

    load_org_chart(site)
    if size is not None:
        _demo_generate(site, size, 1 if seed is None else seed, append, batch_rows)
        return
    owner = _demo_owner(site)
    try:
        result = load_records(site, ("seed", "demo"), owner)
    except SeedError as exc:
        _fail(str(exc))
        return
    out.print(f"demo data: {result.created} record(s) created, {result.skipped} already loaded")


def _demo_generate(site, size: int, seed: int, append: bool, batch_rows: int) -> None:  # type: ignore[no-untyped-def]
    """`demo load --size`: seed records, then generated data with a progress bar on stderr."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from crm_platform.engine.demo_data import DemoDataError, ProgressEvent, generate
    from crm_platform.engine.records.actor import Actor
    from crm_platform.engine.seeding import SeedError, load_records

    try:
        load_records(site, ("seed",), Actor.system())  # products and the like, which generated rows refer to
    except SeedError as exc:
        _fail(str(exc))
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[rows]:>12,} rows"),
               TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err) as bar:
        tasks: dict[str, int] = {}

        def progress(event: ProgressEvent) -> None:
            label = {"rows": "accounts", "roll-ups": "roll-ups", "pools": "shared records"}.get(event.phase, event.phase)
            if event.phase not in tasks:
                tasks[event.phase] = bar.add_task(label, total=event.total, rows=event.rows)
            bar.update(tasks[event.phase], completed=event.done, total=event.total, rows=event.rows)

        try:
            result = generate(site, size, seed, append=append, progress=progress, batch_rows=batch_rows)
        except PackError as exc:
            bar.stop()
            _fail(exc.report())
            return
        except DemoDataError as exc:
            bar.stop()
            _fail(str(exc))
            return
    counts = ", ".join(f"{name} {number:,}" for name, number in sorted(result.counts.items(), key=lambda kv: -kv[1]))
    out.print(f"generated run {result.run} (seed {seed}): {result.records:,} records ({counts})", markup=False)
    out.print(f"{result.rows:,} rows written (with N:N links and history) in {result.seconds:.1f} s: "
              f"{result.rows_per_second:,.0f} rows/s, {result.records / result.seconds if result.seconds else 0:,.0f} records/s; "
              f"roll-ups recomputed, {result.recomputed:,} records changed", markup=False)


def _demo_owner(site):  # type: ignore[no-untyped-def]
    from crm_platform.engine.records.actor import Actor

    admin = site.users.find("admin")
    if admin:
        return site.users.actor(admin["id"]) or Actor.system()
    return Actor.system()


@demo_app.command("setup")
def demo_setup() -> None:
    """Sync the schema, load seed and demo data once, make sure a demo admin exists, print its login."""
    from crm_platform.engine.migration.apply import PlanRefused
    from crm_platform.engine.seeding import SeedError, load_records

    site = _site()
    try:
        plan = site.sync(applied_by=_applied_by())
    except PlanRefused as exc:
        _fail(exc.plan.describe() + "\nnothing was changed")
        return
    if not plan.empty:
        out.print(plan.describe(), markup=False)
    login_file = site.settings.var_dir / "demo-login.txt"
    if site.users.find("admin") is None:
        password = secrets.token_urlsafe(9)
        site.users.create_user("admin", password, "Demo Admin", "admin@example.com", is_admin=True)
        login_file.write_text(f"admin {password}\n", encoding="utf-8")
        os.chmod(login_file, 0o600)
    from crm_platform.engine.permissions.org_loader import load_org_chart

    load_org_chart(site)
    try:
        result = load_records(site, ("seed", "demo"), _demo_owner(site))
    except SeedError as exc:
        _fail(str(exc))
        return
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


@user_app.command("create")
def user_create(
    username: str,
    password: str = typer.Option(None, "--password", help="Password (asked for when omitted)"),
    admin: bool = typer.Option(False, "--admin", help="Administrator"),
    name: str = typer.Option(None, "--name", help="Display name"),
    email: str = typer.Option(None, "--email"),
    language: str = typer.Option("en", "--language", help="en or zh-CN"),
) -> None:
    """Create a user who can log in."""
    from crm_platform.engine.records.errors import RecordError

    site = _site()
    _require_synced(site)
    if password is None:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        user_id = site.users.create_user(username, password, name, email, is_admin=admin, language=language)
    except RecordError as exc:
        _fail("; ".join(f"{d.field}: {d.message}" for d in exc.details) or exc.message)
        return
    out.print(f"created user {username} (id {user_id}){' as administrator' if admin else ''}")


@user_app.command("password")
def user_password(username: str, password: str = typer.Option(None, "--password")) -> None:
    """Set a user's password."""
    from crm_platform.engine.records.errors import RecordError

    site = _site()
    if password is None:
        password = typer.prompt("New password", hide_input=True, confirmation_prompt=True)
    try:
        site.users.set_password(username, password)
    except RecordError as exc:
        _fail(exc.message if not exc.details else exc.details[0].message)
    out.print(f"password of {username} changed")


@token_app.command("create")
def token_create(
    username: str,
    name: str = typer.Option("cli", "--name", help="What the token is for"),
    days: int = typer.Option(None, "--days", help="Expire after this many days"),
) -> None:
    """Create a personal access token and print it (it is shown only once)."""
    site = _site()
    user = site.users.find(username)
    if user is None:
        _fail(f"no user '{username}'")
        return
    token, info = site.users.create_token(user["id"], name, days)
    out.print(token, markup=False)
    err.print(f"token '{info['name']}' for {username}; send it as 'Authorization: Bearer <token>'")


@role_app.command("list")
def role_list() -> None:
    """Every role with its grants (entity action scope) and field access."""
    site = _site()
    for role in site.permissions.list_roles():
        includes = f" includes {', '.join(role['includes'])}" if role["includes"] else ""
        out.print(f"{role['name']} ({role['label_en']} / {role['label_zh']}, {role['source']}){includes}", markup=False)
        for g in sorted(role["grants"], key=lambda g: (g["entity"], g["action"])):
            out.print(f"    {g['entity']:18} {g['action']:10} {g['scope']}", markup=False)
        for f in role["fields"]:
            out.print(f"    field {f['entity']}.{f['field']}: {f['access']}", markup=False)


@role_app.command("grant")
def role_grant(role: str, entity: str, action: str, scope: str) -> None:
    """Let ROLE do ACTION on ENTITY (or *) within SCOPE (own, unit, unit_and_below, all)."""
    from crm_platform.engine.records.errors import RecordError

    site = _site()
    try:
        site.permissions.grant(role, entity, action, scope)
    except RecordError as exc:
        _fail("; ".join(d.message for d in exc.details) or exc.message)
    out.print(f"{role} may now {action} {entity} ({scope})")


@user_app.command("assign")
def user_assign(username: str, role: str) -> None:
    """Give a user a role."""
    from crm_platform.engine.records.errors import RecordError

    site = _site()
    user = site.users.find(username)
    if user is None:
        _fail(f"no user '{username}'")
        return
    try:
        site.permissions.assign_role(user["id"], role)
    except RecordError as exc:
        _fail(exc.message)
    out.print(f"{username} now holds {role}")


@user_app.command("reassign")
def user_reassign(from_user: str, to_user: str) -> None:
    """Give every record FROM_USER owns to TO_USER (a rep leaves: nothing is lost)."""
    site = _site()
    source, target = site.users.find(from_user), site.users.find(to_user)
    if source is None or target is None:
        _fail(f"no user '{from_user if source is None else to_user}'")
        return
    counts = site.permissions.reassign(source["id"], target["id"])
    total = sum(counts.values())
    out.print(f"moved {total} record(s) from {from_user} to {to_user}: " + (", ".join(f"{k} {v}" for k, v in counts.items()) or "none"))


@app.command("serve")
def serve(
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8000, "--port"),
    workers: int = typer.Option(1, "--workers", help="Server processes"),
    trusted_proxies: str = typer.Option(None, "--trusted-proxies", help="Addresses of reverse proxies whose X-Forwarded-For is believed "
                                        "(e.g. 127.0.0.1), so login throttling and logs see the real client"),
) -> None:
    """Serve the web app and API."""
    import uvicorn

    site = _site()
    _require_synced(site)
    site.dispose()
    out.print(f"serving on http://{host}:{port}")
    uvicorn.run("crm_platform.ui.asgi:app", host=host, port=port, workers=workers, log_level="info",
                proxy_headers=bool(trusted_proxies), forwarded_allow_ips=trusted_proxies or None)


@app.command("worker")
def worker(
    burst: bool = typer.Option(False, "--burst", help="Stop once the queue is empty"),
    sweep_seconds: float = typer.Option(None, "--sweep-seconds", help="How often due timers and abandoned jobs are looked for (default CRM_JOB_SWEEP_SECONDS or 5)"),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Log every job"),
) -> None:
    """Run background jobs (email, timers, notifications) from Redis with arq; needs CRM_REDIS_URL."""
    import logging.config

    from arq.logs import default_log_config

    if not Settings.from_env().redis_url:
        _fail("crm-platform worker needs CRM_REDIS_URL (e.g. redis://127.0.0.1:6379/0); "
              "without Redis, jobs run inside `crm-platform serve` and no worker is needed")
    site = _site()
    _require_synced(site)
    from crm_platform.engine.jobs.worker import run_worker

    config = default_log_config(verbose)
    config["loggers"]["crm_platform"] = {"handlers": ["arq.standard"], "level": "DEBUG" if verbose else "INFO"}
    logging.config.dictConfig(config)
    try:
        run_worker(site, sweep_seconds=sweep_seconds, burst=burst)
    finally:
        site.dispose()


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


__all__ = ["app", "main"]
