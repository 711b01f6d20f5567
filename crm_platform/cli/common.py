"""What every command of the command line shares: the two consoles (stdout for results, stderr
for problems), opening the configured site, failing with a message and exit status 1, refusing to
work on a database whose schema is behind the packs, and the name changes are recorded under."""

from __future__ import annotations

import getpass
from typing import TYPE_CHECKING, NoReturn

import typer
from rich.console import Console

from crm_platform.config import Settings
from crm_platform.metadata.errors import PackError

if TYPE_CHECKING:
    from crm_platform.engine.site import Site

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)
_opened: list[Site] = []


def open_site() -> Site:
    """The site CRM_* configures (packs loaded, database connected); a bad pack prints its
    problems and exits 1. Its connections close when the command ends (close_sites)."""
    from crm_platform.engine.site import Site

    settings = Settings.from_env()
    try:
        site = Site.open(settings)
    except PackError as exc:
        err.print(exc.report(), markup=False)
        raise typer.Exit(1) from None
    _opened.append(site)
    return site


def close_sites() -> None:
    """Close the connections of every site the command opened (run when the command ends, so
    commands invoked in-process, as the tests do, leave no connection open)."""
    while _opened:
        _opened.pop().dispose()


def applied_by() -> str:
    """Who a change made on the command line is recorded as: `cli:<login name>`."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def fail(message: str) -> NoReturn:
    err.print(message, markup=False)
    raise typer.Exit(1)


def require_synced(site: Site) -> None:
    plan = site.plan()
    if not plan.empty:
        fail("the database schema is behind the packs; run `crm-platform db plan` and `crm-platform db sync` first:\n" + plan.describe())
