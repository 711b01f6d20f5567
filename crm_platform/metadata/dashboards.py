"""Dashboards (dashboards/*.yaml): named pages of report widgets (bar, funnel, table, number) that
packs ship, e.g. the sales director's funnel and pipeline. Checked against the entities here;
filters are checked by the rules layer; each widget runs as a report for whoever views it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from crm_platform.metadata.access import Role
from crm_platform.metadata.assembly import build_label, did_you_mean, place_of
from crm_platform.metadata.errors import Problem
from crm_platform.metadata.model import Entity, Label, Place
from crm_platform.metadata.pack_reader import PackFiles

SYSTEM_GROUPS = ("owner_id", "unit_id", "created_at", "updated_at")


@dataclass(frozen=True)
class Widget:
    title: Label
    entity: str
    group_by: tuple[str, ...]
    aggregate: str
    field: str | None
    filter: str | None
    filter_place: Place | None
    chart: str
    cumulative: bool
    exclude: tuple[str, ...]
    target: tuple[str, str] | None = None  # chart "target": (aggregate, field) compared with

    def spec(self) -> dict[str, Any]:
        measures = [{"aggregate": self.aggregate, "field": self.field}]
        if self.target is not None:
            measures.append({"aggregate": self.target[0], "field": self.target[1]})
        return {"entity": self.entity, "group_by": list(self.group_by), "measures": measures, "filter": self.filter}


@dataclass(frozen=True)
class Dashboard:
    name: str
    label: Label
    order: int
    roles: tuple[str, ...]
    widgets: tuple[Widget, ...]
    place: Place
    pack: str = ""


def build_dashboards(packs: list[PackFiles], entities: dict[str, Entity], roles: tuple[Role, ...]) -> tuple[tuple[Dashboard, ...], list[Problem]]:
    problems: list[Problem] = []
    found: dict[str, Dashboard] = {}
    role_names = {r.name for r in roles}
    for pack in packs:
        for source in pack.of("dashboards"):
            data = source.data
            name = data["name"]
            before = len(problems)

            def problem(path: tuple[Any, ...], message: str, name: str = name, source: Any = source) -> None:
                problems.append(source.problem(path, f"dashboard '{name}': {message}", "dashboard.invalid"))

            if name in found:
                problem(("name",), f"already declared at {found[name].place}")
                continue
            for i, role in enumerate(data.get("roles", [])):
                if role not in role_names:
                    problem(("roles", i), f"unknown role '{role}'{did_you_mean(role, role_names)}")
            widgets = []
            for i, item in enumerate(data["widgets"]):
                entity = entities.get(item["entity"])
                if entity is None:
                    problem(("widgets", i, "entity"), f"unknown entity '{item['entity']}'{did_you_mean(item['entity'], entities)}")
                    continue
                for j, key in enumerate(item.get("group_by", [])):
                    field = key.split(":")[0]
                    if field not in entity.field_map and field not in SYSTEM_GROUPS:
                        problem(("widgets", i, "group_by", j), f"unknown field '{field}' of {entity.name}{did_you_mean(field, entity.field_map)}")
                measure = item.get("measure", {"aggregate": "count"})
                if measure.get("field") and measure["field"] not in entity.field_map:
                    problem(("widgets", i, "measure", "field"), f"unknown field '{measure['field']}' of {entity.name}{did_you_mean(measure['field'], entity.field_map)}")
                if measure["aggregate"] != "count" and not measure.get("field"):
                    problem(("widgets", i, "measure"), f"'{measure['aggregate']}' needs a field")
                chart = item.get("chart", "bar" if item.get("group_by") else "number")
                target = item.get("target")
                if target is not None and target["field"] not in entity.field_map:
                    problem(("widgets", i, "target", "field"), f"unknown field '{target['field']}' of {entity.name}{did_you_mean(target['field'], entity.field_map)}")
                if (chart == "target") != (target is not None):
                    problem(("widgets", i, "chart"), "a 'target' chart needs a target measure, and a target measure needs chart: target")
                elif chart == "target" and len(item.get("group_by", [])) != 1:
                    problem(("widgets", i, "group_by"), "a 'target' chart groups by exactly one field")
                widgets.append(Widget(build_label(item["title"], ""), entity.name, tuple(item.get("group_by", [])), measure["aggregate"], measure.get("field"),
                                      item.get("filter"), place_of(source, ("widgets", i, "filter")) if "filter" in item else None, chart,
                                      bool(item.get("cumulative", False)), tuple(str(v) for v in item.get("exclude", [])),
                                      (target["aggregate"], target["field"]) if target else None))
            if len(problems) == before:
                found[name] = Dashboard(name, build_label(data["label"], name), int(data.get("order", 100)), tuple(data.get("roles", [])), tuple(widgets),
                                        place_of(source, ()), pack.pack.name)
    return tuple(sorted(found.values(), key=lambda d: (d.order, d.name))), problems
