"""The command line: `crm-platform` (also `python -m crm_platform`).

This module owns the top-level typer `app` and `main`; each command group lives in its own module
(packs, database, demo, users, roles, rules, scoring, formulas, backup, serving), sharing the
helpers of `common`. The order commands are added in here is the order `--help` lists them."""

from __future__ import annotations

import sys

import typer

from crm_platform.cli.backup import backup_command, restore_command
from crm_platform.cli.common import close_sites
from crm_platform.cli.database import db_app
from crm_platform.cli.demo import demo_app
from crm_platform.cli.formulas import formulas_app
from crm_platform.cli.packs import pack_app
from crm_platform.cli.roles import role_app
from crm_platform.cli.rules import rules_app
from crm_platform.cli.scoring import score_app
from crm_platform.cli.serving import serve, worker
from crm_platform.cli.users import token_app, user_app

app = typer.Typer(help="A metadata-driven CRM platform.", no_args_is_help=True, add_completion=False)


@app.callback()  # runs before every command: the sites a command opens are closed when it ends
def _close_sites_at_the_end(ctx: typer.Context) -> None:
    ctx.call_on_close(close_sites)


app.add_typer(pack_app, name="pack")
app.add_typer(db_app, name="db")
app.add_typer(demo_app, name="demo")
app.add_typer(user_app, name="user")
app.add_typer(token_app, name="token")
app.add_typer(role_app, name="role")
app.add_typer(rules_app, name="rules")
app.add_typer(score_app, name="score")
app.add_typer(formulas_app, name="formulas")
app.command("backup")(backup_command)
app.command("restore")(restore_command)
app.command("serve")(serve)
app.command("worker")(worker)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


__all__ = ["app", "main"]
