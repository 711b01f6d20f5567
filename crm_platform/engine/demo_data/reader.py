"""Reading the demo profiles the packs ship (`demo_profile.yaml` at the top of a pack), checking
each against its JSON Schema, and layering them in pack order: a later pack may add entities,
word lists and owner groups, and override an entity's settings or single fields of it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crm_platform.engine.demo_data.model import Located
from crm_platform.metadata.errors import PackError, Problem
from crm_platform.metadata.model import Registry
from crm_platform.metadata.schema_check import check_against_schema
from crm_platform.metadata.yaml_source import SourceFile, load_yaml_file

PROFILE_FILE = "demo_profile.yaml"
SCHEMA = "demo_profile"


@dataclass
class RawEntity:
    """One entity's settings and field generators as written, each with its place."""

    name: str
    place: Located
    settings: dict[str, tuple[Any, Located]] = field(default_factory=dict)
    fields: dict[str, tuple[Any, Located]] = field(default_factory=dict)


@dataclass
class RawProfile:
    entities: dict[str, RawEntity] = field(default_factory=dict)
    owners: dict[str, tuple[dict[str, Any], Located]] = field(default_factory=dict)
    words: dict[str, tuple[list[Any], Located]] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)


def profile_paths(registry: Registry) -> list[Path]:
    """The profile file of every pack of the site that ships one, dependencies first."""
    return [Path(p.path) / PROFILE_FILE for p in registry.packs if (Path(p.path) / PROFILE_FILE).is_file()]


def read_profiles(paths: Sequence[Path]) -> RawProfile:
    """Parse, schema-check and layer the files. Raises PackError with every problem found."""
    problems: list[Problem] = []
    raw = RawProfile()
    for path in paths:
        source, errors = load_yaml_file(path)
        problems.extend(errors)
        if source is None:
            continue
        schema_problems = check_against_schema(source, SCHEMA)
        problems.extend(schema_problems)
        if schema_problems:
            continue
        raw.files.append(source.path)
        _layer(raw, source)
    if problems:
        raise PackError(problems)
    return raw


def _layer(raw: RawProfile, source: SourceFile) -> None:
    data = source.data
    top = Located(source, ())
    for name, group in data.get("owners", {}).items():
        raw.owners[name] = (group, top.child("owners", name))
    for name, words in data.get("words", {}).items():
        raw.words[name] = (words, top.child("words", name))
    for name, entry in data.get("entities", {}).items():
        where = top.child("entities", name)
        entity = raw.entities.setdefault(name, RawEntity(name, where))
        entity.place = where
        for key, value in entry.items():
            if key == "fields":
                for field_name, spec in value.items():
                    entity.fields[field_name] = (spec, where.child("fields", field_name))
            else:
                entity.settings[key] = (value, where.child(key))
