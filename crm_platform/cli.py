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


@pack_app.command("list")
def pack_list() -> None:
    """The packs this site serves (CRM_PACKS) with their versions."""
    site = _site()
    for p in site.registry.packs:
        count = sum(1 for e in site.registry.entities.values() if e.pack == p.name)
        out.print(f"{p.name:20} {p.version:10} {count:3} entities  {p.title.en} / {p.title.zh_cn}  ({p.path})")


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
def demo_load() -> None:
    """Load the packs' demo records (once; records already loaded are skipped)."""
    from crm_platform.engine.seeding import SeedError, load_records

    site = _site()
    _require_synced(site)
    from crm_platform.engine.permissions.org_loader import load_org_chart

    load_org_chart(site)
    owner = _demo_owner(site)
    try:
        result = load_records(site, ("seed", "demo"), owner)
    except SeedError as exc:
        _fail(str(exc))
        return
    out.print(f"demo data: {result.created} record(s) created, {result.skipped} already loaded")


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
) -> None:
    """Serve the web app and API."""
    import uvicorn

    site = _site()
    _require_synced(site)
    site.dispose()
    out.print(f"serving on http://{host}:{port}")
    uvicorn.run("crm_platform.ui.asgi:app", host=host, port=port, workers=workers, log_level="info", proxy_headers=False)


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
