"""The workflow designer's draft: the data of one layer file (a full workflow, or `extends:` a
pack's) and every change the editor makes to it, each checked so a bad change is refused with a
clear message and leaves the draft as it was. Pure functions: no request, no database."""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Any

from crm_platform.metadata.model import Registry
from crm_platform.rules.errors import RuleError
from crm_platform.ui.screens.design_flows import NAME, error_rows, expression_errors, label_of

STATE = re.compile(r"^[a-z0-9][a-z0-9_]{0,63}$")


# -- the workflow draft ---------------------------------------------------------------------------

class EditRefused(Exception):
    """A change the draft does not take: `message` says why; `pending` keeps what was typed."""

    def __init__(self, message: str, pending: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.pending = pending or {}


@dataclass
class Draft:
    """One layer file of a workflow being edited: `data` is the file's content; `values` are
    picklist values ({value, label}) the layer adds for new states."""

    name: str
    file: str
    data: dict[str, Any]
    values: list[dict[str, Any]] = dc_field(default_factory=list)

    @property
    def extends(self) -> bool:
        return "extends" in self.data

    def merged(self, base: dict[str, dict[str, Any]]) -> dict[str, Any]:
        """The workflow as it will be: the file itself, or the pack's workflow with the extension."""
        if not self.extends:
            return self.data
        return merge_flow(base.get(self.name) or {"name": self.name}, self.data)

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "file": self.file, "data": self.data, "values": self.values}


def merge_flow(base: dict[str, Any], extension: dict[str, Any]) -> dict[str, Any]:
    """A workflow with an extension's states and transitions (same name: replaced), as the loader merges."""
    out = copy.deepcopy(base)
    for section in ("states", "transitions"):
        items = list(out.get(section) or [])
        for item in extension.get(section) or []:
            index = next((i for i, e in enumerate(items) if e.get("name") == item.get("name")), None)
            if index is None:
                items.append(copy.deepcopy(item))
            else:
                items[index] = copy.deepcopy(item)
        out[section] = items
    if "moved_states" in extension:
        out["moved_states"] = {**(out.get("moved_states") or {}), **extension["moved_states"]}
    if "initial" in extension:
        out["initial"] = extension["initial"]
    return out


def _first(errors: list[RuleError]) -> str:
    return f"{errors[0].line}:{errors[0].column}: {errors[0].message}" + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else "")


def _role_names(registry: Registry) -> list[str]:
    return [r.name for r in registry.extra.get("roles", ())]


def new_workflow(registry: Registry, taken: set[str], values: dict[str, Any]) -> Draft:
    """A draft for a new workflow over entity.field (`target`) with the chosen picklist values as states."""
    name = values["name"]
    if not NAME.match(name):
        raise EditRefused("name the workflow with lowercase letters, digits and _ (at most 28 characters), e.g. deal_stages")
    flows = registry.extra.get("workflows", ())
    if name in taken or any(f.name == name for f in flows):
        raise EditRefused(f"a workflow named '{name}' exists already; choose another name")
    entity_name, _, field_name = str(values["target"]).partition(".")
    entity = registry.entities.get(entity_name)
    picklist = entity.field_map.get(field_name) if entity else None
    if entity is None or picklist is None or picklist.type != "picklist":
        raise EditRefused("choose the object and the picklist field that holds the state")
    owner = next((f.name for f in flows if f.entity == entity.name), None)
    if owner:
        raise EditRefused(f"{entity.name} already has the workflow '{owner}': change that one instead")
    states = [v for v in picklist.option_values if v in values["states"]]
    unknown = [v for v in values["states"] if v not in picklist.option_values]
    if unknown or not states:
        raise EditRefused(f"states are values of {entity.name}.{picklist.name}: choose one or more of {', '.join(picklist.option_values)}")
    if values["initial"] not in states:
        raise EditRefused(f"the initial state must be one of the chosen states ({', '.join(states)})")
    data = {"name": name, "label": label_of(values, "label", name), "entity": entity.name, "field": picklist.name, "initial": values["initial"],
            "states": [{"name": s} for s in states], "transitions": []}
    return Draft(name, f"workflows/{name}.yaml", data)


