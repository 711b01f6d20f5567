"""`crm-platform rules check`: parse and type-check every rule of some packs, without a database."""

from __future__ import annotations

import typer

from crm_platform.cli.common import fail, out
from crm_platform.metadata.errors import PackError

rules_app = typer.Typer(help="The rules language.", no_args_is_help=True)


@rules_app.command("check")
def rules_check(paths: list[str] = typer.Argument(..., help="Pack folders or names")) -> None:
    """Parse and type-check every rule of the packs (rules files, formula fields, view filters)."""
    from crm_platform.metadata.loader import load_registry
    from crm_platform.rules.site_rules import compile_site_rules

    try:
        registry = load_registry(paths)
        rules = compile_site_rules(registry)
    except PackError as exc:
        fail(exc.report())
    count = len(rules.ruleset.rules) + sum(len(v) for v in rules.formula_fields.values()) + len(rules.view_filters)
    out.print(f"ok: {count} rule(s) in {', '.join(p.name for p in registry.packs)} check and compile")
