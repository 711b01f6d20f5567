"""The metadata model: immutable, plain-data descriptions of packs, entities, fields and screens."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import Any

LANGUAGES = ("en", "zh-CN")


@dataclass(frozen=True)
class Place:
    """Where a piece of metadata was declared (file and 1-based line/column)."""

    file: str
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        parts = [self.file]
        if self.line is not None:
            parts.append(str(self.line))
            if self.column is not None:
                parts.append(str(self.column))
        return ":".join(parts)


@dataclass(frozen=True)
class Label:
    """A user-facing text in English and Simplified Chinese."""

    en: str
    zh_cn: str

    @classmethod
    def from_data(cls, data: Mapping[str, str] | str | None, fallback: str = "") -> Label:
        if data is None:
            text = fallback.replace("_", " ").capitalize()
            return cls(text, text)
        if isinstance(data, str):
            return cls(data, data)
        return cls(data.get("en", fallback), data.get("zh-CN", data.get("en", fallback)))

    def get(self, language: str) -> str:
        return self.zh_cn if language.lower().startswith("zh") else self.en

    def as_dict(self) -> dict[str, str]:
        return {"en": self.en, "zh-CN": self.zh_cn}


@dataclass(frozen=True)
class Option:
    """One value of a picklist, in display order."""

    value: str
    label: Label
    color: str | None = None


@dataclass(frozen=True)
class Field:
    """A field of an entity. Which properties matter depends on `type` (see field_types)."""

    name: str
    type: str
    label: Label
    place: Place
    required: bool = False
    default: Any = None
    help: Label | None = None
    indexed: bool = False
    unique: bool = False
    read_only: bool = False
    renamed_from: str | None = None
    max_length: int | None = None
    precision: int | None = None
    scale: int | None = None
    min: Any = None
    max: Any = None
    currency: str | None = None
    options: tuple[Option, ...] = ()
    entity: str | None = None  # target of reference, child_table and many_to_many
    on_delete: str = "restrict"
    format: str | None = None  # auto_number format, e.g. HT-{YYYY}-{seq:4}
    expression: str | None = None  # formula expression (rules language)
    expression_place: Place | None = None
    result_type: str | None = None  # formula result type
    max_size_mb: int | None = None
    accept: tuple[str, ...] = ()
    pack: str = ""

    @cached_property
    def option_values(self) -> tuple[str, ...]:
        return tuple(o.value for o in self.options)

    @property
    def system_target(self) -> str | None:
        """For a reference to a user or an org unit: "user" or "org_unit" (see SYSTEM_TARGETS)."""
        from crm_platform.metadata.field_types import SYSTEM_TARGETS

        return self.entity if self.type == "reference" and self.entity in SYSTEM_TARGETS else None

    @property
    def value_type(self) -> str:
        """The type of the stored value (a formula stores its result type)."""
        if self.type == "formula":
            return self.result_type or "text"
        return self.type


@dataclass(frozen=True)
class Entity:
    """A business object: one table, its fields, and how it is titled, searched and owned."""

    name: str
    label: Label
    plural_label: Label
    fields: tuple[Field, ...]
    place: Place
    title_field: str | None = None
    search_fields: tuple[str, ...] = ()
    owned: bool = True
    child_of: str | None = None
    icon: str | None = None
    description: Label | None = None
    pack: str = ""
    timeline_date: str | None = None  # records appear on the timelines of what they reference
    indexes: tuple[tuple[str, ...], ...] = ()  # composite list indexes: filters..., sort field

    @cached_property
    def field_map(self) -> Mapping[str, Field]:
        return MappingProxyType({f.name: f for f in self.fields})

    def field(self, name: str) -> Field:
        return self.field_map[name]

    def has_field(self, name: str) -> bool:
        return name in self.field_map

    @property
    def stored_fields(self) -> tuple[Field, ...]:
        from crm_platform.metadata.field_types import FIELD_TYPES

        return tuple(f for f in self.fields if FIELD_TYPES[f.type].stored)

    @property
    def table_name(self) -> str:
        return f"ent_{self.name}"


@dataclass(frozen=True)
class SortKey:
    field: str
    descending: bool = False


@dataclass(frozen=True)
class ListView:
    """A named list of an entity's records: columns, default sort, page size."""

    name: str
    entity: str
    label: Label
    columns: tuple[str, ...]
    place: Place
    sort: tuple[SortKey, ...] = ()
    page_size: int = 50
    default: bool = False
    pack: str = ""
    filter: str | None = None  # a rules-language condition: only matching records are listed
    filter_place: Place | None = None


@dataclass(frozen=True)
class FormSection:
    label: Label
    fields: tuple[str, ...]
    columns: int = 2
    collapsed: bool = False


@dataclass(frozen=True)
class Form:
    """The layout of an entity's create/edit/detail screen: sections of fields in columns."""

    name: str
    entity: str
    label: Label
    sections: tuple[FormSection, ...]
    place: Place
    related: tuple[str, ...] = ()  # "entity.field" pairs shown as related lists
    pack: str = ""


@dataclass(frozen=True)
class MenuItem:
    entity: str
    label: Label
    view: str | None = None
    icon: str | None = None


@dataclass(frozen=True)
class Menu:
    """A navigation group with its items, ordered by `order` across packs."""

    name: str
    label: Label
    items: tuple[MenuItem, ...]
    place: Place
    order: int = 100
    icon: str | None = None
    pack: str = ""


@dataclass(frozen=True)
class SeedRecord:
    key: str
    values: Mapping[str, Any]
    place: Place
    owner: str | None = None  # username of the owner (demo data), else the loading user


@dataclass(frozen=True)
class SeedSet:
    """Records a pack ships: `seed` data is always loaded, `demo` data only by `demo load`."""

    entity: str
    kind: str  # "seed" or "demo"
    records: tuple[SeedRecord, ...]
    place: Place
    pack: str = ""


@dataclass(frozen=True)
class RuleSource:
    """A rules file of a pack, as text: the rules layer parses and checks it against the Registry."""

    file: str
    text: str
    pack: str


@dataclass(frozen=True)
class PackInfo:
    name: str
    version: str
    title: Label
    path: str
    depends: tuple[str, ...] = ()
    description: Label | None = None


@dataclass(frozen=True)
class Registry:
    """One immutable, versioned snapshot of everything the packs declare.

    Built only from a completely valid input; `content_hash` identifies the version.
    """

    packs: tuple[PackInfo, ...]
    entities: Mapping[str, Entity]
    list_views: Mapping[str, ListView]
    forms: Mapping[str, Form]
    menus: tuple[Menu, ...]
    seeds: tuple[SeedSet, ...]
    content_hash: str = ""
    extra: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def entity(self, name: str) -> Entity:
        return self.entities[name]

    def list_views_of(self, entity: str) -> list[ListView]:
        return [v for v in self.list_views.values() if v.entity == entity]

    def default_list_view(self, entity: str) -> ListView | None:
        views = self.list_views_of(entity)
        for view in views:
            if view.default:
                return view
        return views[0] if views else None

    def forms_of(self, entity: str) -> list[Form]:
        return [f for f in self.forms.values() if f.entity == entity]

    def children_of(self, entity: str) -> list[Entity]:
        return [e for e in self.entities.values() if e.child_of == entity]

    def references_to(self, entity: str) -> list[tuple[Entity, Field]]:
        """Every (entity, reference field) pointing at `entity`: the related lists."""
        return [
            (e, f)
            for e in self.entities.values()
            for f in e.fields
            if f.type == "reference" and f.entity == entity
        ]
