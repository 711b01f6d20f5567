"""Names against the Registry: fields, paths across references, system columns, relations.

Every failure comes back as a message with the index of the path segment it is about, and a
"did you mean" suggestion where a name is close to a real one.
"""

from __future__ import annotations

from dataclasses import dataclass

from crm_platform.metadata.errors import did_you_mean
from crm_platform.metadata.model import Entity, Registry
from crm_platform.rules import types as t
from crm_platform.rules.context import Relation
from crm_platform.rules.types import RuleType


@dataclass(frozen=True)
class Step:
    """One hop of a path: `field` of `entity`, whose value has type `type`."""

    entity: str
    field: str
    type: RuleType


class NameProblem(Exception):
    """A name that does not resolve; `index` is the path segment it is about."""

    def __init__(self, index: int, message: str) -> None:
        super().__init__(message)
        self.index = index
        self.message = message


def system_fields(entity: Entity) -> dict[str, RuleType]:
    """The system columns a rule may read (see the engine's entity tables)."""
    fields = {
        "id": t.reference(entity.name),
        "created_at": t.DATETIME,
        "updated_at": t.DATETIME,
        "created_by": t.reference(t.USER_ENTITY),
        "updated_by": t.reference(t.USER_ENTITY),
    }
    if entity.owned:
        fields["owner_id"] = t.reference(t.USER_ENTITY)
        fields["unit_id"] = t.reference(t.UNIT_ENTITY)
    if entity.child_of:
        fields["parent_id"] = t.reference(entity.child_of)
    else:
        fields["state"] = t.TEXT
    return fields


def field_names(entity: Entity) -> list[str]:
    return [*entity.field_map, *system_fields(entity)]


def field_of(registry: Registry, entity_name: str, name: str) -> RuleType:
    """The type of `entity.name`. Raises NameProblem (index 0)."""
    entity = registry.entities[entity_name]
    if name in entity.field_map:
        return t.field_type(entity.name, entity.field_map[name])
    system = system_fields(entity)
    if name in system:
        return system[name]
    raise NameProblem(
        0, f"unknown field '{name}' on {entity.name}{did_you_mean(name, field_names(entity))}"
    )


def resolve_path(registry: Registry, entity_name: str, path: tuple[str, ...]) -> list[Step]:
    """The hops of `path` from `entity_name`. Raises NameProblem."""
    steps: list[Step] = []
    current = entity_name
    for index, name in enumerate(path):
        try:
            field_type = field_of(registry, current, name)
        except NameProblem as problem:
            raise NameProblem(index, problem.message) from None
        steps.append(Step(current, name, field_type))
        last = index == len(path) - 1
        if field_type.kind == "relation":
            if last:
                raise NameProblem(
                    index,
                    f"'{name}' holds the {field_type.entity} rows of {current}: "
                    f"use count({name}) or sum({name}.field)",
                )
            raise NameProblem(
                index,
                f"'{name}' holds several {field_type.entity} rows: "
                f"use sum({name}.{path[index + 1]}), min(...) or max(...)",
            )
        if last:
            break
        if field_type.kind != "reference":
            raise NameProblem(
                index + 1,
                f"'{name}' is a {field_type} field of {current}, not a reference: "
                f"it has no field '{path[index + 1]}'",
            )
        if field_type.entity not in registry.entities:
            raise NameProblem(
                index + 1,
                f"'{name}' refers to a {_system_name(field_type.entity)}, "
                "whose fields rules cannot read",
            )
        current = field_type.entity or ""
    return steps


def _system_name(entity: str | None) -> str:
    return {t.USER_ENTITY: "user", t.UNIT_ENTITY: "org unit", t.FILE_ENTITY: "file"}.get(
        entity or "", entity or "record"
    )


def relations_of(registry: Registry, entity: Entity) -> dict[str, Relation]:
    """The child relations a roll-up may name: child tables, N:N links, and entities that
    refer to this one through exactly one reference field (reverse references)."""
    found: dict[str, Relation] = {}
    for other, ref in registry.references_to(entity.name):
        if other.name in found:
            found[other.name] = Relation("ambiguous", other.name, "", other.name)
        else:
            found[other.name] = Relation("reverse", other.name, ref.name, other.name)
    for field in entity.fields:
        if field.type == "child_table" and field.entity:
            found[field.name] = Relation("child", field.entity, field.name, field.name)
        elif field.type == "many_to_many" and field.entity:
            found[field.name] = Relation("many", field.entity, field.name, field.name)
    return found


def resolve_relation(registry: Registry, entity_name: str, name: str) -> Relation:
    """The relation called `name` on `entity_name`. Raises NameProblem."""
    entity = registry.entities[entity_name]
    relations = relations_of(registry, entity)
    relation = relations.get(name)
    if relation is None:
        listed = ", ".join(sorted(relations)) or "none"
        hint = did_you_mean(name, relations)
        raise NameProblem(
            0, f"'{name}' is not a child relation of {entity_name}{hint} (its relations: {listed})"
        )
    if relation.kind == "ambiguous":
        refs = [f.name for e, f in registry.references_to(entity_name) if e.name == name]
        raise NameProblem(
            0,
            f"{name} refers to {entity_name} through several fields ({', '.join(refs)}); "
            f"add a child table or N:N field to {entity_name} to roll up",
        )
    return relation


def entity_named(registry: Registry, name: str) -> Entity:
    """The entity called `name`. Raises NameProblem."""
    if name in registry.entities:
        return registry.entities[name]
    raise NameProblem(0, f"unknown entity '{name}'{did_you_mean(name, registry.entities)}")
