"""Building the actions that workflow states and reminders share (create a related record,
notify people) from their YAML, with every name checked against the entities and roles."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from crm_platform.metadata.assembly import build_label, did_you_mean, place_of
from crm_platform.metadata.model import Entity
from crm_platform.metadata.workflow_model import CreateAction, NotifyAction, SetAction
from crm_platform.metadata.yaml_source import JsonPath, SourceFile

ProblemSink = Callable[..., None]  # problem(path, message, code="...")

NOT_WRITABLE = ("auto_number", "formula")


def build_create(source: SourceFile, path: JsonPath, spec: dict[str, Any], origin: Entity, entities: dict[str, Entity],
                 problem: ProblemSink) -> CreateAction | None:
    """A `create:` action on records of `origin`; None (and problems) when a name is wrong."""
    target = entities.get(spec["entity"])
    if target is None:
        problem((*path, "entity"), f"create: unknown entity '{spec['entity']}'{did_you_mean(spec['entity'], entities)}", "entity.unknown")
        return None
    if target.child_of:
        problem((*path, "entity"), f"create: {target.name} rows belong to a {target.child_of} and cannot be created on their own")
        return None
    ok = True
    values: list[SetAction] = []
    for name, expression in spec["values"].items():
        f = target.field_map.get(name)
        if f is None:
            problem((*path, "values", name), f"create {target.name}: unknown field '{name}'{did_you_mean(name, target.field_map)}")
            ok = False
        elif f.type in NOT_WRITABLE or f.type in ("child_table", "many_to_many", "file"):
            problem((*path, "values", name), f"create {target.name}: field '{name}' ({f.type}) cannot be set by an action")
            ok = False
        else:
            values.append(SetAction(name, expression, place_of(source, (*path, "values", name))))
    given = set(spec["values"])
    for f in target.fields:
        if f.required and f.name not in given and f.default is None and f.type not in NOT_WRITABLE:
            problem((*path, "values"), f"create {target.name}: required field '{f.name}' is not given a value")
            ok = False
    link = spec.get("link")
    if link is not None:
        f = origin.field_map.get(link)
        if f is None:
            problem((*path, "link"), f"create {target.name}: unknown field '{link}' on {origin.name}{did_you_mean(link, origin.field_map)}")
            ok = False
        elif f.type != "reference" or f.entity != target.name:
            problem((*path, "link"), f"create {target.name}: '{link}' must be a reference field of {origin.name} to {target.name}")
            ok = False
    return CreateAction(target.name, tuple(values), link, place_of(source, path)) if ok else None


def build_notify(source: SourceFile, path: JsonPath, spec: dict[str, Any], role_names: set[str], problem: ProblemSink) -> NotifyAction:
    for k, target in enumerate(spec["to"]):
        if target.startswith("role:") and target[5:] not in role_names:
            problem((*path, "to", k), f"notify: unknown role '{target[5:]}'{did_you_mean(target[5:], role_names)}")
    return NotifyAction(tuple(spec["to"]), build_label(spec["message"], ""), bool(spec.get("email", False)))
