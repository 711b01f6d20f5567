"""`crm-platform user ...` and `crm-platform token ...`: user accounts, the roles they hold,
handing a leaver's records over, and personal access tokens. All of this is data (rows), never
a version of the site layer."""

from __future__ import annotations

import typer

from crm_platform.cli.common import err, fail, open_site, out, require_synced

user_app = typer.Typer(help="Users.", no_args_is_help=True)
token_app = typer.Typer(help="Personal access tokens for the API.", no_args_is_help=True)


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

    site = open_site()
    require_synced(site)
    if password is None:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        user_id = site.users.create_user(username, password, name, email, is_admin=admin, language=language)
    except RecordError as exc:
        fail("; ".join(f"{d.field}: {d.message}" for d in exc.details) or exc.message)
    out.print(f"created user {username} (id {user_id}){' as administrator' if admin else ''}")


@user_app.command("password")
def user_password(username: str, password: str = typer.Option(None, "--password")) -> None:
    """Set a user's password."""
    from crm_platform.engine.records.errors import RecordError

    site = open_site()
    if password is None:
        password = typer.prompt("New password", hide_input=True, confirmation_prompt=True)
    try:
        site.users.set_password(username, password)
    except RecordError as exc:
        fail(exc.message if not exc.details else exc.details[0].message)
    out.print(f"password of {username} changed")


@user_app.command("assign")
def user_assign(username: str, role: str) -> None:
    """Give a user a role."""
    from crm_platform.engine.records.errors import RecordError

    site = open_site()
    user = site.users.find(username)
    if user is None:
        fail(f"no user '{username}'")
    try:
        site.permissions.assign_role(user["id"], role)
    except RecordError as exc:
        fail(exc.message)
    out.print(f"{username} now holds {role}")


@user_app.command("reassign")
def user_reassign(from_user: str, to_user: str) -> None:
    """Give every record FROM_USER owns to TO_USER (a rep leaves: nothing is lost)."""
    site = open_site()
    source, target = site.users.find(from_user), site.users.find(to_user)
    if source is None or target is None:
        fail(f"no user '{from_user if source is None else to_user}'")
    counts = site.permissions.reassign(source["id"], target["id"])
    total = sum(counts.values())
    out.print(f"moved {total} record(s) from {from_user} to {to_user}: " + (", ".join(f"{k} {v}" for k, v in counts.items()) or "none"))


@token_app.command("create")
def token_create(
    username: str,
    name: str = typer.Option("cli", "--name", help="What the token is for"),
    days: int = typer.Option(None, "--days", help="Expire after this many days"),
) -> None:
    """Create a personal access token and print it (it is shown only once)."""
    site = open_site()
    user = site.users.find(username)
    if user is None:
        fail(f"no user '{username}'")
    token, info = site.users.create_token(user["id"], name, days)
    out.print(token, markup=False)
    err.print(f"token '{info['name']}' for {username}; send it as 'Authorization: Bearer <token>'")
