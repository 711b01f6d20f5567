"""From the Registry to SQLAlchemy tables: one table per entity, typed columns, FKs, indexes.

`ColumnSpec` is the plain-data description of one column; the migration planner compares
specs (stored in crm_schema_column) instead of reflected database types, so the plan is the
same on SQLite and PostgreSQL.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields
from typing import Any

import sqlalchemy as sa

from crm_platform.engine.column_types import DelimitedList, ExactDecimal, UTCDateTime
from crm_platform.engine.system_tables import IdType, define_system_tables
from crm_platform.metadata import field_types as ft
from crm_platform.metadata.model import Entity, Field, Registry

ON_DELETE = {"restrict": "RESTRICT", "set_null": "SET NULL", "cascade": "CASCADE"}


@dataclass(frozen=True)
class ColumnSpec:
    """One column: its storage kind and size, and for references the table it points at."""

    name: str
    field: str
    kind: str  # string, text, integer, decimal, boolean, date, datetime, list, reference
    length: int | None = None
    precision: int | None = None
    scale: int | None = None
    target: str | None = None
    on_delete: str | None = None
    indexed: bool = False
    unique: bool = False

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ColumnSpec:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in json.loads(text).items() if k in known})

    def storage_equal(self, other: ColumnSpec) -> bool:
        """Same storage (ignoring name, indexes and the field it belongs to)."""
        keys = ("kind", "length", "precision", "scale", "target", "on_delete")
        return all(getattr(self, k) == getattr(other, k) for k in keys)


def field_columns(entity: Entity, field: Field, indexed: bool = False) -> list[ColumnSpec]:
    """The columns storing `field` (none for child tables and N:N; two for money)."""
    kind = field.value_type
    idx = indexed or field.indexed
    name = field.name
    if field.type in ("child_table", "many_to_many"):
        return []
    if field.type == "reference":
        return [ColumnSpec(name, name, "reference", target=reference_table(field), on_delete=field.on_delete, indexed=True)]
    if field.type == "file":
        return [ColumnSpec(name, name, "reference", target="crm_file", on_delete="set_null", indexed=True)]
    if field.type == "auto_number":
        return [ColumnSpec(name, name, "string", length=ft.AUTO_NUMBER_LENGTH, indexed=True, unique=True)]
    if kind == "text":
        return [ColumnSpec(name, name, "string", length=field.max_length or ft.DEFAULT_TEXT_LENGTH, indexed=idx, unique=field.unique)]
    if kind == "long_text":
        return [ColumnSpec(name, name, "text")]
    if kind in ("email", "phone", "url", "picklist"):
        length = {"email": ft.EMAIL_LENGTH, "phone": ft.PHONE_LENGTH, "url": ft.URL_LENGTH, "picklist": ft.PICKLIST_LENGTH}[kind]
        return [ColumnSpec(name, name, "string", length=length, indexed=idx or kind == "picklist", unique=field.unique)]
    if kind == "multi_picklist":
        return [ColumnSpec(name, name, "list")]
    if kind == "integer":
        return [ColumnSpec(name, name, "integer", indexed=idx, unique=field.unique)]
    if kind in ("decimal", "money", "percent"):
        default = {"decimal": ft.DEFAULT_DECIMAL, "money": ft.DEFAULT_MONEY, "percent": ft.PERCENT_PRECISION}[kind]
        precision = field.precision or default[0]
        scale = field.scale if field.scale is not None else default[1]
        cols = [ColumnSpec(name, name, "decimal", precision=precision, scale=scale, indexed=idx)]
        if kind == "money" and field.type == "money":
            cols.append(ColumnSpec(f"{name}_currency", name, "string", length=3))
        return cols
    if kind in ("boolean", "date", "datetime"):
        return [ColumnSpec(name, name, kind, indexed=idx)]
    raise ValueError(f"no storage for field type {field.type}")


def reference_table(field: Field) -> str:
    """The table a reference points at: a pack entity's, or crm_user / crm_org_unit for the
    reserved targets `user` and `org_unit`."""
    system = field.system_target
    return ft.SYSTEM_TARGETS[system] if system else f"ent_{field.entity}"


def sa_type(spec: ColumnSpec) -> sa.types.TypeEngine[Any]:
    if spec.kind == "string":
        return sa.String(spec.length)
    if spec.kind == "text":
        return sa.Text()
    if spec.kind == "integer":
        return sa.BigInteger()
    if spec.kind == "decimal":
        return ExactDecimal(spec.precision or 18, spec.scale or 0)
    if spec.kind == "boolean":
        return sa.Boolean()
    if spec.kind == "date":
        return sa.Date()
    if spec.kind == "datetime":
        return UTCDateTime()
    if spec.kind == "list":
        return DelimitedList()
    if spec.kind == "reference":
        return IdType
    raise ValueError(f"unknown column kind {spec.kind}")


def sa_column(spec: ColumnSpec) -> sa.Column[Any]:
    args: list[Any] = []
    if spec.kind == "reference" and spec.target:
        args.append(sa.ForeignKey(f"{spec.target}.id", ondelete=ON_DELETE[spec.on_delete or "restrict"], use_alter=True, name=constraint_name("fk", spec.target, spec.name)))
    return sa.Column(spec.name, sa_type(spec), *args, nullable=True)


def constraint_name(prefix: str, table: str, column: str) -> str:
    name = f"{prefix}_{table}_{column}"
    if len(name) <= 63:
        return name
    digest = hashlib.sha1(name.encode()).hexdigest()[:8]
    return f"{name[:54]}_{digest}"


def system_column_specs(entity: Entity) -> list[sa.Column[Any]]:
    cols: list[sa.Column[Any]] = [
        sa.Column("id", IdType, primary_key=True, autoincrement=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", IdType, sa.ForeignKey("crm_user.id", ondelete="SET NULL")),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("updated_by", IdType, sa.ForeignKey("crm_user.id", ondelete="SET NULL")),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("deleted_at", UTCDateTime()),
    ]
    if entity.owned:
        cols.append(sa.Column("owner_id", IdType, sa.ForeignKey("crm_user.id", ondelete="SET NULL")))
        cols.append(sa.Column("unit_id", IdType, sa.ForeignKey("crm_org_unit.id", ondelete="SET NULL")))
    if entity.child_of:
        cols.append(sa.Column("parent_id", IdType, sa.ForeignKey(f"ent_{entity.child_of}.id", ondelete="CASCADE", use_alter=True, name=constraint_name("fk", f"ent_{entity.child_of}", "parent_id")), nullable=False))
    else:
        cols.append(sa.Column("state", sa.String(64)))
    return cols


SYSTEM_INDEXED = ("owner_id", "unit_id", "parent_id", "created_at", "updated_at", "deleted_at")


def listed_fields(registry: Registry, entity: str) -> set[str]:
    """Fields used to sort list views: they get indexes."""
    return {key.field for view in registry.list_views_of(entity) for key in view.sort}


@dataclass
class Schema:
    """The SQLAlchemy tables of one Registry."""

    metadata: sa.MetaData
    tables: dict[str, sa.Table]  # entity name -> table
    junctions: dict[tuple[str, str], sa.Table]  # (entity, field) -> junction table
    specs: dict[str, dict[str, ColumnSpec]]  # table name -> column name -> spec
    system: dict[str, sa.Table]

    def table(self, entity: str) -> sa.Table:
        return self.tables[entity]


def junction_name(entity: str, field: str) -> str:
    return f"ent_{entity}__{field}"


def build_schema(registry: Registry) -> Schema:
    md = sa.MetaData()
    system = define_system_tables(md)
    tables: dict[str, sa.Table] = {}
    specs: dict[str, dict[str, ColumnSpec]] = {}
    junctions: dict[tuple[str, str], sa.Table] = {}
    for entity in registry.entities.values():
        sorted_fields = listed_fields(registry, entity.name)
        column_specs = [
            spec
            for f in entity.fields
            for spec in field_columns(entity, f, indexed=f.name in sorted_fields)
        ]
        table_name = entity.table_name
        specs[table_name] = {s.name: s for s in column_specs}
        table = sa.Table(table_name, md, *system_column_specs(entity), *(sa_column(s) for s in column_specs))
        for col in table.columns:
            if col.name in SYSTEM_INDEXED:
                sa.Index(constraint_name("ix", table_name, col.name), col)
        for spec in column_specs:
            if spec.indexed or spec.unique:
                sa.Index(constraint_name("ux" if spec.unique else "ix", table_name, spec.name), table.c[spec.name], unique=spec.unique)
        for index_fields in entity.indexes:
            # filters first, then deleted_at (every list skips the recycle bin), then the sort field
            columns = [*(table.c[name] for name in index_fields[:-1]), table.c.deleted_at, table.c[index_fields[-1]]]
            sa.Index(constraint_name("ix", table_name, "_".join(index_fields) + "_list"), *columns)
        tables[entity.name] = table
    for entity in registry.entities.values():
        for f in entity.fields:
            if f.type == "many_to_many":
                name = junction_name(entity.name, f.name)
                junctions[(entity.name, f.name)] = sa.Table(
                    name, md,
                    sa.Column("source_id", IdType, sa.ForeignKey(f"{entity.table_name}.id", ondelete="CASCADE"), primary_key=True),
                    sa.Column("target_id", IdType, sa.ForeignKey(f"ent_{f.entity}.id", ondelete="CASCADE"), primary_key=True, index=True),
                )
    return Schema(md, tables, junctions, specs, system)
