"""The compiled demo profile: plain objects the generator runs (plans per entity, field
generators, row counts, owner groups), and where each was written for error messages."""

from __future__ import annotations

import bisect
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from crm_platform.metadata.errors import Problem
from crm_platform.metadata.model import Entity, Field
from crm_platform.metadata.yaml_source import JsonPath, SourceFile
from crm_platform.rules import CompiledExpression

if TYPE_CHECKING:
    from crm_platform.engine.demo_data.rows import Row

#: A field generator: draws the value of one field for a row being generated.
Produce = Callable[[random.Random, "Row"], Any]


class DemoDataError(Exception):
    """Generation stopped (nothing of this run is kept); the message names the profile's place."""


@dataclass(frozen=True)
class Located:
    """A node of a profile file: the file and the path to the node."""

    source: SourceFile
    path: JsonPath

    def child(self, *steps: str | int) -> Located:
        return Located(self.source, (*self.path, *steps))

    def problem(self, message: str, at_key: bool = False) -> Problem:
        return self.source.problem(self.path, message, "demo.profile", at_key=at_key)

    def where(self) -> str:
        line, column = self.source.where(self.path)
        return f"{self.source.path}:{line}:{column}" if line is not None else self.source.path

    def has(self) -> bool:
        return self.path in self.source.positions


@dataclass(frozen=True)
class Count:
    """How many rows: uniform over [low, high], or weighted choices."""

    values: tuple[int, ...]
    cumulative: tuple[float, ...] = ()  # empty: uniform over values[0]..values[1]

    def draw(self, rng: random.Random) -> int:
        if not self.cumulative:
            low, high = self.values
            return low + int(rng.random() * (high - low + 1))
        return self.values[bisect.bisect_right(self.cumulative, rng.random() * self.cumulative[-1])]

    @property
    def expected(self) -> float:
        if not self.cumulative:
            return (self.values[0] + self.values[1]) / 2
        total, previous, mean = self.cumulative[-1], 0.0, 0.0
        for value, bound in zip(self.values, self.cumulative, strict=True):
            mean += value * (bound - previous) / total
            previous = bound
        return mean


def parse_count(raw: Any) -> Count:
    """A count as the schema allows it: n, [min, max] or {n: weight} (raises ValueError)."""
    if isinstance(raw, int):
        return Count((raw, raw))
    if isinstance(raw, list):
        low, high = int(raw[0]), int(raw[1])
        if low > high:
            raise ValueError(f"count [{low}, {high}]: the minimum is larger than the maximum")
        return Count((low, high))
    items = sorted((int(k), float(v)) for k, v in raw.items())
    if sum(w for _, w in items) <= 0:
        raise ValueError("count: the weights add up to 0")
    cumulative, total = [], 0.0
    for _, weight in items:
        total += weight
        cumulative.append(total)
    return Count(tuple(k for k, _ in items), tuple(cumulative))


@dataclass
class Alternative:
    """One way to generate a field: used when `when` holds (or always), empty with chance `blank`."""

    kind: str
    produce: Produce
    when: CompiledExpression | None = None
    blank: float = 0.0
    target: str | None = None  # the entity a `random` generator draws from


@dataclass
class FieldPlan:
    """How one field (or created_at) is generated: the first alternative whose `when` holds."""

    name: str
    field: Field | None  # None for the system column created_at
    alternatives: list[Alternative]
    place: Located


@dataclass
class OwnerGroup:
    """Users who own generated rows; filled with user ids when the run starts."""

    name: str
    roles: tuple[str, ...] = ()
    usernames: tuple[str, ...] = ()
    place: Located | None = None
    user_ids: tuple[int, ...] = ()


@dataclass
class EntityPlan:
    """How rows of one entity are generated.

    mode "root": `per_size` rows per unit of --size; "pool": rows until the table holds
    `at_least`; "per": `count` rows for each row of `per` (when `when` holds on it), linked
    through `link` (a reference field, "parent_id" for a child table, or None).
    """

    entity: Entity
    mode: str
    place: Located
    per: str | None = None
    link: str | None = None
    count: Count | None = None
    per_size: int = 1
    at_least: int = 0
    when: CompiledExpression | None = None
    owner: OwnerGroup | None = None  # None: the owner of the row it is generated under
    fields: list[FieldPlan] = field(default_factory=list)
    children: list[EntityPlan] = field(default_factory=list)  # child-table plans, made with each row
    mentioned: frozenset[str] = frozenset()

    @property
    def name(self) -> str:
        return self.entity.name

    def expected_per_parent(self) -> float:
        """About how many rows of this plan each row of `per` gets (a condition counts as half)."""
        if self.mode != "per" or self.count is None:
            return 1.0
        return self.count.expected * (0.5 if self.when is not None else 1.0)

    def expected_with_children(self) -> float:
        """One row of this plan and its child rows."""
        return 1.0 + sum(c.expected_per_parent() * c.expected_with_children() for c in self.children)


@dataclass
class Profile:
    """Every plan in generation order (pools, the root, then the rest), with the files read."""

    plans: list[EntityPlan]
    root: EntityPlan
    files: Sequence[str]
    words: dict[str, tuple[str, ...]]

    def plan(self, entity: str) -> EntityPlan | None:
        return next((p for p in self.plans if p.name == entity), None)

    def rows_per_root(self) -> float:
        """About how many rows one root row brings (to size the batches)."""
        per_root = {self.root.name: 1.0}
        total = self.root.expected_with_children()
        for plan in self.plans:
            if plan.mode == "per":
                per_root[plan.name] = per_root.get(plan.per or "", 0.0) * plan.expected_per_parent()
                total += per_root[plan.name] * plan.expected_with_children()
        return total

    @property
    def pools(self) -> list[EntityPlan]:
        return [p for p in self.plans if p.mode == "pool"]
