"""What the columns of an import file go to: the targets (fields, a money field's currency, the
record id as a key), the mapping suggested from the headers, and the import's settings.

    mapping = suggest_mapping(site, actor, entity, table.headers)   # column -> field by name or label
    settings = ImportSettings(mapping, key="name", mode="valid", duplicates="skip")
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from crm_platform.engine.records.actor import Actor
from crm_platform.engine.records.errors import BadRequest, FieldError
from crm_platform.metadata import field_types as ft
from crm_platform.metadata.model import Entity, Field, Label

if TYPE_CHECKING:
    from crm_platform.engine.site import Site

MODES = ("all", "valid")  # all or nothing | valid rows only
DUPLICATE_CHOICES = ("skip", "import", "update")  # rows that look like existing records (or earlier rows)
KEY_TYPES = ("text", "email", "phone", "integer", "auto_number", "url")
NOT_IMPORTABLE = ("child_table", "file", "formula")
ID_TARGET = "id"
CURRENCY_SUFFIX = "_currency"
ID_LABEL = Label("ID", "ID")


@dataclass(frozen=True)
class Target:
    """What a column may be mapped to: a field, the currency of a money field, or the record id."""

    name: str
    label: Label
    field: Field | None
    writable: bool  # False: only a key to find records (the id, auto-numbers, read-only fields)
    keyable: bool


def targets(site: Site, actor: Actor, entity: Entity) -> list[Target]:
    restricted = site.access.field_access(actor, entity)
    found = [Target(ID_TARGET, ID_LABEL, None, False, True)]
    for f in entity.fields:
        if f.type in NOT_IMPORTABLE or restricted.get(f.name) == "hidden":
            continue
        writable = ft.FIELD_TYPES[f.type].writable and restricted.get(f.name) != "read_only"
        found.append(Target(f.name, f.label, f, writable, f.value_type in KEY_TYPES))
        if f.type == "money" and writable:
            label = Label(f"{f.label.en} currency", f"{f.label.zh_cn}币种")
            found.append(Target(f.name + CURRENCY_SUFFIX, label, None, True, False))
    return found


def normalize_header(text: str) -> str:
    """Case, width, spaces and punctuation do not matter when matching a header to a field."""
    text = unicodedata.normalize("NFKC", str(text))
    return re.sub(r"[\s_\-·.:()*/\\#]+", "", text).casefold()


def suggest_mapping(site: Site, actor: Actor, entity: Entity, headers: Sequence[str]) -> list[str | None]:
    """A target per column whose header is a field's name or its English or Chinese label."""
    names: dict[str, str] = {}
    for target in targets(site, actor, entity):
        if target.writable:  # the id and auto-numbers are mapped when chosen as the key
            for text in (target.name, target.label.en, target.label.zh_cn):
                names.setdefault(normalize_header(text), target.name)
    used: set[str] = set()
    mapping: list[str | None] = []
    for header in headers:
        name = names.get(normalize_header(header))
        if name is not None and name not in used:
            used.add(name)
            mapping.append(name)
        else:
            mapping.append(None)
    return mapping


@dataclass
class ImportSettings:
    mapping: list[str | None]  # per column: a target name, or None to skip the column
    key: str | None = None  # update-or-insert by this target; None: every row creates a record
    mode: str = "all"
    # rows that look like an existing record or an earlier row of the file (the pack's duplicate
    # rules): "skip" them, "import" them anyway, or "update" the matched record (with a key only)
    duplicates: str = "skip"

    def as_dict(self) -> dict[str, Any]:
        return {"mapping": list(self.mapping), "key": self.key, "mode": self.mode, "duplicates": self.duplicates}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ImportSettings:
        return cls(list(data.get("mapping") or []), data.get("key") or None, data.get("mode") or "all", data.get("duplicates") or "skip")


def parse_mapping(raw: Any, headers: Sequence[str]) -> list[str | None]:
    """A mapping sent as a list (per column) or an object {header or column number: field}."""
    if isinstance(raw, list):
        mapping = [str(v) if isinstance(v, str) and v.strip() else None for v in raw[: len(headers)]]
        return mapping + [None] * (len(headers) - len(mapping))
    if not isinstance(raw, dict):
        raise BadRequest("the mapping is {column header: field name}", [FieldError("mapping", "expected an object or a list", "type")])
    mapping = [None] * len(headers)
    errors = []
    for column, target in raw.items():
        index = headers.index(column) if column in headers else (int(column) - 1 if str(column).isdigit() and 0 < int(column) <= len(headers) else None)
        if index is None:
            errors.append(FieldError("mapping", f"the file has no column '{column}'", "unknown_column"))
            continue
        mapping[index] = target if isinstance(target, str) and target.strip() else None
    if errors:
        raise BadRequest(errors[0].message, errors)
    return mapping
