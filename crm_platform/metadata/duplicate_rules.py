"""Duplicate rules (a pack's `duplicates.yaml`): which entities are checked for possible duplicates
when a record is created, and on which fields. The model and its checks against the entities;
engine/duplicates.py finds the candidates.

```yaml
company_suffixes: [经营部]                  # optional: more words stripped from the end of names
entities:
  account:
    name: {fields: [name], threshold: 0.85}  # normalized name similarity
    phone: {fields: [phone], digits: 8}      # the last 8 digits equal
    email: {fields: [email]}                 # case-insensitive equal
  contact:
    name: {fields: [name], same: [account]}  # a similar name counts only within the same account
```

Every compared field must be one of the entity's `search_fields`: candidates are found through
its search index, never by reading the whole table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from crm_platform.metadata.assembly import place_of
from crm_platform.metadata.errors import Problem, did_you_mean
from crm_platform.metadata.model import Entity, Place
from crm_platform.metadata.pack_reader import PackFiles
from crm_platform.metadata.yaml_source import JsonPath

DEFAULT_THRESHOLD = 0.85
DEFAULT_DIGITS = 8
NAME_TYPES = ("text", "long_text")
PHONE_TYPES = ("phone", "text")
EMAIL_TYPES = ("email", "text")
SAME_EXCLUDED = ("multi_picklist", "many_to_many", "child_table", "file", "formula", "long_text")


@dataclass(frozen=True)
class NameMatch:
    fields: tuple[str, ...]
    threshold: float = DEFAULT_THRESHOLD
    same: tuple[str, ...] = ()


@dataclass(frozen=True)
class PhoneMatch:
    fields: tuple[str, ...]
    digits: int = DEFAULT_DIGITS


@dataclass(frozen=True)
class EmailMatch:
    fields: tuple[str, ...]


@dataclass(frozen=True)
class DuplicateRule:
    """The checks of one entity."""

    entity: str
    place: Place
    name: NameMatch | None = None
    phone: PhoneMatch | None = None
    email: EmailMatch | None = None
    pack: str = ""

    @property
    def active(self) -> bool:
        return self.name is not None or self.phone is not None or self.email is not None

    @property
    def fields(self) -> tuple[str, ...]:
        """Every field a check compares."""
        names: list[str] = []
        for match in (self.name, self.phone, self.email):
            if match is not None:
                names += [f for f in match.fields if f not in names]
        return tuple(names)


@dataclass(frozen=True)
class DuplicateRules:
    """The site's duplicate rules: per entity, and the extra company suffixes of every pack."""

    rules: Mapping[str, DuplicateRule] = field(default_factory=lambda: MappingProxyType({}))
    company_suffixes: tuple[str, ...] = ()

    def of(self, entity: str) -> DuplicateRule | None:
        rule = self.rules.get(entity)
        return rule if rule is not None and rule.active else None


def build_duplicates(packs: list[PackFiles], entities: Mapping[str, Entity]) -> tuple[DuplicateRules, list[Problem]]:
    """The duplicate rules of the packs (dependencies first: a later pack's entry replaces an earlier one)."""
    problems: list[Problem] = []
    rules: dict[str, DuplicateRule] = {}
    suffixes: list[str] = []
    for pack in packs:
        for source in pack.of("duplicates"):
            data = source.data
            for suffix in data.get("company_suffixes", []):
                if suffix.strip() and suffix.strip().lower() not in suffixes:
                    suffixes.append(suffix.strip().lower())
            for entity_name, spec in data.get("entities", {}).items():
                path: JsonPath = ("entities", entity_name)

                def problem(where: JsonPath, message: str, code: str = "duplicates.invalid", name: str = entity_name, source: Any = source) -> None:
                    problems.append(source.problem(where, f"duplicates of '{name}': {message}", code))

                entity = entities.get(entity_name)
                if entity is None:
                    problem(path, f"unknown entity '{entity_name}'{did_you_mean(entity_name, entities)}", "entity.unknown")
                    continue
                if entity.child_of:
                    problem(path, f"{entity_name} rows belong to their {entity.child_of}: check the {entity.child_of} instead")
                    continue
                before = len(problems)
                kinds = {"name": NAME_TYPES, "phone": PHONE_TYPES, "email": EMAIL_TYPES}
                for kind, types in kinds.items():
                    if kind not in spec:
                        continue
                    for index, name in enumerate(spec[kind]["fields"]):
                        _check_field(entity, name, types, (*path, kind, "fields", index), problem)
                for index, name in enumerate(spec.get("name", {}).get("same", [])):
                    f = entity.field_map.get(name)
                    where = (*path, "name", "same", index)
                    if f is None:
                        problem(where, f"unknown field '{name}' of {entity_name}{did_you_mean(name, entity.field_map)}", "field.unknown")
                    elif f.type in SAME_EXCLUDED:
                        problem(where, f"'{name}' is a {f.type} field: `same` compares single stored values (a reference, a picklist, a short text)")
                if len(problems) > before:
                    continue
                name_spec, phone_spec, email_spec = spec.get("name"), spec.get("phone"), spec.get("email")
                rules[entity_name] = DuplicateRule(
                    entity=entity_name,
                    place=place_of(source, path),
                    name=NameMatch(tuple(name_spec["fields"]), float(name_spec.get("threshold", DEFAULT_THRESHOLD)), tuple(name_spec.get("same", ()))) if name_spec else None,
                    phone=PhoneMatch(tuple(phone_spec["fields"]), int(phone_spec.get("digits", DEFAULT_DIGITS))) if phone_spec else None,
                    email=EmailMatch(tuple(email_spec["fields"])) if email_spec else None,
                    pack=pack.pack.name,
                )
    return DuplicateRules(MappingProxyType(rules), tuple(suffixes)), problems


def _check_field(entity: Entity, name: str, types: tuple[str, ...], where: JsonPath, problem: Any) -> None:
    f = entity.field_map.get(name)
    if f is None:
        problem(where, f"unknown field '{name}' of {entity.name}{did_you_mean(name, entity.field_map)}", "field.unknown")
    elif f.type not in types:
        problem(where, f"'{name}' is a {f.type} field; expected one of {', '.join(types)}")
    elif name not in entity.search_fields:
        problem(where, f"'{name}' is not one of {entity.name}'s search_fields: candidates are found through the search index (add it to search_fields)")
