"""Turning a JSON payload into typed values for an entity, collecting every field error at once."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from crm_platform.engine.column_types import SQLITE_MAX_INTEGER  # the largest id a row can have
from crm_platform.engine.records.errors import FieldError
from crm_platform.metadata import field_types as ft
from crm_platform.metadata.model import Entity, Registry
from crm_platform.metadata.values import is_blank, parse_currency, parse_value

# Keys the platform sets; a payload may carry `version` (the base of an update) and `id` (child rows).
PLATFORM_KEYS = frozenset(ft.SYSTEM_COLUMNS)


@dataclass
class ChildRows:
    """The rows a payload gives for a child table: the complete new list."""

    field: str
    entity: Entity
    rows: list[tuple[int | None, dict[str, Any]]]  # (existing child id or None, values)


@dataclass
class Payload:
    values: dict[str, Any] = field(default_factory=dict)  # column -> value
    children: dict[str, ChildRows] = field(default_factory=dict)
    links: dict[str, list[int]] = field(default_factory=dict)  # many_to_many field -> ids
    errors: list[FieldError] = field(default_factory=list)


def parse_payload(registry: Registry, entity: Entity, data: Any, prefix: str = "", allow_id: bool = False) -> Payload:
    out = Payload()
    if not isinstance(data, dict):
        out.errors.append(FieldError(prefix.rstrip(".") or "body", "expected a JSON object", "type"))
        return out
    for key, raw in data.items():
        path = f"{prefix}{key}"
        if key == "version" or (allow_id and key == "id"):
            continue
        if key in PLATFORM_KEYS:
            out.errors.append(FieldError(path, f"'{key}' is set by the platform and cannot be written", "read_only"))
            continue
        if key.endswith("_currency") and key[: -len("_currency")] in entity.field_map:
            base = entity.field(key[: -len("_currency")])
            if base.type == "money":
                if not is_blank(raw):
                    try:
                        out.values[key] = parse_currency(raw)
                    except ValueError as exc:
                        out.errors.append(FieldError(path, str(exc)))
                continue
        f = entity.field_map.get(key)
        if f is None:
            out.errors.append(FieldError(path, f"unknown field '{key}' of {entity.name}", "unknown_field"))
            continue
        kind = ft.FIELD_TYPES[f.type]
        if not kind.writable:
            out.errors.append(FieldError(path, f"'{key}' is computed by the platform and cannot be written", "read_only"))
            continue
        if f.type == "child_table":
            out.children[key] = _children(registry, f.entity or "", raw, path, out.errors)
            continue
        if f.type == "many_to_many":
            out.links[key] = _links(raw, path, f.entity or "", out.errors)
            continue
        try:
            out.values[key] = parse_value(f, raw)
        except ValueError as exc:
            out.errors.append(FieldError(path, str(exc), "invalid"))
    return out


def _children(registry: Registry, child_name: str, raw: Any, path: str, errors: list[FieldError]) -> ChildRows:
    child = registry.entity(child_name)
    rows: list[tuple[int | None, dict[str, Any]]] = []
    if not isinstance(raw, list):
        errors.append(FieldError(path, "expected a list of rows", "type"))
        return ChildRows(path, child, rows)
    for index, item in enumerate(raw):
        sub = parse_payload(registry, child, item, f"{path}[{index}].", allow_id=True)
        errors.extend(sub.errors)
        child_id = item.get("id") if isinstance(item, dict) else None
        if child_id is not None and (isinstance(child_id, bool) or not isinstance(child_id, int) or not 0 < child_id <= SQLITE_MAX_INTEGER):
            errors.append(FieldError(f"{path}[{index}].id", "expected the id of an existing row", "type"))
            child_id = None
        rows.append((child_id, sub.values))
    return ChildRows(path, child, rows)


def _links(raw: Any, path: str, target: str, errors: list[FieldError]) -> list[int]:
    if not isinstance(raw, list) or any(isinstance(v, bool) or not isinstance(v, int) or not 0 < v <= SQLITE_MAX_INTEGER for v in raw):
        errors.append(FieldError(path, f"expected a list of {target} ids", "type"))
        return []
    return sorted(set(raw))