def apply_edit(registry: Registry, draft: Draft, base: dict[str, dict[str, Any]], op: str, form: Any) -> Draft:
    """The draft after one change `op` with the inputs of `form`; raises EditRefused (draft untouched)."""
    changed = Draft(draft.name, draft.file, copy.deepcopy(draft.data), copy.deepcopy(draft.values))
    flow = changed.merged(base)
    entity = registry.entities.get(flow.get("entity", ""))
    if entity is None:
        raise EditRefused(f"the workflow's object '{flow.get('entity')}' does not exist")
    editor = _Editor(registry, changed, base, flow, entity, form)
    handler = getattr(editor, f"op_{op}", None)
    if handler is None:
        raise EditRefused(f"unknown change '{op}'")
    handler()
    return changed


class _Editor:
    def __init__(self, registry: Registry, draft: Draft, base: dict[str, dict[str, Any]], flow: dict[str, Any], entity: Any, form: Any) -> None:
        self.registry, self.draft, self.base, self.flow, self.entity, self.form = registry, draft, base, flow, entity, form
        self.states = [s["name"] for s in flow.get("states", [])]
        self.transitions = {t["name"]: t for t in flow.get("transitions", [])}

    def text(self, key: str) -> str:
        return str(self.form.get(key) or "").strip()

    def rows(self, prefix: str, *keys: str) -> list[tuple[str, ...]]:
        try:
            count = min(int(self.form.get(f"{prefix}_rows") or 0), 50)
        except ValueError:
            count = 0
        found = [tuple(self.text(f"{prefix}_{key}_{i}") for key in keys) for i in range(count)]
        return [row for row in found if any(row)]

    def entry(self, section: str, name: str) -> dict[str, Any]:
        """The draft's own entry `name` of `section` (an extension copies the pack's first)."""
        items = self.draft.data.setdefault(section, [])
        for item in items:
            if item.get("name") == name:
                return item
        current = next((e for e in self.flow.get(section, []) if e.get("name") == name), None)
        if current is None or not self.draft.extends:
            raise EditRefused(f"there is no {section[:-1]} '{name}' in this workflow")
        items.append(copy.deepcopy(current))
        return items[-1]

    def own(self, section: str, name: str) -> list[dict[str, Any]]:
        """The draft's list holding `name`; a pack's entry the extension does not change cannot be removed."""
        items = self.draft.data.get(section) or []
        if any(e.get("name") == name for e in items):
            return items
        if any(e.get("name") == name for e in self.flow.get(section, [])):
            raise EditRefused(f"'{name}' belongs to the pack's workflow: the layer can add and replace states and transitions but not remove them "
                              f"(the pack format has no removal); restrict who may fire it or give it a guard instead")
        raise EditRefused(f"there is no {section[:-1]} '{name}' in this workflow")

    def op_initial(self) -> None:
        value = self.text("initial")
        if value not in self.states:
            raise EditRefused(f"the initial state must be one of its states ({', '.join(self.states)})")
        self.draft.data["initial"] = value

    def op_label(self) -> None:
        if self.draft.extends:
            raise EditRefused("an extension cannot rename the pack's workflow")
        self.draft.data["label"] = label_of(self.form, "label", self.draft.name)

    def op_state_add(self) -> None:
        value = self.text("value") or self.text("new_value")
        picklist = self.entity.field_map[self.flow["field"]]
        if not STATE.match(value):
            raise EditRefused("a state is a picklist value: lowercase letters, digits and _ (e.g. on_hold)")
        if value in self.states:
            raise EditRefused(f"'{value}' is a state already")
        if value not in picklist.option_values and not any(v["value"] == value for v in self.draft.values):
            if not self.text("new_label_en"):
                raise EditRefused(f"'{value}' is not a value of {self.entity.name}.{picklist.name} yet: give its label to add it to the picklist")
            self.draft.values.append({"value": value, "label": label_of(self.form, "new_label", value)})
        item: dict[str, Any] = {"name": value}
        if self.form.get("final"):
            item["final"] = True
        self.draft.data.setdefault("states", []).append(item)

    def op_state_remove(self) -> None:
        name = self.text("state")
        items = self.own("states", name)
        in_pack = any(e.get("name") == name for e in (self.base.get(self.draft.name) or {}).get("states", [])) if self.draft.extends else False
        if not in_pack:
            users = [t["name"] for t in self.transitions.values() if name == t.get("to") or name in (t.get("from") or [])]
            if users or self.flow.get("initial") == name:
                raise EditRefused(f"state '{name}' is still used by {'the initial state and ' if self.flow.get('initial') == name else ''}"
                                  f"{'transitions ' + ', '.join(users) if users else 'the workflow'}: change those first")
            self.draft.values = [v for v in self.draft.values if v["value"] != name]
            move_to = self.text("move_to")
            if move_to:  # records still in the state move there when the change is applied
                if move_to == name or move_to not in self.states:
                    raise EditRefused(f"records of '{name}' move to another of its states ({', '.join(s for s in self.states if s != name)}), not '{move_to}'")
                self.draft.data.setdefault("moved_states", {})[name] = move_to
        self.draft.data["states"] = [e for e in items if e.get("name") != name]

    def op_state_save(self) -> None:
        name = self.text("state")
        pending = {"kind": "state", "key": name}
        roles = _role_names(self.registry)
        work_list = [str(r) for r in self.form.getlist("work_list")]
        unknown = [r for r in work_list if r not in roles]
        if unknown:
            raise EditRefused(f"state '{name}': unknown role {', '.join(unknown)}; roles are {', '.join(roles)}", pending)
        leaving = [t for t, spec in self.transitions.items() if name in (spec.get("from") or []) or "*" in (spec.get("from") or [])]
        timers = []
        for minutes, fire in self.rows("timer", "minutes", "fire"):
            if not minutes.isdigit() or int(minutes) < 1:
                raise EditRefused(f"state '{name}': a timer waits a whole number of minutes (1 or more), not '{minutes}'", pending)
            if fire not in leaving:
                raise EditRefused(f"state '{name}': a timer fires a transition leaving the state ({', '.join(leaving) or 'none yet'}), not '{fire}'", pending)
            timers.append({"after_minutes": int(minutes), "fire": fire})
        sets: dict[str, str] = {}
        for target, expression in self.rows("set", "field", "expr"):
            if target not in self.entity.field_map:
                raise EditRefused(f"state '{name}': cannot set unknown field '{target}' on {self.entity.name}", pending)
            errors = expression_errors(self.registry, self.entity.name, expression, "formula", target)
            if errors:
                raise EditRefused(f"state '{name}': the value of {target} does not check: {_first(errors)}", {**pending, "errors": error_rows(errors)})
            sets[target] = expression
        approval = self._approval(name, pending)
        item = self.entry("states", name)
        kept = [a for a in item.get("on_enter") or [] if "set" not in a and "approval" not in a]
        on_enter = ([{"set": sets}] if sets else []) + ([{"approval": approval}] if approval else []) + kept
        for key, value in (("final", bool(self.form.get("final"))), ("work_list", work_list), ("timers", timers), ("on_enter", on_enter)):
            if value:
                item[key] = value
            else:
                item.pop(key, None)

    def _approval(self, state: str, pending: dict[str, Any]) -> dict[str, Any] | None:
        name = self.text("approval_name")
        if not name:
            return None
        if not NAME.match(name):
            raise EditRefused(f"state '{state}': name the approval with lowercase letters, digits and _", pending)
        roles = _role_names(self.registry)
        steps: list[dict[str, Any]] = []
        for kind, value in self.rows("step", "kind", "value"):
            if kind == "owner_manager":
                steps.append({"owner_manager": True})
            elif kind in ("role", "role_in_unit"):
                if value not in roles:
                    raise EditRefused(f"approval '{name}': unknown role '{value}'; roles are {', '.join(roles)}", pending)
                steps.append({kind: value})
            elif kind == "user" and value:
                steps.append({"user": value})
            else:
                raise EditRefused(f"approval '{name}': a step is decided by a role, a role in the record's unit, the owner's manager or a named user", pending)
        if not steps:
            raise EditRefused(f"approval '{name}' needs at least one step", pending)
        outcomes = {key: self.text(f"approval_{key}") for key in ("approve", "reject")}
        for key, transition in outcomes.items():
            if transition not in self.transitions:
                raise EditRefused(f"approval '{name}': '{key}' fires a transition of this workflow ({', '.join(self.transitions) or 'none yet'}), not '{transition}'", pending)
        return {"name": name, "label": label_of(self.form, "approval_label", name), "steps": steps, **outcomes}

    def op_transition_save(self) -> None:
        original = self.text("transition")
        name = original or self.text("name")
        data: dict[str, Any] = {"name": name, "label": label_of(self.form, "label", name), "from": [str(s) for s in self.form.getlist("from")], "to": self.text("to"),
                "roles": [str(r) for r in self.form.getlist("roles")], "relations": [str(r) for r in self.form.getlist("relations")],
                "guard": self.text("guard"), "guard_message": label_of(self.form, "guard_message", "") if self.text("guard_message_en") else None,
                "required": [f.strip() for f in self.text("required").replace(";", ",").split(",") if f.strip()],
                "comment": self.text("comment") or "optional"}
        pending = {"kind": "transition", "key": original, "data": data}
        if not NAME.match(name):
            raise EditRefused("name the transition with lowercase letters, digits and _ (e.g. put_on_hold)", pending)
        if not original and name in self.transitions:
            raise EditRefused(f"transition '{name}' exists already: change it below, or choose another name", pending)
        states = ", ".join(self.states)
        if not data["from"]:
            raise EditRefused(f"transition '{name}': choose the states it leaves from ({states}, or * for any)", pending)
        for state in [*data["from"], data["to"]]:
            if state != "*" and state not in self.states or (state == "*" and state == data["to"]):
                raise EditRefused(f"transition '{name}': '{state}' is not a state of this workflow (its states: {states}); add the state first", pending)
        roles = _role_names(self.registry)
        for role in data["roles"]:
            if role not in roles:
                raise EditRefused(f"transition '{name}': unknown role '{role}'; roles are {', '.join(roles)}", pending)
        if set(data["relations"]) - {"owner", "owner_manager"}:
            raise EditRefused(f"transition '{name}': relations are owner and owner_manager", pending)
        for required in data["required"]:
            if required not in self.entity.field_map:
                raise EditRefused(f"transition '{name}': unknown field '{required}' on {self.entity.name} in the required fields", pending)
        if data["comment"] not in ("optional", "required"):
            raise EditRefused(f"transition '{name}': a comment is optional or required", pending)
        if data["guard"]:
            errors = expression_errors(self.registry, self.entity.name, data["guard"], "condition")
            if errors:
                raise EditRefused(f"transition '{name}': the guard does not check: {_first(errors)}", {**pending, "errors": error_rows(errors)})
        clean = {k: v for k, v in data.items() if v and not (k == "comment" and v == "optional")}
        clean.setdefault("from", data["from"])
        items = self.draft.data.setdefault("transitions", [])
        index = next((i for i, e in enumerate(items) if e.get("name") == name), None)
        if index is None:
            items.append(clean)
        else:
            items[index] = clean

    def op_transition_remove(self) -> None:
        name = self.text("transition")
        items = self.own("transitions", name)
        in_pack = self.draft.extends and any(e.get("name") == name for e in (self.base.get(self.draft.name) or {}).get("transitions", []))
        if not in_pack:
            users = [f"the timer of {s['name']}" for s in self.flow.get("states", []) for t in s.get("timers") or [] if t.get("fire") == name]
            users += [f"the approval of {s['name']}" for s in self.flow.get("states", []) for a in s.get("on_enter") or []
                      if "approval" in a and name in (a["approval"].get("approve"), a["approval"].get("reject"))]
            if users:
                raise EditRefused(f"transition '{name}' is fired by {', '.join(users)}: change that first")
        self.draft.data["transitions"] = [e for e in items if e.get("name") != name]
