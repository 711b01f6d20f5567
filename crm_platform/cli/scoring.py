"""`crm-platform score run`: run the packs' scorings now (the worker also runs them periodically)."""

from __future__ import annotations

import typer

from crm_platform.cli.common import fail, open_site, out

score_app = typer.Typer(help="Scores and classes by rank (customer value, ABC).", no_args_is_help=True)


@score_app.command("run")
def score_run(name: str = typer.Argument(None, help="A scoring of the packs (default: all)")) -> None:
    """Score every record now (scoring/*.yaml) and assign the classes; the worker also does this periodically."""
    from crm_platform.engine.scoring import Scorer

    scorer = Scorer(open_site())
    names = [name] if name else [s.name for s in scorer.scorings()]
    if not names:
        out.print("no scorings in the packs")
    for each in names:
        try:
            result = scorer.run(each)
        except LookupError as exc:
            fail(str(exc))
        classes = ", ".join(f"{k}: {v}" for k, v in result.classes.items())
        out.print(f"{each}: {result.scored} scored, {result.skipped} without a score" + (f"; classes {classes}" if classes else ""))
