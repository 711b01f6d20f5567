"""Building workflows from pack files and checking them against the entities and roles: the state
field is a picklist, states are its values, transitions go between known states, fields exist."""

from __future__ import annotations

from typing import Any

from crm_platform.metadata.access import Role
from crm_platform.metadata.assembly import build_label, did_you_mean, place_of
from crm_platform.metadata.errors import Problem
from crm_platform.metadata.model import Entity
from crm_platform.metadata.pack_reader import PackFiles
from crm_platform.metadata.action_assembly import build_create, build_notify
from crm_platform.metadata.workflow_extension import MergedSource, merge
from crm_platform.metadata.workflow_model import (
    ApprovalAction,
    ApprovalStep,
    CreateAction,
    NotifyAction,
    SetAction,
    StateTimer,
    Transition,
    Workflow,
    WorkflowState,
)
from crm_platform.metadata.yaml_source import JsonPath, SourceFile


def build_workflows(packs: list[PackFiles], entities: dict[str, Entity], roles: tuple[Role, ...]) -> tuple[tuple[Workflow, ...], list[Problem]]:
    problems: list[Problem] = []
    workflows: dict[str, Workflow] = {}
    by_entity: dict[str, str] = {}
    role_names = {r.name for r in roles}
    definitions: dict[str, SourceFile | MergedSource] = {}  # workflow name -> its (merged) definition
    for pack in packs:
        for source in pack.of("workflows"):
            data = source.data
            if "extends" in data:
                continue
            flow = _build(pack.pack.name, source, data, entities, role_names, problems)
            if flow is None:
                continue
            if flow.name in workflows:
                problems.append(source.problem(("name",), f"workflow '{flow.name}' is already declared at {workflows[flow.name].place}", "workflow.duplicate"))
                continue
            if flow.entity in by_entity:
                problems.append(source.problem(("entity",), f"entity '{flow.entity}' already has the workflow '{by_entity[flow.entity]}'", "workflow.duplicate"))
                continue
            workflows[flow.name] = flow
            by_entity[flow.entity] = flow.name
            definitions[flow.name] = source
    for pack in packs:  # then the extensions, in pack order (dependencies first)
        for source in pack.of("workflows"):
            name = source.data.get("extends")
            if name is None:
                continue
            base = workflows.get(name)
            if base is None:
                problems.append(source.problem(("extends",), f"unknown workflow '{name}'{did_you_mean(name, workflows)}", "workflow.unknown"))
                continue
            if base.pack not in pack_closure(packs, pack.pack.name):
                problems.append(source.problem(("extends",), f"workflow '{name}' belongs to pack '{base.pack}', which {pack.pack.name} does not depend on", "workflow.invalid"))
                continue
            merged = merge(definitions[name], source)
            before = len(problems)
            flow = _build(base.pack, merged, merged.data, entities, role_names, problems)  # type: ignore[arg-type]
            if flow is not None and len(problems) == before:
                workflows[name] = flow
                definitions[name] = merged
    return tuple(workflows.values()), problems


def pack_closure(packs: list[PackFiles], name: str) -> set[str]:
    """The pack `name` and every pack it depends on."""
    by_name = {p.pack.name: p for p in packs}
    seen: set[str] = set()
    todo = [name]
    while todo:
        current = todo.pop()
        if current in seen or current not in by_name:
            continue
        seen.add(current)
        todo.extend(by_name[current].pack.manifest.data.get("depends", []))
    return seen


