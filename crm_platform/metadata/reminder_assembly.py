"""Building date-based reminders (reminders/*.yaml) and checking them against the entities and
roles: the date field is a date or datetime, names exist, actions are well formed."""

from __future__ import annotations

from typing import Any

from crm_platform.metadata.access import Role
from crm_platform.metadata.action_assembly import build_create, build_notify
from crm_platform.metadata.assembly import build_label, did_you_mean, place_of
from crm_platform.metadata.errors import Problem
from crm_platform.metadata.model import Entity
from crm_platform.metadata.pack_reader import PackFiles
from crm_platform.metadata.workflow_model import CreateAction, NotifyAction, Reminder
from crm_platform.metadata.yaml_source import JsonPath

DEFAULT_CATCH_UP_DAYS = 7


def build_reminders(packs: list[PackFiles], entities: dict[str, Entity], roles: tuple[Role, ...]) -> tuple[tuple[Reminder, ...], list[Problem]]:
    problems: list[Problem] = []
    found: dict[str, Reminder] = {}
    role_names = {r.name for r in roles}
    for pack in packs:
        for source in pack.of("reminders"):
            data = source.data

            def problem(path: JsonPath, message: str, code: str = "reminder.invalid", data: dict[str, Any] = data, source: Any = source) -> None:
                problems.append(source.problem(path, f"reminder '{data['name']}': {message}", code))

            if data["name"] in found:
                problem(("name",), f"already declared at {found[data['name']].place}", "reminder.duplicate")
                continue
            entity = entities.get(data["entity"])
            if entity is None:
                problem(("entity",), f"unknown entity '{data['entity']}'{did_you_mean(data['entity'], entities)}", "entity.unknown")
                continue
            date_field = entity.field_map.get(data["date"])
            if date_field is None or date_field.type not in ("date", "datetime"):
                hint = did_you_mean(data["date"], entity.field_map) if date_field is None else f" (it is a {date_field.type})"
                problem(("date",), f"'{data['date']}' must be a date or datetime field of {entity.name}{hint}")
                continue
            creates: list[CreateAction] = []
            notify: list[NotifyAction] = []
            for i, action in enumerate(data["actions"]):
                if "create" in action:
                    created = build_create(source, ("actions", i, "create"), action["create"], entity, entities, problem)
                    if created is not None and created.link:
                        problem(("actions", i, "create", "link"), "a reminder does not change its record; 'link' is for workflow actions")
                    elif created is not None:
                        creates.append(created)
                else:
                    notify.append(build_notify(source, ("actions", i, "notify"), action["notify"], role_names, problem))
            offset = -int(data.get("days_before", 0)) or int(data.get("days_after", 0))
            found[data["name"]] = Reminder(
                data["name"], build_label(data["label"], data["name"]), entity.name, date_field.name, offset,
                int(data.get("catch_up_days", DEFAULT_CATCH_UP_DAYS)), data.get("when"),
                place_of(source, ("when",)) if "when" in data else None, tuple(creates), tuple(notify), place_of(source, ()), pack.pack.name,
            )
    return tuple(found.values()), problems
