"""Turning validated pack files into model objects: entities with their extensions applied,
list views, forms, menus and seed data, checking every cross-reference on the way."""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from crm_platform.metadata import field_types as ft
from crm_platform.metadata.autonumber_format import parse_format
from crm_platform.metadata.errors import Problem
from crm_platform.metadata.model import Entity, Field, Label, Option, Place
from crm_platform.metadata.pack_reader import PackFiles
from crm_platform.metadata.values import parse_value
from crm_platform.metadata.yaml_source import JsonPath, SourceFile


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def place_of(source: SourceFile, path: JsonPath) -> Place:
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
        required=bool(data.get("required", False)),
        default=data.get("default"),
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
        for draft in self.drafts.values():
            self._check_fields(draft)
        for draft in self.drafts.values():
            self._check_links(draft)
        return {name: self._freeze(d) for name, d in self.drafts.items()}

    def _problem(self, source: SourceFile, path: JsonPath, message: str, code: str) -> None:
        self.problems.append(source.problem(path, message, code))

    def _declare(self, pack: str, source: SourceFile) -> None:
        data = source.data
        name = data["name"]
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
                hint = did_you_mean(target, self.drafts)
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
                self._problem(source, path, f"entity '{target}' has no picklist field '{field_name}'{hint}", "field.unknown")
                continue
            known = set(existing.field.option_values) | {o.value for o in draft.extra_options.get(field_name, [])}
            for i, option in enumerate(build_options(options)):
                if option.value in known:
                    self._problem(source, (*path, i, "value"), f"picklist '{target}.{field_name}' already has the value '{option.value}'", "field.duplicate_option")
                    continue
                known.add(option.value)
                draft.extra_options.setdefault(field_name, []).append(option)

    def _check_fields(self, draft: EntityDraft) -> None:
        seen: dict[str, FieldDraft] = {}
        for fd in draft.fields:
            f, source, path = fd.field, fd.source, fd.path
            if f.name in seen:
                self._problem(source, (*path, "name"), f"field '{f.name}' is already declared at {seen[f.name].field.place}", "field.duplicate")
                continue
            seen[f.name] = fd
            if f.name in ft.SYSTEM_COLUMNS or f.name.endswith("_currency"):
                self._problem(source, (*path, "name"), f"field name '{f.name}' is reserved for a system column; choose another name", "field.reserved_name")
            allowed = ft.FIELD_TYPES[f.type].properties
            for key in source_item(source, path):
                if key not in allowed:
                    self._problem(source, (*path, key), f"field '{f.name}': property '{key}' does not apply to type {f.type}", "field.property_not_applicable")
            self._check_field_values(draft, fd)
        for fd in draft.fields:
            f = fd.field
            if f.renamed_from and f.renamed_from in seen and seen[f.renamed_from] is not fd:
                self._problem(fd.source, (*fd.path, "renamed_from"), f"field '{f.name}' is renamed from '{f.renamed_from}', but a field of that name still exists", "field.rename_conflict")

    def _check_field_values(self, draft: EntityDraft, fd: FieldDraft) -> None:
        f, source, path = fd.field, fd.source, fd.path
        values = [o.value for o in f.options]
        for i, value in enumerate(values):
            if value in values[:i]:
                self._problem(source, (*path, "options", i, "value"), f"field '{f.name}': option '{value}' is listed twice", "field.duplicate_option")
        if f.precision is not None and f.scale is not None and f.scale > f.precision:
            self._problem(source, (*path, "scale"), f"field '{f.name}': scale {f.scale} is larger than precision {f.precision}", "field.bad_precision")
        if f.type == "auto_number" and f.format:
            try:
                parse_format(f.format)
            except ValueError as exc:
                self._problem(source, (*path, "format"), f"field '{f.name}': bad auto-number format {f.format!r}: {exc}", "field.bad_format")
        if f.default is not None and ft.FIELD_TYPES[f.type].writable and f.type not in ("reference", "file", "child_table", "many_to_many"):
            try:
                parse_value(f, f.default)
            except ValueError as exc:
                self._problem(source, (*path, "default"), f"field '{f.name}': default {f.default!r} is not valid: {exc}", "field.bad_default")
        elif f.default is not None:
            self._problem(source, (*path, "default"), f"field '{f.name}': a {f.type} field cannot have a literal default", "field.bad_default")
        for bound in ("min", "max"):
            value = getattr(f, bound)
            if isinstance(value, str):
                try:
                    float(value)
                except ValueError:
                    self._problem(source, (*path, bound), f"field '{f.name}': {bound} must be a number", "field.bad_bound")

    def _check_links(self, draft: EntityDraft) -> None:
        source, data = draft.source, draft.data
        names = {fd.field.name: fd.field for fd in draft.fields}
        for fd in draft.fields:
            f = fd.field
            if f.entity is None:
                continue
            target = self.drafts.get(f.entity)
            if target is None:
                if f.entity not in self.broken:
                    self._problem(fd.source, (*fd.path, "entity"), f"field '{f.name}': unknown entity '{f.entity}'{did_you_mean(f.entity, self.drafts)}", "field.unknown_entity")
                continue
            if f.type == "child_table" and target.data.get("child_of") != draft.name:
                self._problem(fd.source, (*fd.path, "entity"), f"field '{f.name}': entity '{f.entity}' must declare child_of: {draft.name} to be its child table", "field.bad_child_table")
        child_of = data.get("child_of")
        if child_of is not None and child_of not in self.drafts and child_of not in self.broken:
            self._problem(source, ("child_of",), f"child_of unknown entity '{child_of}'{did_you_mean(child_of, self.drafts)}", "entity.unknown")
        title = data.get("title_field")
        if title is not None and (title not in names or not ft.FIELD_TYPES[names[title].type].stored):
            self._problem(source, ("title_field",), f"title_field '{title}' is not a field of entity '{draft.name}'{did_you_mean(title, names)}", "entity.bad_title_field")
        for i, name in enumerate(draft.search_fields):
            f = names.get(name)
            if f is None or f.value_type not in ("text", "long_text", "email", "phone", "url", "auto_number"):
                why = "is not a field" if f is None else f"is of type {f.type}; search fields must hold text"
                self._problem(source, ("search_fields", i), f"search field '{name}' {why} of entity '{draft.name}'{did_you_mean(name, names) if f is None else ''}", "entity.bad_search_field")

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
            pack=draft.pack,
        )


def source_item(source: SourceFile, path: JsonPath) -> dict[str, Any]:
    node: Any = source.data
    for step in path:
        node = node[step]
    return node if isinstance(node, dict) else {}


def _replace(f: Field, **changes: Any) -> Field:
    return dataclasses.replace(f, **changes)
