"""Merging two records of an entity (possible duplicates): one survives, the other (the loser) is
soft-deleted, and nothing that belonged to the loser is lost.

In one transaction:
  1. the actor must be allowed to update the survivor and to delete the loser (404/403 as usual),
     and neither may have changed since the merge screen showed them (409);
  2. every record referencing the loser (every reference field of every entity, child rows
     included, deleted records included) is moved to the survivor: version + 1 and a history row
     on each, its formulas recomputed;
  3. N:N links to the loser point at the survivor; the loser's own N:N links are added to the
     survivor's (a union);
  4. attachments, shares (the wider access wins), workflow history (a `_merge` row is added and
     the survivor's timers are set again from now), and seed keys move to the survivor; the
     loser's pending approvals are cancelled;
  5. the loser is soft-deleted with a `merge` history row naming the survivor (`merged_into`);
  6. the survivor takes the values picked from the loser (every other field keeps its own),
     its formulas and roll-ups are recomputed, validations run, and a `merge` history row
     (`merged_from`) is written with the field changes.
The loser's own change history stays with it (it can be restored from the recycle bin, but what
was moved stays with the survivor).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from crm_platform.engine.column_types import utcnow
from crm_platform.engine.records.actor import Actor
from crm_platform.engine.records.errors import BadRequest, Conflict, FieldError, ValidationFailed
from crm_platform.engine.records.history import write_history
from crm_platform.engine.records.list_query import Filter, ListQuery
from crm_platform.metadata import field_types as ft
from crm_platform.metadata.model import Entity, Field
from crm_platform.metadata.values import is_blank

if TYPE_CHECKING:
    from crm_platform.engine.site import Site

MERGE_ACTION = "merge"
MERGE_TRANSITION = "_merge"
_CHUNK = 500


@dataclass
class FieldChoice:
    """One row of the merge screen."""

    field: Field
    survivor: Any
    loser: Any
    mergeable: bool  # False: the survivor's value stays (computed, unique, workflow state, read-only...)

    @property
    def differs(self) -> bool:
        return self.survivor != self.loser


@dataclass
class MergePreview:
    entity: Entity
    survivor: dict[str, Any]
    loser: dict[str, Any]
    fields: list[FieldChoice]
    related: list[tuple[Entity, Field, int]]  # what will move (as far as the actor may read it)
    links: list[tuple[Entity, Field, int]] = field(default_factory=list)
    attachments: int = 0


@dataclass
class MergeResult:
    record: dict[str, Any]
    moved: dict[str, int]  # "contact.account" -> records moved; also "links", "attachments", "shares", "workflow_history"


class MergeService:
    def __init__(self, site: Site) -> None:
        self.site = site

    # -- what may be picked --------------------------------------------------------------------
    def mergeable(self, actor: Actor, entity: Entity) -> list[Field]:
        """The fields whose value may be taken from the loser."""
        restricted = self.site.access.field_access(actor, entity)
        flow = self.site.workflows.of(entity.name)
        computed = {rule.field for rule in self.site.rules.of(entity.name, "formula") if rule.field}
        result = []
        for f in entity.fields:
            kind = ft.FIELD_TYPES[f.type]
            if not kind.stored or not kind.writable or f.unique or f.read_only or f.name in computed:
                continue
            if (flow is not None and f.name == flow.field) or restricted.get(f.name) in ("hidden", "read_only"):
                continue
            result.append(f)
        return result

    def _entity(self, entity_name: str, survivor_id: int, loser_id: int) -> Entity:
        entity = self.site.records.entity(entity_name)
        if entity.child_of:
            raise BadRequest(f"{entity.name} rows are merged with their {entity.child_of}")
        if survivor_id == loser_id:
            raise BadRequest("a record cannot be merged with itself", [FieldError("with", "pick another record", "same_record")])
        return entity

    def preview(self, actor: Actor, entity_name: str, survivor_id: int, loser_id: int) -> MergePreview:
        entity = self._entity(entity_name, survivor_id, loser_id)
        records = self.site.records
        records.check(actor, entity.name, survivor_id, "update")
        records.check(actor, entity.name, loser_id, "delete")
        survivor = records.get(actor, entity.name, survivor_id)
        loser = records.get(actor, entity.name, loser_id)
        hidden = self.site.access.hidden_fields(actor, entity)
        pickable = {f.name for f in self.mergeable(actor, entity)}
        choices = [FieldChoice(f, survivor.get(f.name), loser.get(f.name), f.name in pickable)
                   for f in entity.fields if f.name not in hidden and f.type != "child_table"]
        related = []
        for other, ref in self.site.registry.references_to(entity.name):
            if other.child_of or not self.site.access.can(actor, other, "read") or ref.name in self.site.access.hidden_fields(actor, other):
                continue
            page = records.list(actor, other.name, ListQuery(filters=(Filter(ref.name, "eq", loser_id),), page_size=1))
            if page.total:
                related.append((other, ref, page.total))
        links = []
        with self.site.engine.connect() as conn:
            for source, f in self._links_to(entity):
                junction = self.site.schema.junctions[(source.name, f.name)]
                count = conn.execute(sa.select(sa.func.count()).select_from(junction).where(junction.c.target_id == loser_id)).scalar_one()
                if count:
                    links.append((source, f, count))
            attachments = self.site.schema.system["crm_attachment"]
            attached = conn.execute(sa.select(sa.func.count()).select_from(attachments).where(attachments.c.entity == entity.name, attachments.c.record_id == loser_id)).scalar_one()
        return MergePreview(entity, survivor, loser, choices, related, links, attached)

    def _links_to(self, entity: Entity) -> list[tuple[Entity, Field]]:
        return [(e, f) for e in self.site.registry.entities.values() for f in e.fields if f.type == "many_to_many" and f.entity == entity.name]

    # -- the merge -----------------------------------------------------------------------------
    def merge(self, actor: Actor, entity_name: str, survivor_id: int, loser_id: int, take: Iterable[str] = (),
              survivor_version: int | None = None, loser_version: int | None = None) -> MergeResult:
        """Merge `loser_id` into `survivor_id`; `take` names the fields whose value comes from the loser."""
        entity = self._entity(entity_name, survivor_id, loser_id)
        site = self.site
        records = site.records
        table = site.schema.tables[entity.name]
        pickable = {f.name: f for f in self.mergeable(actor, entity)}
        take = list(dict.fromkeys(take))
        unknown = [name for name in take if name not in pickable]
        if unknown:
            raise BadRequest(f"cannot take {', '.join(unknown)} from the other record: not a field that can be merged",
                             [FieldError(name, "not a field that can be merged", "not_mergeable") for name in unknown])
        moved: dict[str, int] = {}
        timer_jobs: list[int] = []
        with site.engine.begin() as conn:
            survivor_row = records._visible(conn, actor, entity, survivor_id, "update")
            loser_row = records._visible(conn, actor, entity, loser_id, "delete")
            for row, version, which in ((survivor_row, survivor_version, "survivor"), (loser_row, loser_version, "loser")):
                if version is not None and row["version"] != version:
                    raise Conflict(f"{entity.name} {row['id']} changed since the merge was prepared (version {version}, now {row['version']}): review it again",
                                   [FieldError(which, "changed since the merge was prepared", "conflict", {"current": row["version"], "yours": version})])
            values: dict[str, Any] = {}
            for name in take:
                values[name] = loser_row[name]
                if pickable[name].type == "money":
                    values[f"{name}_currency"] = loser_row[f"{name}_currency"]
            site.access.check_writes(actor, entity, list(values))
            now = utcnow()
            titles = {survivor_id: _title(entity, survivor_row), loser_id: _title(entity, loser_row)}
            moved.update(self._move_references(conn, actor, entity, survivor_id, loser_id, now))
            link_changes = self._move_links(conn, actor, entity, survivor_id, loser_id, now, moved)
            moved.update(self._move_system_rows(conn, entity, survivor_id, loser_id))
            timer_jobs = self._move_workflow(conn, actor, entity, survivor_id, loser_id, titles, now, moved)
            self._delete_loser(conn, actor, entity, table, survivor_id, loser_id, titles, now)
            self._update_survivor(conn, actor, entity, table, survivor_id, loser_id, values, link_changes, titles, now)
            record = records._get(conn, actor, entity, survivor_id)
        if timer_jobs:
            from crm_platform.engine import jobs

            jobs.deliver(site, timer_jobs)
        return MergeResult(record, moved)

    def _move_references(self, conn: sa.Connection, actor: Actor, entity: Entity, survivor_id: int, loser_id: int, now: Any) -> dict[str, int]:
        site = self.site
        history = site.schema.system["crm_history"]
        hooks = site.records.hooks
        moved: dict[str, int] = {}
        for other, ref in site.registry.references_to(entity.name):
            t = site.schema.tables[other.name]
            query = sa.select(t).where(t.c[ref.name] == loser_id)
            if other.name == entity.name:
                query = query.where(t.c.id.notin_([survivor_id, loser_id]))  # the survivor's own reference is fixed with its values
            rows = [dict(r) for r in conn.execute(query.order_by(t.c.id)).mappings()]
            if not rows:
                continue
            has_formulas = bool(site.rules.formula_fields.get(other.name)) or bool(site.rules.of(other.name, "formula"))
            if not has_formulas:
                for start in range(0, len(rows), _CHUNK):
                    ids = [r["id"] for r in rows[start:start + _CHUNK]]
                    conn.execute(t.update().where(t.c.id.in_(ids)).values({ref.name: survivor_id, "version": t.c.version + 1, "updated_at": now, "updated_by": actor.user_id}))
                for r in rows:
                    write_history(conn, history, other.name, r["id"], r["version"] + 1, "update", {ref.name: (loser_id, survivor_id)}, actor.user_id, now)
            else:
                for r in rows:
                    after = {**r, ref.name: survivor_id}
                    computed, errors = hooks.compute_formulas(conn, actor, other, after, r)
                    changed = {} if errors else {k: v for k, v in computed.items() if r.get(k) != v}
                    conn.execute(t.update().where(t.c.id == r["id"]).values({ref.name: survivor_id, **changed, "version": r["version"] + 1, "updated_at": now, "updated_by": actor.user_id}))
                    changes = {ref.name: (loser_id, survivor_id), **{k: (r.get(k), v) for k, v in changed.items()}}
                    write_history(conn, history, other.name, r["id"], r["version"] + 1, "update", changes, actor.user_id, now)
            moved[f"{other.name}.{ref.name}"] = len(rows)
        return moved

    def _move_links(self, conn: sa.Connection, actor: Actor, entity: Entity, survivor_id: int, loser_id: int, now: Any,
                    moved: dict[str, int]) -> dict[str, tuple[list[int], list[int]]]:
        """N:N links to the loser now point at the survivor; returns the survivor's own link changes
        (its links united with the loser's) for its history."""
        site = self.site
        history = site.schema.system["crm_history"]
        own: dict[str, tuple[list[int], list[int]]] = {}
        count = 0
        for source, f in self._links_to(entity):
            junction = site.schema.junctions[(source.name, f.name)]
            source_table = site.schema.tables[source.name]
            sources = list(conn.execute(sa.select(junction.c.source_id).where(junction.c.target_id == loser_id).order_by(junction.c.source_id)).scalars())
            for source_id in sources:
                if source.name == entity.name and source_id == loser_id:
                    continue  # the loser's own links (it is deleted): left as they are
                old = sorted(conn.execute(sa.select(junction.c.target_id).where(junction.c.source_id == source_id)).scalars())
                self_link = source.name == entity.name and source_id == survivor_id
                new = sorted((set(old) - {loser_id}) | (set() if self_link else {survivor_id}))
                conn.execute(junction.delete().where(junction.c.source_id == source_id, junction.c.target_id == loser_id))
                if not self_link and survivor_id not in old:
                    conn.execute(junction.insert().values(source_id=source_id, target_id=survivor_id))
                count += 1
                if self_link:
                    own[f.name] = (old, new)
                    continue
                version = conn.execute(sa.select(source_table.c.version).where(source_table.c.id == source_id)).scalar_one()
                conn.execute(source_table.update().where(source_table.c.id == source_id).values(version=version + 1, updated_at=now, updated_by=actor.user_id))
                write_history(conn, history, source.name, source_id, version + 1, "update", {f.name: (old, new)}, actor.user_id, now)
        for f in entity.fields:
            if f.type != "many_to_many":
                continue
            junction = site.schema.junctions[(entity.name, f.name)]
            mine = set(conn.execute(sa.select(junction.c.target_id).where(junction.c.source_id == survivor_id)).scalars())
            if f.name in own:
                mine = set(own[f.name][1])
            theirs = set(conn.execute(sa.select(junction.c.target_id).where(junction.c.source_id == loser_id)).scalars())
            added = theirs - mine - ({survivor_id, loser_id} if f.entity == entity.name else set())
            if added:
                conn.execute(junction.insert(), [{"source_id": survivor_id, "target_id": target} for target in sorted(added)])
                count += len(added)
                before = own[f.name][0] if f.name in own else sorted(mine)
                own[f.name] = (before, sorted(mine | added))
        if count:
            moved["links"] = count
        return own

    def _move_system_rows(self, conn: sa.Connection, entity: Entity, survivor_id: int, loser_id: int) -> dict[str, int]:
        system = self.site.schema.system
        moved: dict[str, int] = {}
        attachments = system["crm_attachment"]
        done = conn.execute(attachments.update().where(attachments.c.entity == entity.name, attachments.c.record_id == loser_id).values(record_id=survivor_id)).rowcount
        if done:
            moved["attachments"] = done
        shares = system["crm_share"]
        theirs = conn.execute(sa.select(shares).where(shares.c.entity == entity.name, shares.c.record_id == loser_id)).mappings().all()
        mine = {(s["user_id"], s["unit_id"]): s for s in conn.execute(sa.select(shares).where(shares.c.entity == entity.name, shares.c.record_id == survivor_id)).mappings()}
        for share in theirs:
            existing = mine.get((share["user_id"], share["unit_id"]))
            if existing is None:
                conn.execute(shares.update().where(shares.c.id == share["id"]).values(record_id=survivor_id))
            else:
                if share["access"] == "edit" and existing["access"] != "edit":
                    conn.execute(shares.update().where(shares.c.id == existing["id"]).values(access="edit"))
                conn.execute(shares.delete().where(shares.c.id == share["id"]))
        if theirs:
            moved["shares"] = len(theirs)
        seeds = system["crm_seed_record"]
        conn.execute(seeds.update().where(seeds.c.entity == entity.name, seeds.c.record_id == loser_id).values(record_id=survivor_id))
        return moved

    def _move_workflow(self, conn: sa.Connection, actor: Actor, entity: Entity, survivor_id: int, loser_id: int,
                       titles: dict[int, str], now: Any, moved: dict[str, int]) -> list[int]:
        """The loser's workflow history moves to the survivor, then a `_merge` row (in the
        survivor's state) ends it, so timers count from the merge; pending approvals of the loser
        are cancelled. Returns the timer jobs to deliver after the commit."""
        site = self.site
        history = site.schema.system["crm_workflow_history"]
        done = conn.execute(history.update().where(history.c.entity == entity.name, history.c.record_id == loser_id).values(record_id=survivor_id)).rowcount
        if done:
            moved["workflow_history"] = done
        site.approvals.cancel_pending(conn, entity.name, loser_id)
        flow = site.workflows.of(entity.name)
        if flow is None:
            return []
        state = conn.execute(sa.select(site.schema.tables[entity.name].c[flow.field]).where(site.schema.tables[entity.name].c.id == survivor_id)).scalar()
        if state is None:
            return []
        history_id = conn.execute(history.insert().values(
            entity=entity.name, record_id=survivor_id, workflow=flow.name, transition=MERGE_TRANSITION, from_state=state, to_state=state,
            comment=f"merged {entity.name} {loser_id} ({titles[loser_id]}) into this record", changed_by=actor.user_id, changed_at=now,
        ).returning(history.c.id)).scalar_one()
        from crm_platform.engine.workflow_jobs import schedule_timers

        return schedule_timers(site, conn, entity.name, survivor_id, state, history_id)

    def _delete_loser(self, conn: sa.Connection, actor: Actor, entity: Entity, table: sa.Table, survivor_id: int, loser_id: int,
                      titles: dict[int, str], now: Any) -> None:
        row = dict(conn.execute(sa.select(table).where(table.c.id == loser_id)).mappings().one())
        version = row["version"] + 1
        conn.execute(table.update().where(table.c.id == loser_id).values(deleted_at=now, version=version, updated_at=now, updated_by=actor.user_id))
        write_history(conn, self.site.schema.system["crm_history"], entity.name, loser_id, version, MERGE_ACTION,
                      {"merged_into": (None, {"id": survivor_id, "title": titles[survivor_id]})}, actor.user_id, now)
        self.site.records.hooks.propagate(conn, actor, entity, row, None)

    def _update_survivor(self, conn: sa.Connection, actor: Actor, entity: Entity, table: sa.Table, survivor_id: int, loser_id: int,
                         values: dict[str, Any], link_changes: dict[str, tuple[list[int], list[int]]], titles: dict[int, str], now: Any) -> None:
        hooks = self.site.records.hooks
        prior = dict(conn.execute(sa.select(table).where(table.c.id == survivor_id)).mappings().one())
        for f in entity.fields:  # a reference to itself or to the deleted loser is cleared
            if f.type == "reference" and f.entity == entity.name and values.get(f.name, prior.get(f.name)) in (survivor_id, loser_id):
                values[f.name] = None
        merged = {**prior, **values}
        computed, errors = hooks.compute_formulas(conn, actor, entity, merged, prior)
        merged.update(computed)
        for name in values:
            picked = entity.field_map.get(name)
            if picked is not None and picked.required and is_blank(merged.get(name)):
                errors.append(FieldError(name, f"{picked.label.en} is required", "required"))
        if not errors:
            errors += hooks.check(conn, actor, entity, merged, prior, set(values))
        if errors:
            raise ValidationFailed(errors)
        changes: dict[str, tuple[Any, Any]] = {k: (prior.get(k), merged.get(k)) for k in {*values, *computed} if prior.get(k) != merged.get(k)}
        version = prior["version"] + 1
        conn.execute(table.update().where(table.c.id == survivor_id).values(
            **{k: merged[k] for k in changes}, version=version, updated_at=now, updated_by=actor.user_id))
        history = self.site.schema.system["crm_history"]
        write_history(conn, history, entity.name, survivor_id, version, MERGE_ACTION,
                      {"merged_from": (None, {"id": loser_id, "title": titles[loser_id]})}, actor.user_id, now)
        field_changes = {**changes, **link_changes}
        if field_changes:
            write_history(conn, history, entity.name, survivor_id, version, "update", field_changes, actor.user_id, now)
        hooks.propagate(conn, actor, entity, prior, merged)


def _title(entity: Entity, row: Any) -> str:
    value = row[entity.title_field] if entity.title_field and entity.title_field in row else None
    return str(value) if value not in (None, "") else f"#{row['id']}"