def _build(pack: str, source: SourceFile, data: dict[str, Any], entities: dict[str, Entity], role_names: set[str], problems: list[Problem]) -> Workflow | None:
    def problem(path: JsonPath, message: str, code: str = "workflow.invalid") -> None:
        problems.append(source.problem(path, f"workflow '{data['name']}': {message}", code))

    entity = entities.get(data["entity"])
    if entity is None:
        problem(("entity",), f"unknown entity '{data['entity']}'{did_you_mean(data['entity'], entities)}", "entity.unknown")
        return None
    state_field = entity.field_map.get(data["field"])
    if state_field is None or state_field.type != "picklist":
        problem(("field",), f"'{data['field']}' must be a picklist field of {entity.name}{did_you_mean(data['field'], entity.field_map) if state_field is None else ''}")
        return None
    values = set(state_field.option_values)
    states: list[WorkflowState] = []
    for i, item in enumerate(data["states"]):
        if item["name"] not in values:
            problem(("states", i, "name"), f"state '{item['name']}' is not a value of {entity.name}.{state_field.name}{did_you_mean(item['name'], values)}")
        approval = None
        notify: list[NotifyAction] = []
        creates: list[CreateAction] = []
        for j, action in enumerate(item.get("on_enter", [])):
            at: JsonPath = ("states", i, "on_enter", j)
            if "approval" in action:
                spec = action["approval"]
                steps = tuple(ApprovalStep(kind, None if kind == "owner_manager" else str(value)) for step in spec["steps"] for kind, value in step.items())
                for k, step in enumerate(steps):
                    if step.kind in ("role", "role_in_unit") and step.value not in role_names:
                        problem((*at, "approval", "steps", k), f"approval '{spec['name']}': unknown role '{step.value}'{did_you_mean(step.value or '', role_names)}")
                if approval is not None:
                    problem((*at, "approval"), f"state '{item['name']}' already starts the approval '{approval.name}'")
                approval = ApprovalAction(spec["name"], build_label(spec["label"], spec["name"]), steps, spec["approve"], spec["reject"], place_of(source, at))
            elif "notify" in action:
                notify.append(build_notify(source, (*at, "notify"), action["notify"], role_names, problem))
            elif "create" in action:
                created = build_create(source, (*at, "create"), action["create"], entity, entities, problem)
                if created is not None:
                    creates.append(created)
        for j, action in enumerate(item.get("on_exit", [])):
            kind = next(iter(action))
            if kind != "set":
                problem(("states", i, "on_exit", j, kind), f"state '{item['name']}': '{kind}' is an action on entering a state (on_enter); on leaving only 'set' is supported")
        states.append(WorkflowState(item["name"], bool(item.get("final", False)),
                                    _actions(source, ("states", i, "on_enter"), item.get("on_enter", []), entity, problem),
                                    _actions(source, ("states", i, "on_exit"), item.get("on_exit", []), entity, problem), approval,
                                    tuple(StateTimer(t["after_minutes"], t["fire"]) for t in item.get("timers", [])),
                                    tuple(item.get("work_list", [])), tuple(notify), tuple(creates)))
        for j, role in enumerate(item.get("work_list", [])):
            if role not in role_names:
                problem(("states", i, "work_list", j), f"state '{item['name']}': unknown role '{role}'{did_you_mean(role, role_names)}")
    names = {s.name for s in states}
    if data["initial"] not in names:
        problem(("initial",), f"initial state '{data['initial']}' is not one of its states{did_you_mean(data['initial'], names)}")
    transitions: list[Transition] = []
    seen: set[str] = set()
    for i, item in enumerate(data["transitions"]):
        path: JsonPath = ("transitions", i)
        if item["name"] in seen:
            problem((*path, "name"), f"transition '{item['name']}' is declared twice")
        seen.add(item["name"])
        for j, state in enumerate(item["from"]):
            if state != "*" and state not in names:
                problem((*path, "from", j), f"transition '{item['name']}': unknown state '{state}'{did_you_mean(state, names)}")
        if item["to"] not in names:
            problem((*path, "to"), f"transition '{item['name']}': unknown state '{item['to']}'{did_you_mean(item['to'], names)}")
        for j, role in enumerate(item.get("roles", [])):
            if role not in role_names:
                problem((*path, "roles", j), f"transition '{item['name']}': unknown role '{role}'{did_you_mean(role, role_names)}")
        for j, name in enumerate(item.get("required", [])):
            if name not in entity.field_map:
                problem((*path, "required", j), f"transition '{item['name']}': unknown field '{name}' on {entity.name}{did_you_mean(name, entity.field_map)}")
        transitions.append(Transition(
            item["name"], build_label(item["label"], item["name"]), tuple(item["from"]), item["to"], place_of(source, path),
            tuple(item.get("roles", [])), tuple(item.get("relations", [])), item.get("guard"),
            place_of(source, (*path, "guard")) if "guard" in item else None,
            build_label(item["guard_message"], "") if "guard_message" in item else None,
            tuple(item.get("required", [])), item.get("comment", "optional"),
        ))
    transition_names = {t.name for t in transitions}
    for i, state in enumerate(states):
        for j, timer in enumerate(state.timers):
            leaving = [t for t in transitions if t.name == timer.fire]
            if not leaving or (state.name not in leaving[0].from_states and "*" not in leaving[0].from_states):
                problem(("states", i, "timers", j, "fire"), f"timer of state '{state.name}': '{timer.fire}' is not a transition leaving that state{did_you_mean(timer.fire, transition_names)}")
        if state.approval is not None:
            for outcome in (state.approval.approve, state.approval.reject):
                if outcome not in transition_names:
                    problem(("states", i, "on_enter"), f"approval '{state.approval.name}': unknown transition '{outcome}'{did_you_mean(outcome, transition_names)}")
    moved: list[tuple[str, str]] = []
    for old, new in (data.get("moved_states") or {}).items():
        if old in names:
            problem(("moved_states", old), f"'{old}' is still one of its states; moved_states maps states the workflow no longer has")
        elif new not in names:
            problem(("moved_states", old), f"records of the retired state '{old}' must move to one of its states, not '{new}'{did_you_mean(new, names)}")
        else:
            moved.append((old, new))
    return Workflow(data["name"], build_label(data["label"], data["name"]), entity.name, state_field.name, data["initial"],
                    tuple(states), tuple(transitions), place_of(source, ()), pack, tuple(moved))


def _actions(source: SourceFile, path: JsonPath, items: list[dict[str, Any]], entity: Entity, problem: Any) -> tuple[SetAction, ...]:
    actions = []
    for i, item in enumerate(items):
        for name, expression in item.get("set", {}).items():
            if name not in entity.field_map:
                problem((*path, i, "set", name), f"cannot set unknown field '{name}' on {entity.name}{did_you_mean(name, entity.field_map)}")
                continue
            actions.append(SetAction(name, expression, place_of(source, (*path, i, "set", name))))
    return tuple(actions)
