"""Checks of assembled entity drafts: field names, properties per type, defaults, formats,
and the links between entities (reference targets, child tables, title and search fields)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from crm_platform.metadata import field_types as ft
from crm_platform.metadata.autonumber_format import parse_format
from crm_platform.metadata.errors import did_you_mean
from crm_platform.metadata.values import parse_value
from crm_platform.metadata.yaml_source import JsonPath, SourceFile

if TYPE_CHECKING:
    from crm_platform.metadata.assembly import EntityAssembler, EntityDraft, FieldDraft

# Field types whose default cannot be a literal value.
_NO_LITERAL_DEFAULT = ("reference", "file", "child_table", "many_to_many")
_TEXT_VALUE_TYPES = ("text", "long_text", "email", "phone", "url", "auto_number")


class FieldChecker:
    """Reports, on the assembler's problem list, everything wrong with the drafts' fields."""

    def __init__(self, asm: EntityAssembler) -> None:
        self.asm = asm

    def _problem(self, source: SourceFile, path: JsonPath, message: str, code: str, at_key: bool = False) -> None:
        self.asm.problems.append(source.problem(path, message, code, at_key))

    def check_fields(self, draft: EntityDraft) -> None:
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
                    self._problem(source, (*path, key), f"field '{f.name}': property '{key}' does not apply to type {f.type}", "field.property_not_applicable", at_key=True)
                elif key == "currency" and f.type == "formula" and f.result_type != "money":
                    self._problem(source, (*path, key), f"field '{f.name}': currency applies to a formula whose result_type is money", "field.property_not_applicable", at_key=True)
            self.check_values(fd)
        for fd in draft.fields:
            f = fd.field
            if f.renamed_from and f.renamed_from in seen and seen[f.renamed_from] is not fd:
                self._problem(fd.source, (*fd.path, "renamed_from"), f"field '{f.name}' is renamed from '{f.renamed_from}', but a field of that name still exists", "field.rename_conflict")

    def check_values(self, fd: FieldDraft) -> None:
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
        bounds_ok = all(self._bound_ok(fd, bound) for bound in ("min", "max"))
        if f.default is None or "default" not in ft.FIELD_TYPES[f.type].properties:
            return  # a default on a computed field is reported as a property that does not apply
        if f.type in _NO_LITERAL_DEFAULT:
            self._problem(source, (*path, "default"), f"field '{f.name}': a {f.type} field cannot have a literal default", "field.bad_default")
        elif bounds_ok:
            try:
                parse_value(f, f.default)
            except ValueError as exc:
                self._problem(source, (*path, "default"), f"field '{f.name}': default {f.default!r} is not valid: {exc}", "field.bad_default")

    def _bound_ok(self, fd: FieldDraft, bound: str) -> bool:
        value: Any = getattr(fd.field, bound)
        if value is None:
            return True
        try:
            ok = Decimal(str(value)).is_finite()
        except InvalidOperation:
            ok = False
        if not ok:
            self._problem(fd.source, (*fd.path, bound), f"field '{fd.field.name}': {bound} must be a number, not {value!r}", "field.bad_bound")
        return ok

    def check_links(self, draft: EntityDraft) -> None:
        asm = self.asm
        source, data = draft.source, draft.data
        names = {fd.field.name: fd.field for fd in draft.fields}
        for fd in draft.fields:
            f = fd.field
            if f.entity is None:
                continue
            if f.entity in ft.SYSTEM_TARGETS:
                self._check_system_target(fd)
                continue
            target = asm.drafts.get(f.entity)
            if target is None:
                if f.entity not in asm.broken:
                    known = asm.known_names() | (set(ft.SYSTEM_TARGETS) if f.type == "reference" else set())
                    self._problem(fd.source, (*fd.path, "entity"), f"field '{f.name}': unknown entity '{f.entity}'{did_you_mean(f.entity, known)}", "field.unknown_entity")
                continue
            if not asm.visible(f.pack, target):
                self._problem(fd.source, (*fd.path, "entity"), f"field '{f.name}': {asm.not_visible(f.pack, target)}", "entity.not_visible")
                continue
            if f.type == "child_table" and target.data.get("child_of") != draft.name:
                self._problem(fd.source, (*fd.path, "entity"), f"field '{f.name}': entity '{f.entity}' must declare child_of: {draft.name} to be its child table", "field.bad_child_table")
        self._check_child_of(draft)
        title = data.get("title_field")
        if title is not None and (title not in names or not ft.FIELD_TYPES[names[title].type].stored):
            self._problem(source, ("title_field",), f"title_field '{title}' is not a field of entity '{draft.name}'{did_you_mean(title, names)}", "entity.bad_title_field")
        for i, index in enumerate(data.get("indexes", [])):
            for j, name in enumerate(index):
                f = names.get(name)
                if f is None or not ft.FIELD_TYPES[f.type].stored or f.type == "multi_picklist":
                    self._problem(source, ("indexes", i, j), f"index field '{name}' is not a stored field of entity '{draft.name}'{did_you_mean(name, names)}", "entity.bad_index")
        timeline = data.get("timeline_date")
        if timeline is not None and (timeline not in names or names[timeline].value_type not in ("date", "datetime")):
            self._problem(source, ("timeline_date",), f"timeline_date '{timeline}' must be a date or datetime field of entity '{draft.name}'{did_you_mean(timeline, names)}", "entity.bad_timeline_date")
        for i, name in enumerate(draft.search_fields):
            f = names.get(name)
            if f is None or f.value_type not in _TEXT_VALUE_TYPES:
                why = "is not a field" if f is None else f"is of type {f.type}; search fields must hold text"
                hint = did_you_mean(name, names) if f is None else ""
                self._problem(source, ("search_fields", i), f"search field '{name}' {why} of entity '{draft.name}'{hint}", "entity.bad_search_field")

    def _check_system_target(self, fd: FieldDraft) -> None:
        """A reference to a user or an org unit: only `type: reference`, and no cascade."""
        f = fd.field
        what = (f.entity or "").replace("_", " ")
        if f.type != "reference":
            self._problem(fd.source, (*fd.path, "entity"), f"field '{f.name}': '{f.entity}' names the platform's {what}s (entity: {f.entity}), which only a reference field may target, not a {f.type}", "field.bad_system_target")
        elif f.on_delete not in ft.SYSTEM_TARGET_ON_DELETE:
            self._problem(fd.source, (*fd.path, "on_delete"), f"field '{f.name}': on_delete {f.on_delete} is not allowed for a reference to {f.entity} (users are deactivated, not deleted); use restrict or set_null", "field.bad_on_delete")

    def _check_child_of(self, draft: EntityDraft) -> None:
        asm = self.asm
        child_of = draft.data.get("child_of")
        if child_of is None:
            return
        parent = asm.drafts.get(child_of)
        if parent is None:
            if child_of not in asm.broken:
                self._problem(draft.source, ("child_of",), f"child_of unknown entity '{child_of}'{did_you_mean(child_of, asm.known_names())}", "entity.unknown")
        elif not asm.visible(draft.pack, parent):
            self._problem(draft.source, ("child_of",), f"child_of: {asm.not_visible(draft.pack, parent)}", "entity.not_visible")


def source_item(source: SourceFile, path: JsonPath) -> dict[str, Any]:
    node: Any = source.data
    for step in path:
        node = node[step]
    return node if isinstance(node, dict) else {}

