"""Scorings (scoring/*.yaml): a weighted score computed for every record of an entity by a
periodic job, and classes assigned by rank (top 5 % A, next 20 % B, the rest C). The model
and its checks against the entities; the expressions are checked by the rules layer."""

from __future__ import annotations

from dataclasses import dataclass

from crm_platform.metadata.assembly import build_label, did_you_mean, place_of
from crm_platform.metadata.errors import Problem
from crm_platform.metadata.model import Entity, Label, Place
from crm_platform.metadata.pack_reader import PackFiles
from crm_platform.metadata.yaml_source import JsonPath

SCORE_TYPES = ("decimal", "integer", "percent")


@dataclass(frozen=True)
class ScoreClass:
    value: str
    top_percent: float | None  # None: the rest


@dataclass(frozen=True)
class Scoring:
    name: str
    label: Label
    entity: str
    score: str
    score_place: Place
    score_field: str
    condition: str | None
    condition_place: Place | None
    class_field: str | None
    classes: tuple[ScoreClass, ...]
    every_hours: int
    place: Place
    pack: str = ""


def build_scorings(packs: list[PackFiles], entities: dict[str, Entity]) -> tuple[tuple[Scoring, ...], list[Problem]]:
    problems: list[Problem] = []
    found: dict[str, Scoring] = {}
    for pack in packs:
        for source in pack.of("scoring"):
            data = source.data
            before = len(problems)

            def problem(path: JsonPath, message: str, data: dict = data, source=source) -> None:  # type: ignore[type-arg, no-untyped-def]
                problems.append(source.problem(path, f"scoring '{data['name']}': {message}", "scoring.invalid"))

            if data["name"] in found:
                problem(("name",), f"already declared at {found[data['name']].place}")
                continue
            entity = entities.get(data["entity"])
            if entity is None:
                problem(("entity",), f"unknown entity '{data['entity']}'{did_you_mean(data['entity'], entities)}")
                continue
            target = entity.field_map.get(data["score_field"])
            if target is None or target.type not in SCORE_TYPES:
                hint = did_you_mean(data["score_field"], entity.field_map) if target is None else f" (it is a {target.type})"
                problem(("score_field",), f"'{data['score_field']}' must be a decimal, integer or percent field of {entity.name}{hint}")
            classes = tuple(ScoreClass(str(c["value"]), c.get("top_percent")) for c in data.get("classes", []))
            class_field = data.get("class_field")
            if class_field is not None:
                picklist = entity.field_map.get(class_field)
                if picklist is None or picklist.type != "picklist":
                    problem(("class_field",), f"'{class_field}' must be a picklist field of {entity.name}{did_you_mean(class_field, entity.field_map) if picklist is None else ''}")
                else:
                    for i, c in enumerate(classes):
                        if c.value not in picklist.option_values:
                            problem(("classes", i, "value"), f"'{c.value}' is not a value of {entity.name}.{class_field}{did_you_mean(c.value, picklist.option_values)}")
                if classes and classes[-1].top_percent is not None:
                    problem(("classes", len(classes) - 1), "the last class takes the rest: give it no top_percent")
                if any(c.top_percent is None for c in classes[:-1]):
                    problem(("classes",), "every class but the last needs top_percent")
                elif sum(c.top_percent or 0 for c in classes[:-1]) > 100:
                    problem(("classes",), "the classes' top_percent add up to more than 100")
            if len(problems) > before:
                continue
            found[data["name"]] = Scoring(
                data["name"], build_label(data["label"], data["name"]), entity.name, data["score"], place_of(source, ("score",)),
                data["score_field"], data.get("when"), place_of(source, ("when",)) if "when" in data else None,
                class_field, classes, int(data.get("every_hours", 24)), place_of(source, ()), pack.pack.name,
            )
    return tuple(found.values()), problems
