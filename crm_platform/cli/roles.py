"""`crm-platform role ...`: list the roles with what they may do, and grant a role an action.

A grant changes the role's permission matrix the way the roles screen does: as a new version of
the site layer (LayeredAccessAdmin), recorded as made by `cli:<login name>`, so it is in the
designer's version history, undone by a rollback, exported with the layer, and kept by every
later sync. Which roles a user holds is data (`user assign`), not part of the layer."""

from __future__ import annotations

import typer

from crm_platform.cli.common import applied_by, fail, open_site, out, require_synced

role_app = typer.Typer(help="Roles and what they may do.", no_args_is_help=True)


@role_app.command("list")
def role_list() -> None:
    """Every role with its grants (entity action scope) and field access."""
    site = open_site()
    for role in site.permissions.list_roles():
        includes = f" includes {', '.join(role['includes'])}" if role["includes"] else ""
        out.print(f"{role['name']} ({role['label_en']} / {role['label_zh']}, {role['source']}){includes}", markup=False)
        for g in sorted(role["grants"], key=lambda g: (g["entity"], g["action"])):
            out.print(f"    {g['entity']:18} {g['action']:10} {g['scope']}", markup=False)
        for f in role["fields"]:
            out.print(f"    field {f['entity']}.{f['field']}: {f['access']}", markup=False)


@role_app.command("grant")
def role_grant(role: str, entity: str, action: str, scope: str) -> None:
    """Let ROLE do ACTION on ENTITY (or *) within SCOPE (own, unit, unit_and_below, all).

    The change is a new version of the site layer, like a change on the roles screen."""
    from crm_platform.engine.permissions.layered_admin import LayeredAccessAdmin
    from crm_platform.engine.records.errors import RecordError

    site = open_site()
    require_synced(site)  # applying a layer version migrates: never let a grant apply pending pack changes
    try:
        version = LayeredAccessAdmin(site).set_matrix(role, {(entity, action): scope}, applied_by())
    except RecordError as exc:
        fail("; ".join(f"{d.field}: {d.message}" for d in exc.details) or exc.message)
    if version is None:
        out.print(f"{role} may already {action} {entity} ({scope}); nothing changed", markup=False)
        return
    out.print(f"{role} may now {action} {entity} ({scope}): site layer version {version.id}", markup=False)
