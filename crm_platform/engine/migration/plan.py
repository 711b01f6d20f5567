"""A migration plan: the ordered steps that bring the database to a Registry, each explained."""

from __future__ import annotations

from dataclasses import dataclass, field

from crm_platform.engine.entity_tables import ColumnSpec


@dataclass
class Step:
    """One schema change.

    `refusal` explains why it needs --allow-destructive (None: safe); `blocked` explains why it
    cannot be applied at all until the data is fixed (e.g. duplicates under a new unique index).
    """

    action: str
    table: str
    description: str
    column: str | None = None
    spec: ColumnSpec | None = None
    old: ColumnSpec | None = None
    new_name: str | None = None
    refusal: str | None = None
    blocked: str | None = None
    state_move: tuple[str, str, str] | None = None  # (workflow, retired state, new state)

    @property
    def destructive(self) -> bool:
        return self.refusal is not None


@dataclass
class Plan:
    """The steps in the order they are applied; `describe()` is what `db plan` prints."""

    registry_hash: str
    steps: list[Step] = field(default_factory=list)
    allow_destructive: bool = False

    @property
    def refused(self) -> list[Step]:
        """Steps that stop the plan: blocked ones, and destructive ones unless allowed."""
        return [s for s in self.steps if s.blocked or (s.destructive and not self.allow_destructive)]

    @property
    def empty(self) -> bool:
        return not self.steps

    def describe(self) -> str:
        if not self.steps:
            return "The database schema matches the packs: nothing to do."
        lines = []
        for step in self.steps:
            mark = "+"
            if step.blocked:
                mark = "x"
            elif step.destructive:
                mark = "!" if self.allow_destructive else "x"
            lines.append(f" {mark} {step.description}")
            if step.refusal:
                verdict = "applied because --allow-destructive was given" if self.allow_destructive else "refused"
                lines.append(f"     {verdict}: {step.refusal}")
            if step.blocked:
                lines.append(f"     blocked: {step.blocked}")
        summary = f"{len(self.steps)} step(s)"
        blocked = sum(1 for s in self.steps if s.blocked)
        refused = len(self.refused) - blocked
        if refused:
            summary += f", {refused} refused: rerun with --allow-destructive to apply them (old values are kept in an archived column)"
        if blocked:
            summary += f", {blocked} blocked until the data is fixed"
        return "\n".join([*lines, summary])

    def as_dicts(self) -> list[dict[str, object]]:
        return [
            {"action": s.action, "table": s.table, "column": s.column, "new_name": s.new_name,
             "description": s.description, "refusal": s.refusal}
            for s in self.steps
        ]
