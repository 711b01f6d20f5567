"""What a form starts with from the records it names: a new record's references filled from the
record it is created from (a related list's New), and the titles the reference inputs show."""

from __future__ import annotations

from typing import Any

from crm_platform.engine.records.actor import Actor
from crm_platform.engine.records.errors import RecordError
from crm_platform.metadata.model import Entity, Field
from crm_platform.ui.screens.form_input import row_indexes


def prefill_from_parents(site: Any, actor: Actor, entity: Entity, values: dict[str, Any], given: set[str]) -> None:
    """Fill the empty reference fields of a new record from the record it is created from (the
    references in `given`, e.g. ?opportunity=7): New activity on an opportunity gets the
    opportunity's account and contact. The parent's field is the one with the same name and
    target, else its only field pointing at that target. A parent the user may not read gives
    nothing, and a filled record the user may not see is cleared by `reference_titles`."""
    registry = site.registry
    for key in sorted(given):
        ref = entity.field_map[key]
        raw = values.get(key)
        if ref.type != "reference" or ref.entity not in registry.entities or not (isinstance(raw, str) and raw.isdigit()):
            continue
        try:
            parent = site.records.get(actor, ref.entity, int(raw))
        except RecordError:
            continue
        parent_entity = registry.entity(ref.entity)
        for f in entity.fields:
            if f.type != "reference" or f.name in given or values.get(f.name) or f.entity not in registry.entities:
                continue
            source = _parent_field(parent_entity, f)
            if source is not None and isinstance(parent.get(source.name), int):
                values[f.name] = str(parent[source.name])


def _parent_field(parent: Entity, f: Field) -> Field | None:
    same = parent.field_map.get(f.name)
    if same is not None and same.type == "reference" and same.entity == f.entity:
        return same
    candidates = [p for p in parent.fields if p.type == "reference" and p.entity == f.entity]
    return candidates[0] if len(candidates) == 1 else None


def reference_titles(site: Any, actor: Actor, entity: Entity, values: dict[str, Any]) -> dict[str, str]:
    """Titles of the referenced records the form shows, child rows included (an id that no
    longer resolves, or that the user may not see, is cleared)."""
    wanted: list[tuple[str, str]] = [(f.name, f.entity) for f in entity.fields if f.type == "reference" and f.entity and not f.system_target]
    for f in entity.fields:
        if f.type == "child_table" and f.entity:
            child = site.registry.entity(f.entity)
            for index in row_indexes(values, f.name):
                wanted += [(f"{f.name}-{index}-{cf.name}", cf.entity) for cf in child.fields if cf.type == "reference" and cf.entity and not cf.system_target]
    titles = {}
    for key, target_name in wanted:
        value = values.get(key)
        if isinstance(value, str) and value.isdigit():
            try:
                target = site.registry.entity(target_name)
                titles[key] = str(site.records.get(actor, target_name, int(value)).get(target.title_field or "id"))
            except RecordError:
                values[key] = ""
    return titles
