"""Building the seed and demo record sets of packs, checking every value against its field.

A reference is written as the `_key` of a record of the referenced entity; it must exist in
the pack or one it depends on, and a `seed` record (always loaded) may not refer to a `demo`
record (loaded only on request).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from crm_platform.metadata import field_types as ft
from crm_platform.metadata.assembly import place_of
from crm_platform.metadata.errors import Problem, did_you_mean
from crm_platform.metadata.model import Entity, Field, Place, SeedRecord, SeedSet
from crm_platform.metadata.values import is_blank, parse_currency, parse_value
from crm_platform.metadata.yaml_source import JsonPath, SourceFile


@dataclass
class _KeyRef:
    """A `_key` written in a reference value, to check once every record is known."""

    pack: str
    kind: str
    entity: str
    key: str
    source: SourceFile
    path: JsonPath
    what: str


@dataclass
class SeedChecker:
    entities: dict[str, Entity]
    closure: dict[str, set[str]]
    problems: list[Problem] = field(default_factory=list)
    seeds: list[SeedSet] = field(default_factory=list)
    keys: dict[tuple[str, str], tuple[str, str, Place]] = field(default_factory=dict)  # (entity, key) -> (pack, kind, place)
    refs: list[_KeyRef] = field(default_factory=list)

    def add_file(self, pack: str, kind: str, source: SourceFile, entity: Entity) -> None:
        records = []
        for i, record in enumerate(source.data["records"]):
            key = str(record["_key"])
            path: JsonPath = ("records", i)
            earlier = self.keys.get((entity.name, key))
            if earlier is not None:
                self._problem(source, (*path, "_key"), f"record key '{key}' of {entity.name} is already used at {earlier[2]}", "seed.duplicate_key")
            else:
                self.keys[(entity.name, key)] = (pack, kind, place_of(source, path))
            self._check_values(pack, kind, source, path, entity, record, f"record '{key}'")
            values = {k: v for k, v in record.items() if k not in ("_key", "_owner")}
            records.append(SeedRecord(key, MappingProxyType(values), place_of(source, path), record.get("_owner")))
        self.seeds.append(SeedSet(entity.name, kind, tuple(records), place_of(source, ()), pack))

    def _problem(self, source: SourceFile, path: JsonPath, message: str, code: str, at_key: bool = False) -> None:
        self.problems.append(source.problem(path, message, code, at_key))

    def _check_values(self, pack: str, kind: str, source: SourceFile, path: JsonPath, entity: Entity, record: dict[str, Any], what: str) -> None:
        for f in entity.fields:
            if f.required and f.default is None and ft.FIELD_TYPES[f.type].writable and is_blank(record.get(f.name)):
                self._problem(source, path, f"{what}: field '{f.name}' is required", "seed.required")
        for name, value in record.items():
            if name in ("_key", "_owner"):
                continue
            at: JsonPath = (*path, name)
            base = entity.field_map.get(name.removesuffix("_currency")) if name.endswith("_currency") else None
            if base is not None and base.type == "money":
                self._parse(source, at, f"{what}: field '{name}'", None, value)
                continue
            f = entity.field_map.get(name)
            if f is None:
                self._problem(source, at, f"{what}: unknown field '{name}' on {entity.name}{did_you_mean(name, entity.field_map)}", "field.unknown", at_key=True)
            elif not ft.FIELD_TYPES[f.type].writable:
                self._problem(source, at, f"{what}: field '{name}' is computed by the platform ({f.type}); remove it", "seed.read_only", at_key=True)
            elif f.system_target:  # a user / org unit: its username or name, resolved when the records load
                if not isinstance(value, (str, int)) or isinstance(value, bool):
                    what_target = "username of a user" if f.system_target == "user" else "name or path of an org unit"
                    self._problem(source, at, f"{what}: field '{name}': expected the {what_target}", "seed.bad_value")
            elif f.type == "reference":
                self._ref(pack, kind, source, at, f.entity or "", value, f"{what}: field '{name}'")
            elif f.type == "many_to_many":
                self._links(pack, kind, source, at, f.entity or "", value, f"{what}: field '{name}'")
            elif f.type == "child_table":
                child = self.entities.get(f.entity or "")
                if child is not None:
                    self._rows(pack, kind, source, at, child, value, f"{what}: field '{name}'")
            elif f.type != "file":
                self._parse(source, at, f"{what}: field '{name}'", f, value)

    def _parse(self, source: SourceFile, at: JsonPath, what: str, f: Field | None, value: Any) -> None:
        """Check a plain value (`f` None: the currency code of a money field)."""
        try:
            parse_value(f, value) if f is not None else parse_currency(value)
        except ValueError as exc:
            self._problem(source, at, f"{what}: {exc}", "seed.bad_value")

    def _ref(self, pack: str, kind: str, source: SourceFile, at: JsonPath, target: str, value: Any, what: str) -> None:
        if value is None:
            return
        if not isinstance(value, (str, int)) or isinstance(value, bool):
            self._problem(source, at, f"{what}: expected the _key of a {target} record", "seed.bad_value")
            return
        self.refs.append(_KeyRef(pack, kind, target, str(value), source, at, what))

    def _links(self, pack: str, kind: str, source: SourceFile, at: JsonPath, target: str, value: Any, what: str) -> None:
        if value is None:
            return
        if not isinstance(value, list):
            self._problem(source, at, f"{what}: expected a list of _keys of {target} records", "seed.bad_value")
            return
        for j, item in enumerate(value):
            self._ref(pack, kind, source, (*at, j), target, item, what)

    def _rows(self, pack: str, kind: str, source: SourceFile, at: JsonPath, child: Entity, value: Any, what: str) -> None:
        if value is None:
            return
        if not isinstance(value, list) or not all(isinstance(row, dict) for row in value):
            self._problem(source, at, f"{what}: expected a list of {child.name} rows (mappings of field: value)", "seed.bad_value")
            return
        for r, row in enumerate(value):
            if "_key" in row:
                self._problem(source, (*at, r, "_key"), f"{what}: child rows have no _key", "seed.bad_value", at_key=True)
                row = {k: v for k, v in row.items() if k != "_key"}
            self._check_values(pack, kind, source, (*at, r), child, row, f"{what}: row {r + 1}")

    def check_references(self) -> None:
        """Every `_key` written in a reference names a record the referring pack can see."""
        for ref in self.refs:
            found = self.keys.get((ref.entity, ref.key))
            if found is None or found[0] not in self.closure.get(ref.pack, {ref.pack}):
                known = [k for (e, k), (p, _, _) in self.keys.items() if e == ref.entity and p in self.closure.get(ref.pack, {ref.pack})]
                message = f"{ref.what} refers to '{ref.key}', which is not the _key of any {ref.entity} record in this pack or the packs it depends on{did_you_mean(ref.key, known)}"
                self._problem(ref.source, ref.path, message, "seed.unknown_reference")
            elif ref.kind == "seed" and found[1] == "demo":
                self._problem(ref.source, ref.path, f"{ref.what} refers to demo record '{ref.key}' ({found[2]}), but seed records load without demo data; move that record to seed/", "seed.refers_to_demo")
