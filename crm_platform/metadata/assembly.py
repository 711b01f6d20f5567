"""Turning validated pack files into model objects: entities with their extensions applied,
list views, forms, menus and seed data, checking every cross-reference on the way."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from crm_platform.metadata import field_types as ft
from crm_platform.metadata.errors import Problem, did_you_mean
from crm_platform.metadata.field_checks import FieldChecker
from crm_platform.metadata.model import Entity, Field, Label, Option, Place
from crm_platform.metadata.pack_reader import PackFiles
from crm_platform.metadata.yaml_source import JsonPath, SourceFile


def place_of(source: SourceFile, path: JsonPath) -> Place:
    if hasattr(source, "place"):  # a merged definition (workflow_extension.MergedSource): the entry's own file
        return source.place(path)  # type: ignore[no-any-return]
    line, col = source.where(path)
    return Place(source.path, line, col)


@dataclass
class FieldDraft:
    field: Field
    source: SourceFile
    path: JsonPath


@dataclass
class EntityDraft:
    name: str
    pack: str
    source: SourceFile
    data: dict[str, Any]
    fields: list[FieldDraft] = field(default_factory=list)
    search_fields: list[str] = field(default_factory=list)
    extra_options: dict[str, list[Option]] = field(default_factory=dict)


def build_label(data: Any, fallback: str) -> Label:
    return Label.from_data(data, fallback)


def build_options(items: list[dict[str, Any]]) -> tuple[Option, ...]:
    return tuple(Option(o["value"], build_label(o["label"], o["value"]), o.get("color")) for o in items)


def build_field(data: dict[str, Any], source: SourceFile, path: JsonPath, pack: str) -> Field:
    return Field(
        name=data["name"],
        type=data["type"],
        label=build_label(data["label"], data["name"]),
        place=place_of(source, path),
        expression_place=place_of(source, (*path, "expression")) if "expression" in data else None,
        required=bool(data.get("required", False)),
        default=_frozen(data.get("default")),
        help=build_label(data["help"], "") if "help" in data else None,
        indexed=bool(data.get("indexed", False)),
        unique=bool(data.get("unique", False)),
        read_only=bool(data.get("read_only", False)),
        renamed_from=data.get("renamed_from"),
        max_length=data.get("max_length"),
        precision=data.get("precision"),
        scale=data.get("scale"),
        min=data.get("min"),
        max=data.get("max"),
        currency=data.get("currency") or (ft.DEFAULT_CURRENCY if data["type"] == "money" else None),
        options=build_options(data.get("options", [])),
        entity=data.get("entity"),
        on_delete=data.get("on_delete", "restrict"),
        format=data.get("format"),
        expression=data.get("expression"),
        result_type=data.get("result_type"),
        max_size_mb=data.get("max_size_mb"),
        accept=tuple(data.get("accept", ())),
        pack=pack,
    )


class EntityAssembler:
    """Builds every entity from all packs (declarations, then extensions, in pack order)."""

    def __init__(self, packs: list[PackFiles], closure: dict[str, set[str]]) -> None:
        self.packs = packs
        self.closure = closure
        self.problems: list[Problem] = []
        self.drafts: dict[str, EntityDraft] = {}
        self.broken: set[str] = set().union(*(p.broken_entities for p in packs)) if packs else set()

    def run(self) -> dict[str, Entity]:
        for pack in self.packs:
            for source in pack.of("entities"):
                if "extends" not in source.data:
                    self._declare(pack.pack.name, source)
        for pack in self.packs:
            for source in pack.of("entities"):
                if "extends" in source.data:
                    self._extend(pack.pack.name, source)
        checker = FieldChecker(self)
        for draft in self.drafts.values():
            checker.check_fields(draft)
        for draft in self.drafts.values():
            checker.check_links(draft)
        return {name: self._freeze(d) for name, d in self.drafts.items()}

    def _problem(self, source: SourceFile, path: JsonPath, message: str, code: str) -> None:
        self.problems.append(source.problem(path, message, code))

    def _declare(self, pack: str, source: SourceFile) -> None:
        data = source.data
        name = data["name"]
        if name in ft.SYSTEM_TARGETS:
            self._problem(source, ("name",), f"entity name '{name}' is reserved: `entity: {name}` in a reference field names the platform's {name.replace('_', ' ')}s; choose another name", "entity.reserved_name")
            return
        if name in self.drafts:
            other = self.drafts[name].source
            self._problem(source, ("name",), f"entity '{name}' is already declared in {other.path}", "entity.duplicate")
            return
        draft = EntityDraft(name, pack, source, data, search_fields=list(data.get("search_fields", [])))
        for index, item in enumerate(data.get("fields", [])):
            draft.fields.append(FieldDraft(build_field(item, source, ("fields", index), pack), source, ("fields", index)))
        self.drafts[name] = draft

    def _extend(self, pack: str, source: SourceFile) -> None:
        data = source.data
        target = data["extends"]
        draft = self.drafts.get(target)
        if draft is None:
            if target not in self.broken:
                hint = did_you_mean(target, self.known_names())
                self._problem(source, ("extends",), f"extends unknown entity '{target}'{hint}", "entity.unknown")
            return
        if draft.pack not in self.closure.get(pack, set()) or draft.pack == pack:
            why = "its own pack declares it: add the fields there" if draft.pack == pack else f"add '{draft.pack}' to depends in pack.yaml"
            self._problem(source, ("extends",), f"cannot extend entity '{target}' of pack '{draft.pack}': {why}", "entity.extend_not_visible")
            return
        for key in ("owned", "child_of"):
            if key in data:
                self._problem(source, (key,), f"an extension cannot change '{key}' of entity '{target}'", "entity.extend_forbidden")
        for key in ("label", "plural_label", "description", "icon", "title_field"):
            if key in data:
                draft.data = {**draft.data, key: data[key]}
        for name in data.get("search_fields", []):
            if name not in draft.search_fields:
                draft.search_fields.append(name)
        for index, item in enumerate(data.get("fields", [])):
            draft.fields.append(FieldDraft(build_field(item, source, ("fields", index), pack), source, ("fields", index)))
        for field_name, options in data.get("picklist_values", {}).items():
            existing = next((f for f in draft.fields if f.field.name == field_name), None)
            path: JsonPath = ("picklist_values", field_name)
            if existing is None or existing.field.type not in ("picklist", "multi_picklist"):
                hint = did_you_mean(field_name, [f.field.name for f in draft.fields if f.field.type.endswith("picklist")])
                self.problems.append(source.problem(path, f"entity '{target}' has no picklist field '{field_name}'{hint}", "field.unknown", at_key=True))
                continue
            known = set(existing.field.option_values) | {o.value for o in draft.extra_options.get(field_name, [])}
            for i, option in enumerate(build_options(options)):
                if option.value in known:
                    self._problem(source, (*path, i, "value"), f"picklist '{target}.{field_name}' already has the value '{option.value}'", "field.duplicate_option")
                    continue
                known.add(option.value)
                draft.extra_options.setdefault(field_name, []).append(option)

    def known_names(self) -> set[str]:
        """Entity names for "did you mean": declared ones and those whose files were invalid."""
        return set(self.drafts) | self.broken

    def visible(self, pack: str, draft: EntityDraft) -> bool:
        """Whether `pack` may use `draft`: it is its own or one of a pack it depends on."""
        return draft.pack in self.closure.get(pack, {pack})

    @staticmethod
    def not_visible(pack: str, draft: EntityDraft) -> str:
        return f"entity '{draft.name}' belongs to pack '{draft.pack}', which pack '{pack}' does not depend on; add '{draft.pack}' to depends in pack.yaml"

    def _freeze(self, draft: EntityDraft) -> Entity:
        data = draft.data
        fields = []
        for fd in draft.fields:
            f = fd.field
            extra = draft.extra_options.get(f.name)
            if extra:
                f = _replace(f, options=f.options + tuple(extra))
            fields.append(f)
        unique_fields: dict[str, Field] = {}
        for f in fields:
            unique_fields.setdefault(f.name, f)
        child_of = data.get("child_of")
        title = data.get("title_field") or next(
            (f.name for f in fields if f.type in ("text", "auto_number")), None
        )
        return Entity(
            name=draft.name,
            label=build_label(data["label"], draft.name),
            plural_label=build_label(data.get("plural_label", data["label"]), draft.name),
            fields=tuple(unique_fields.values()),
            place=place_of(draft.source, ()),
            title_field=title,
            search_fields=tuple(draft.search_fields),
            owned=bool(data.get("owned", True)) and child_of is None,
            child_of=child_of,
            icon=data.get("icon"),
            description=build_label(data["description"], "") if "description" in data else None,
            timeline_date=data.get("timeline_date"),
            indexes=tuple(tuple(ix) for ix in data.get("indexes", ())),
            pack=draft.pack,
        )



def _frozen(value: Any) -> Any:
    """A list default (multi-picklist) as a tuple, so that the Field stays immutable."""
    return tuple(value) if isinstance(value, list) else value


def _replace(f: Field, **changes: Any) -> Field:
    return dataclasses.replace(f, **changes)
