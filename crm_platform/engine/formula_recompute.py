"""Recomputing stored formulas of existing records: after a pack adds a formula field (existing
records would stay empty until saved), after a formula's expression changes, or to refresh
formulas that read the clock. Run by `crm-platform formulas recompute`.

Each batch is one transaction; a changed record gets its new values, a new version and a
history entry, as when a save recomputes them. Records whose formulas cannot be computed keep
their values and are counted as failed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from crm_platform.engine.column_types import utcnow
from crm_platform.engine.records.actor import Actor
from crm_platform.engine.records.history import write_history

if TYPE_CHECKING:
    from crm_platform.engine.site import Site

BATCH = 500


@dataclass
class RecomputeResult:
    """What one entity's recomputation did."""

    entity: str
    records: int = 0
    changed: int = 0
    failed: dict[int, str] = field(default_factory=dict)  # record id -> the first problem


def entities_with_formulas(site: Site) -> list[str]:
    """Entities that store formula values (formula fields or `formula` rules)."""
    rules = site.rules
    names = {name for name, items in rules.formula_fields.items() if items}
    names |= {rule.entity for rule in rules.ruleset.rules if rule.kind == "formula"}
    return sorted(name for name in names if name in site.schema.tables)


def recompute(site: Site, entity_name: str, on_batch: Callable[[int], None] | None = None) -> RecomputeResult:
    """Recompute the stored formulas of every live record of `entity_name`."""
    entity = site.registry.entity(entity_name)
    table = site.schema.tables[entity.name]
    result = RecomputeResult(entity.name)
    with site.engine.connect() as conn:
        ids = list(conn.execute(sa.select(table.c.id).where(table.c.deleted_at.is_(None)).order_by(table.c.id)).scalars())
    for chunk in _chunks(ids, BATCH):
        with site.engine.begin() as conn:
            _batch(site, conn, entity, table, chunk, result)
        if on_batch is not None:
            on_batch(len(chunk))
    return result


def _batch(site: Site, conn: sa.Connection, entity: Any, table: sa.Table, chunk: list[int], result: RecomputeResult) -> None:
    hooks = site.records.hooks
    actor = Actor.system("recompute")
    history = site.schema.system["crm_history"]
    rows = conn.execute(sa.select(table).where(table.c.id.in_(chunk)).order_by(table.c.id)).mappings()
    for row in rows:
        prior = dict(row)
        result.records += 1
        computed, errors = hooks.compute_formulas(conn, actor, entity, dict(prior), prior)
        if errors:
            result.failed[prior["id"]] = errors[0].message
        changes = {name: (prior.get(name), value) for name, value in computed.items() if prior.get(name) != value}
        if not changes:
            continue
        now = utcnow()
        version = prior["version"] + 1
        conn.execute(table.update().where(table.c.id == prior["id"]).values(
            **{name: value for name, (_, value) in changes.items()}, version=version, updated_at=now))
        write_history(conn, history, entity.name, prior["id"], version, "update", changes, None, now)
        result.changed += 1


def _chunks(ids: Iterable[int], size: int) -> Iterable[list[int]]:
    batch: list[int] = []
    for item in ids:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


__all__ = ["RecomputeResult", "entities_with_formulas", "recompute"]
