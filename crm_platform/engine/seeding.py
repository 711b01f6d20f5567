"""Loading the records packs ship (seed/ always, demo/ on request), once each, by their _key."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from crm_platform.engine import system_references
from crm_platform.engine.records.actor import Actor
from crm_platform.engine.records.errors import RecordError
from crm_platform.engine.records.payload import parse_payload
from crm_platform.metadata.model import Registry, SeedRecord, SeedSet

if TYPE_CHECKING:
    from crm_platform.engine.site import Site


class SeedError(Exception):
    """A shipped record that does not load, with the file and line where it is declared."""


@dataclass
class SeedResult:
    created: int = 0
    skipped: int = 0


def entity_order(registry: Registry, sets: Sequence[SeedSet]) -> list[SeedSet]:
    """Seed sets ordered so that referenced entities load first."""
    names = {s.entity for s in sets}
    given: dict[str, set[str]] = {}  # fields the records of each entity actually fill
    for seed in sets:
        for record in seed.records:
            given.setdefault(seed.entity, set()).update(record.values)

    def referenced(entity_name: str, used: set[str] | None) -> set[str]:
        """Entities whose records `entity_name` points at through the fields its records fill
        (all fields of child rows): references left empty make no order, so cycles of optional
        links (lead -> opportunity -> lead) do not stop a load."""
        found: set[str] = set()
        for f in registry.entity(entity_name).fields:
            if used is not None and f.name not in used:
                continue
            if f.type in ("reference", "many_to_many") and f.entity:
                found.add(f.entity)
            elif f.type == "child_table" and f.entity:
                found |= referenced(f.entity, None)
        return found

    deps = {name: {e for e in referenced(name, given.get(name, set())) if e in names and e != name} for name in names}
    ordered: list[str] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in ordered or name in visiting:
            return
        visiting.add(name)
        for dep in sorted(deps[name]):
            visit(dep)
        visiting.discard(name)
        ordered.append(name)

    for name in sorted(names):
        visit(name)
    rank = {name: i for i, name in enumerate(ordered)}
    return sorted(sets, key=lambda s: rank[s.entity])


def load_records(site: Site, kinds: Sequence[str], actor: Actor) -> SeedResult:
    """Insert every shipped record of `kinds` not loaded before, in one transaction."""
    registry = site.registry
    keys_table = site.schema.system["crm_seed_record"]
    result = SeedResult()
    sets = entity_order(registry, [s for s in registry.seeds if s.kind in kinds])
    owners = _owners(site, sets)
    timer_jobs: list[int] = []
    with site.engine.begin() as conn:
        known = {(r.entity, r.key): r.record_id for r in conn.execute(sa.select(keys_table))}
        for seed in sets:
            entity = registry.entity(seed.entity)
            for record in seed.records:
                if (seed.entity, record.key) in known:
                    result.skipped += 1
                    continue
                data = _resolve(registry, seed.entity, record, known)
                try:
                    data = system_references.names_to_ids_in(conn, site.schema.system, entity, data)  # usernames, unit names
                    payload = parse_payload(registry, entity, data)
                    if payload.errors:
                        from crm_platform.engine.records.errors import ValidationFailed

                        raise ValidationFailed(payload.errors)
                    owner = owners.get(record.owner or "", actor) if record.owner else actor
                    record_id = site.records._insert(conn, owner, entity, payload)
                    flow = site.workflows.of(entity.name)
                    if flow is not None:  # the record enters its state: history, approval, timers
                        state = conn.execute(sa.select(site.schema.tables[entity.name].c[flow.field]).where(site.schema.tables[entity.name].c.id == record_id)).scalar()
                        timer_jobs += site.workflows.start(conn, flow, record_id, owner, state)
                except RecordError as exc:
                    details = "; ".join(f"{d.field}: {d.message}" for d in exc.details) or exc.message
                    raise SeedError(f"{record.place}: record '{record.key}' of {seed.entity}: {details}") from exc
                conn.execute(keys_table.insert().values(entity=seed.entity, key=record.key, pack=seed.pack, kind=seed.kind, record_id=record_id))
                known[(seed.entity, record.key)] = record_id
                result.created += 1
    from crm_platform.engine import jobs

    jobs.deliver(site, timer_jobs)
    return result


def _owners(site: Site, sets: Sequence[SeedSet]) -> dict[str, Actor]:
    """The users named as `_owner` of records, as actors (unknown usernames fall back to the loader)."""
    names = {r.owner for s in sets for r in s.records if r.owner}
    result = {}
    for name in names:
        row = site.users.find(name)
        if row is not None:
            actor = site.users.actor(row["id"])
            if actor is not None:
                result[name] = actor
    return result


def _resolve(registry: Registry, entity_name: str, record: SeedRecord, known: dict[tuple[str, str], int]) -> dict[str, Any]:
    """Replace _key references by ids (in child rows too)."""
    entity = registry.entity(entity_name)
    out: dict[str, Any] = {}
    for name, value in record.values.items():
        f = entity.field_map[name]
        if f.type == "reference" and value is not None and not f.system_target:  # users / org units: by name, below
            out[name] = _id(known, f.entity or "", value, record)
        elif f.type == "many_to_many" and isinstance(value, list):
            out[name] = [_id(known, f.entity or "", v, record) for v in value]
        elif f.type == "child_table" and isinstance(value, list):
            child = registry.entity(f.entity or "")
            rows = []
            for row in value:
                rows.append({k: (_id(known, child.field(k).entity or "", v, record) if k in child.field_map and child.field(k).type == "reference" and v is not None else v) for k, v in row.items()} if isinstance(row, dict) else row)
            out[name] = rows
        else:
            out[name] = value
    return out


def _id(known: dict[tuple[str, str], int], entity: str, key: Any, record: SeedRecord) -> int:
    try:
        return known[(entity, str(key))]
    except KeyError:
        raise SeedError(f"{record.place}: record '{record.key}': no {entity} record with _key '{key}' has been loaded") from None
