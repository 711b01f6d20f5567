"""Running scorings (scoring/*.yaml): every record of the entity gets its score (a rules-language
expression, roll-ups included) and, ranked best first, its class (A = top 5 %, ...). A periodic
job runs each scoring when its `every_hours` have passed (the last run is kept in crm_setting);
`crm-platform score run` runs them now. Scores and classes are derived values: they are written
without a new record version or field history, like the other formulas' roll-ups."""

from __future__ import annotations

import datetime as dt
import logging
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from crm_platform.engine import clock, jobs
from crm_platform.engine.jobs.runner import JobContext
from crm_platform.engine.records.actor import Actor
from crm_platform.metadata.scoring import Scoring
from crm_platform.rules import RuleError

if TYPE_CHECKING:
    from crm_platform.engine.site import Site

log = logging.getLogger("crm_platform.scoring")

SCORING_JOB = "scoring_run"
BATCH = 500
ACTOR = Actor.system("scoring")


def _has_scorings(site: Site) -> bool:
    return bool(site.registry.extra.get("scorings"))


@jobs.job(SCORING_JOB, max_attempts=3, backoff=300, timeout=3600, every=3600.0, only_if=_has_scorings)
def run_due_scorings(ctx: JobContext) -> None:
    Scorer(ctx.site).run_due()


@dataclass
class ScoreResult:
    scoring: str
    scored: int = 0
    skipped: int = 0  # not meeting `when`, or the score failed
    classes: dict[str, int] = field(default_factory=dict)


class Scorer:
    def __init__(self, site: Site) -> None:
        self.site = site
        self.settings = site.schema.system["crm_setting"]

    def scorings(self) -> tuple[Scoring, ...]:
        return tuple(self.site.registry.extra.get("scorings", ()))

    def get(self, name: str) -> Scoring:
        for scoring in self.scorings():
            if scoring.name == name:
                return scoring
        raise LookupError(f"no scoring named '{name}' (known: {', '.join(s.name for s in self.scorings()) or 'none'})")

    def last_run(self, name: str) -> dt.datetime | None:
        with self.site.engine.connect() as conn:
            value = conn.execute(sa.select(self.settings.c.value).where(self.settings.c.key == f"scoring:{name}")).scalar()
        return dt.datetime.fromisoformat(value) if value else None

    def run_due(self) -> list[ScoreResult]:
        now = clock.now()
        results = []
        for scoring in self.scorings():
            last = self.last_run(scoring.name)
            if last is None or now - last >= dt.timedelta(hours=scoring.every_hours) - dt.timedelta(minutes=1):
                results.append(self.run(scoring.name))
        return results

    def run(self, name: str) -> ScoreResult:
        scoring = self.get(name)
        score_expr, condition = self.site.rules.scores[name]
        entity = self.site.registry.entity(scoring.entity)
        table = self.site.schema.tables[scoring.entity]
        hooks = self.site.records.hooks
        result = ScoreResult(name)
        after = 0
        while True:
            with self.site.engine.connect() as conn:
                rows = [dict(r) for r in conn.execute(sa.select(table).where(table.c.deleted_at.is_(None), table.c.id > after).order_by(table.c.id).limit(BATCH)).mappings()]
                updates: list[dict[str, Any]] = []
                for row in rows:
                    context = hooks.context(conn, ACTOR, entity, row, None)
                    try:
                        applies = condition is None or bool(condition.test(context))
                        value = hooks._stored(entity, scoring.score_field, score_expr.evaluate(context)) if applies else None
                    except (RuleError, ValueError) as exc:
                        log.warning("scoring %s: %s %s: %s", name, scoring.entity, row["id"], getattr(exc, "message", exc))
                        value = None
                    result.scored += value is not None
                    result.skipped += value is None
                    if value != row[scoring.score_field]:
                        updates.append({"_id": row["id"], "_value": value})
                conn.rollback()
            if updates:
                with self.site.engine.begin() as conn:
                    conn.execute(table.update().where(table.c.id == sa.bindparam("_id")).values({scoring.score_field: sa.bindparam("_value")}), updates)
            if len(rows) < BATCH:
                break
            after = rows[-1]["id"]
        if scoring.class_field:
            result.classes = self._classify(scoring, table)
        with self.site.engine.begin() as conn:
            key = f"scoring:{name}"
            conn.execute(self.settings.delete().where(self.settings.c.key == key))
            conn.execute(self.settings.insert().values(key=key, value=clock.now().isoformat()))
        return result

    def _classify(self, scoring: Scoring, table: sa.Table) -> dict[str, int]:
        """Rank the scored records best first (ties by id) and give each its class."""
        score, klass = table.c[scoring.score_field], table.c[scoring.class_field or ""]
        with self.site.engine.connect() as conn:
            ranked = conn.execute(sa.select(table.c.id, klass).where(table.c.deleted_at.is_(None), score.is_not(None)).order_by(score.desc(), table.c.id)).all()
            unscored = conn.execute(sa.select(table.c.id).where(table.c.deleted_at.is_(None), score.is_(None), klass.is_not(None))).scalars().all()
        total = len(ranked)
        bounds: list[tuple[str, int]] = []
        cumulative = 0.0
        for c in scoring.classes:
            cumulative = 100.0 if c.top_percent is None else cumulative + c.top_percent
            bounds.append((c.value, math.ceil(total * min(cumulative, 100.0) / 100.0 - 1e-9)))
        counts = {c.value: 0 for c in scoring.classes}
        updates: list[dict[str, Any]] = []
        position = 0
        for value, upto in bounds:
            while position < min(upto, total):
                record_id, current = ranked[position]
                counts[value] += 1
                if current != value:
                    updates.append({"_id": record_id, "_value": value})
                position += 1
        updates += [{"_id": record_id, "_value": None} for record_id in unscored]
        for start in range(0, len(updates), BATCH):
            with self.site.engine.begin() as conn:
                conn.execute(table.update().where(table.c.id == sa.bindparam("_id")).values({klass.name: sa.bindparam("_value")}), updates[start:start + BATCH])
        return counts


__all__ = ["SCORING_JOB", "ScoreResult", "Scorer"]
