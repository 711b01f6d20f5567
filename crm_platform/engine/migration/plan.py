"""A migration plan: the ordered steps that bring the database to a Registry, each explained."""

from __future__ import annotations

from dataclasses import dataclass, field

from crm_platform.engine.entity_tables import ColumnSpec


@dataclass
class Step:
    """One schema change. `refusal` explains why it needs --allow-destructive (None: safe)."""

    action: str
    table: str
    description: str
    column: str | None = None
    spec: ColumnSpec | None = None
    old: ColumnSpec | None = None
    new_name: str | None = None
    refusal: str | None = None

    @property
    def destructive(self) -> bool:
        return self.refusal is not None


@dataclass
class Plan:
    registry_hash: str
    steps: list[Step] = field(default_factory=list)
    allow_destructive: bool = False

    @property
    def refused(self) -> list[Step]:
        return [] if self.allow_destructive else [s for s in self.steps if s.destructive]

    @property
    def empty(self) -> bool:
        return not self.steps

    def describe(self) -> str:
        if not self.steps:
            return "The database schema matches the packs: nothing to do."
        lines = []
        for step in self.steps:
            mark = "+"
            if step.destructive:
                mark = "!" if self.allow_destructive else "x"
            lines.append(f" {mark} {step.description}")
            if step.refusal:
                verdict = "applied because --allow-destructive was given" if self.allow_destructive else "refused"
                lines.append(f"     {verdict}: {step.refusal}")
        refused = len(self.refused)
        summary = f"{len(self.steps)} step(s)"
        if refused:
            summary += f", {refused} refused: rerun with --allow-destructive to apply them (old values are kept in an archived column)"
        return "\n".join([*lines, summary])

    def as_dicts(self) -> list[dict[str, object]]:
        return [
            {"action": s.action, "table": s.table, "column": s.column, "description": s.description, "refusal": s.refusal}
            for s in self.steps
        ]
