"""Workflow metadata: a state machine over a picklist field, its transitions (who, guard,
required fields) and actions on entering or leaving a state. Plain data."""

from __future__ import annotations

from dataclasses import dataclass

from crm_platform.metadata.model import Label, Place


@dataclass(frozen=True)
class SetAction:
    field: str
    expression: str
    place: Place


@dataclass(frozen=True)
class ApprovalStep:
    kind: str  # role | role_in_unit | owner_manager | user
    value: str | None = None


@dataclass(frozen=True)
class ApprovalAction:
    """Start an approval on entering a state; its outcome fires `approve` or `reject`."""

    name: str
    label: Label
    steps: tuple[ApprovalStep, ...]
    approve: str
    reject: str
    place: Place


@dataclass(frozen=True)
class NotifyAction:
    """Tell people (owner, owner_manager, role:<name>) in-app, and by email when `email`."""

    to: tuple[str, ...]
    message: Label
    email: bool = False


@dataclass(frozen=True)
class CreateAction:
    """Create a record of `entity` whose fields are expressions over the source record; when
    `link` is given (a reference field of the source entity) the new record's id is stored there,
    so later actions and the user can follow it (lead conversion: account, then contact)."""

    entity: str
    values: tuple[SetAction, ...]  # fields of `entity`, expressions over the source record
    link: str | None
    place: Place


@dataclass(frozen=True)
class StateTimer:
    """Fire `fire` when the record is still in the state `after_minutes` after entering it."""

    after_minutes: int
    fire: str


@dataclass(frozen=True)
class WorkflowState:
    name: str
    final: bool = False
    on_enter: tuple[SetAction, ...] = ()
    on_exit: tuple[SetAction, ...] = ()
    approval: ApprovalAction | None = None
    timers: tuple[StateTimer, ...] = ()
    work_list: tuple[str, ...] = ()  # roles that find records in this state on their work list
    notify: tuple[NotifyAction, ...] = ()  # on entering the state
    creates: tuple[CreateAction, ...] = ()  # on entering the state, in order


@dataclass(frozen=True)
class Reminder:
    """A date-based reminder: on `date_field + offset_days` (and up to `catch_up_days` later, when
    the platform was not running that day) each matching record gets the actions once per date
    value; a changed date (a renewed warranty) arms it again."""

    name: str
    label: Label
    entity: str
    date_field: str
    offset_days: int
    catch_up_days: int
    condition: str | None
    condition_place: Place | None
    creates: tuple[CreateAction, ...]
    notify: tuple[NotifyAction, ...]
    place: Place
    pack: str = ""


@dataclass(frozen=True)
class Transition:
    name: str
    label: Label
    from_states: tuple[str, ...]
    to: str
    place: Place
    roles: tuple[str, ...] = ()
    relations: tuple[str, ...] = ()
    guard: str | None = None
    guard_place: Place | None = None
    guard_message: Label | None = None
    required: tuple[str, ...] = ()
    comment: str = "optional"


@dataclass(frozen=True)
class Workflow:
    name: str
    label: Label
    entity: str
    field: str
    initial: str
    states: tuple[WorkflowState, ...]
    transitions: tuple[Transition, ...]
    place: Place
    pack: str = ""
    moved_states: tuple[tuple[str, str], ...] = ()  # (retired state, state its records move to)

    def state(self, name: str) -> WorkflowState | None:
        return next((s for s in self.states if s.name == name), None)

    def transition(self, name: str) -> Transition | None:
        return next((t for t in self.transitions if t.name == name), None)

    def leaving(self, state: str | None) -> list[Transition]:
        return [t for t in self.transitions if state in t.from_states or "*" in t.from_states]
