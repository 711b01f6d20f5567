"""`crm-platform formulas recompute`: fill stored formulas of existing records after a pack adds
or changes a formula (a new version and a history row per changed record)."""

from __future__ import annotations

import typer

from crm_platform.cli.common import fail, open_site, out

formulas_app = typer.Typer(help="Stored formula values.", no_args_is_help=True)


@formulas_app.command("recompute")
def formulas_recompute(entities: list[str] = typer.Argument(None, help="Entities (default: every entity with formulas)")) -> None:
    """Recompute stored formulas of existing records (after a pack adds or changes a formula)."""
    from crm_platform.engine.formula_recompute import entities_with_formulas, recompute

    site = open_site()
    known = entities_with_formulas(site)
    for name in entities or known:
        if name not in known:
            fail(f"{name}: not an entity with stored formulas (those are: {', '.join(known) or 'none'})")
        result = recompute(site, name)
        line = f"{name}: {result.records} record(s), {result.changed} changed"
        if result.failed:
            first_id, problem = next(iter(result.failed.items()))
            line += f", {len(result.failed)} could not be computed (first: #{first_id}: {problem})"
        out.print(line, markup=False)
