"""Reading what the designer typed for a field or an entity: the field editor's inputs become a
field definition (`field_from_input`, with picklist options, the auto-number format and a checked
literal default), the new-object form an entity (`entity_from_input`) and the object page its
properties (`entity_properties_from_input`). Plain data out, or `EditRefused` with a message per
input; the files are written by layer_entity_edits.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from crm_platform.engine.layer_edits import (
    EditRefused,
    input_flag,
    input_int,
    input_label,
    input_text,
    name_problem,
    slug,
)
from crm_platform.metadata import field_types as ft
from crm_platform.metadata.errors import did_you_mean

OPTION_RE = re.compile(r"^[a-z0-9][a-z0-9_]{0,63}$")
ICON_RE = re.compile(r"^[a-z0-9-]{1,40}$")
COLOR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")
CURRENCY_RE = re.compile(r"^[A-Z]{3}$")
# Names the designer's own URLs use (/admin/design/entities/new).
RESERVED_ENTITY_NAMES = ("new",)


# -- reading the input of the field editor --------------------------------------------------------

def _number(data: Mapping[str, Any], key: str, errors: dict[str, str]) -> int | str | None:
    text = input_text(data, key).replace(",", "")
    if not text:
        return None
    try:
        value = Decimal(text)
        assert value.is_finite()
    except (InvalidOperation, AssertionError):
        errors[key] = f"a number, not '{text}'"
        return None
    return int(value) if value == value.to_integral_value() and "." not in text else text


def field_from_input(data: Mapping[str, Any], ftype: str, *, taken: Collection[str] = (), entities: Collection[str] = (),
                     children: Collection[str] = (), editing: str | None = None) -> dict[str, Any]:
    """The field definition the designer's inputs describe (plain data), or EditRefused.

    data: name, label_en/_zh, help_en/_zh, required, indexed, read_only, unique, default, and the
    type's own properties (max_length, min, max, precision, scale, currency, entity, on_delete,
    format, expression, result_type, max_size_mb, accept) and `options`, a list of
    {value, en, zh, color} in display order (blank rows are skipped).
    taken: field names the entity has already; entities: what a reference or N:N may point at;
    children: the entities declaring `child_of` this one (child tables); editing: the name of
    the field being edited (its name and type stay).
    """
    errors: dict[str, str] = {}
    if ftype not in ft.FIELD_TYPES:
        raise EditRefused({"type": f"unknown field type '{ftype}'; expected one of {', '.join(ft.FIELD_TYPE_NAMES)}"})
    kind = ft.FIELD_TYPES[ftype]
    allowed = kind.properties
    name = editing or input_text(data, "name") or slug(input_text(data, "label_en"))
    if editing is None:
        problem = name_problem(name, "field name")
        if problem:
            errors["name"] = problem
        elif name in ft.SYSTEM_COLUMNS or name.endswith("_currency"):
            errors["name"] = f"'{name}' is reserved for a system column; choose another name"
        elif name in taken:
            errors["name"] = f"the entity already has a field '{name}'; choose another name"
    out: dict[str, Any] = {"name": name, "type": ftype}
    lbl = input_label(data, "label", errors)
    if lbl:
        out["label"] = lbl
    help_label = input_label(data, "help", errors, required=False)
    if help_label:
        out["help"] = help_label
    for flag in ("required", "indexed", "read_only", "unique"):
        if flag in allowed and input_flag(data, flag):
            out[flag] = True
    if "max_length" in allowed:
        value = input_int(data, "max_length", 1, 10000, errors)
        if value is not None:
            out["max_length"] = value
    for bound in ("min", "max"):
        if bound in allowed:
            number = _number(data, bound, errors)
            if number is not None:
                out[bound] = number
    if "min" in out and "max" in out and Decimal(str(out["min"])) > Decimal(str(out["max"])):
        errors["max"] = "the maximum is smaller than the minimum"
    if "precision" in allowed:
        precision = input_int(data, "precision", 1, 18, errors)
        scale = input_int(data, "scale", 0, 12, errors)
        if precision is not None:
            out["precision"] = precision
        if scale is not None:
            out["scale"] = scale
        if precision is not None and scale is not None and scale > precision:
            errors["scale"] = f"the decimals ({scale}) cannot be more than the digits ({precision})"
    if "currency" in allowed and input_text(data, "currency"):
        currency = input_text(data, "currency").upper()
        if CURRENCY_RE.match(currency):
            out["currency"] = currency
        else:
            errors["currency"] = "a currency code of three letters, e.g. CNY"
    if "entity" in allowed:
        target = input_text(data, "entity")
        pool = children if ftype == "child_table" else entities
        if not target:
            errors["entity"] = "choose the entity"
        elif ftype == "reference" and target in ft.SYSTEM_TARGETS:  # a user / an org unit
            out["entity"] = target
        elif target not in pool:
            if ftype == "child_table" and target in entities:
                errors["entity"] = f"entity '{target}' is not a child table of this entity: create it with 'child of' this entity"
            else:
                errors["entity"] = f"unknown entity '{target}'{did_you_mean(target, pool)}"
        else:
            out["entity"] = target
    if "on_delete" in allowed and input_text(data, "on_delete") and input_text(data, "on_delete") != "restrict":
        if out.get("entity") in ft.SYSTEM_TARGETS and input_text(data, "on_delete") not in ft.SYSTEM_TARGET_ON_DELETE:
            errors["on_delete"] = f"a reference to a {str(out['entity']).replace('_', ' ')} cannot cascade (users are deactivated, not deleted): choose restrict or set_null"
        elif input_text(data, "on_delete") in ft.ON_DELETE:
            out["on_delete"] = input_text(data, "on_delete")
        else:
            errors["on_delete"] = f"one of {', '.join(ft.ON_DELETE)}"
    if "format" in allowed:
        _auto_number_format(data, out, errors)
    if "expression" in allowed:
        if not input_text(data, "expression"):
            errors["expression"] = "give the formula (rules language), e.g. round(quantity * unit_price, 2)"
        else:
            out["expression"] = " ".join(input_text(data, "expression").split())
        result = input_text(data, "result_type")
        if result not in ft.FORMULA_RESULT_TYPES:
            errors["result_type"] = f"one of {', '.join(ft.FORMULA_RESULT_TYPES)}"
        else:
            out["result_type"] = result
    if "max_size_mb" in allowed:
        value = input_int(data, "max_size_mb", 1, 1024, errors)
        if value is not None:
            out["max_size_mb"] = value
    if "accept" in allowed and input_text(data, "accept"):
        out["accept"] = [a.strip() for a in input_text(data, "accept").split(",") if a.strip()]
    if "options" in allowed:
        options = options_from_input(data.get("options") or [], errors)
        if options:
            out["options"] = options
        elif "options" not in errors:
            errors["options"] = "give at least one option"
    if "default" in allowed and ftype not in ("reference", "file", "child_table", "many_to_many"):
        _default(data, out, errors)
    if errors:
        raise EditRefused(errors)
    return out


def _auto_number_format(data: Mapping[str, Any], out: dict[str, Any], errors: dict[str, str]) -> None:
    from crm_platform.metadata.autonumber_format import parse_format

    text = input_text(data, "format")
    if not text:
        errors["format"] = "give the numbering, e.g. EX-{YYYY}-{seq:4}"
        return
    try:
        parse_format(text)
    except ValueError as exc:
        errors["format"] = f"bad numbering {text!r}: {exc}"
        return
    if len(text) > 48:
        errors["format"] = "at most 48 characters"
        return
    out["format"] = text


def options_from_input(rows: Iterable[Mapping[str, Any]], errors: dict[str, str]) -> list[dict[str, Any]]:
    """Picklist options from rows {value, en, zh, color}; blank rows are skipped, a blank value
    is derived from the English label."""
    options: list[dict[str, Any]] = []
    seen: set[str] = set()
    for number, row in enumerate(rows, 1):
        value, en, zh, color = (input_text(row, k) for k in ("value", "en", "zh", "color"))
        if not (value or en or zh or color):
            continue
        value = value or slug(en, 64)
        where = f"option {number}"
        if not OPTION_RE.match(value):
            errors["options"] = f"{where}: value '{value}' must be lowercase letters, digits and underscores (at most 64)"
        elif value in seen:
            errors["options"] = f"{where}: the value '{value}' is listed twice"
        elif not en or not zh:
            errors["options"] = f"{where}: give the label in English and Chinese"
        elif color and not COLOR_RE.match(color):
            errors["options"] = f"{where}: the colour is written #rrggbb, e.g. #1e88e5"
        seen.add(value)
        option: dict[str, Any] = {"value": value, "label": {"en": en, "zh-CN": zh}}
        if color:
            option["color"] = color.lower()
        options.append(option)
    return options


def _default(data: Mapping[str, Any], out: dict[str, Any], errors: dict[str, str]) -> None:
    """A literal default of the field's type, checked as the loader checks it."""
    from crm_platform.metadata.assembly import build_options
    from crm_platform.metadata.model import Field, Label, Place
    from crm_platform.metadata.values import parse_value

    ftype = out["type"]
    raw = data.get("default")
    if ftype == "multi_picklist":
        items = raw if isinstance(raw, list) else input_text(data, "default").split(",")
        value: Any = [str(v).strip() for v in items if str(v).strip()]
    elif ftype == "boolean":
        text = input_text(data, "default").lower()
        value = {"true": True, "yes": True, "on": True, "false": False, "no": False}.get(text) if text else None
        if text and value is None:
            errors["default"] = "yes, no or blank"
            return
    else:
        value = input_text(data, "default")
    if value in (None, "", []):
        return
    probe = Field(out["name"], ftype, Label("", ""), Place("designer"), max_length=out.get("max_length"), precision=out.get("precision"),
                  scale=out.get("scale"), min=out.get("min"), max=out.get("max"), options=build_options(out.get("options", [])))
    try:
        parse_value(probe, value)
    except ValueError as exc:
        errors["default"] = f"not a valid default: {exc}"
        return
    out["default"] = int(value) if ftype == "integer" else value


# -- entities ------------------------------------------------------------------------------------

def entity_from_input(data: Mapping[str, Any], *, taken: Collection[str], entities: Collection[str] = ()) -> dict[str, Any]:
    """A new entity (plain data) from the inputs name, label_en/_zh, plural_en/_zh, icon,
    child_of and its title field title_name, title_en/_zh (a required text field)."""
    errors: dict[str, str] = {}
    name = input_text(data, "name") or slug(input_text(data, "label_en"))
    problem = name_problem(name, "object name")
    if problem:
        errors["name"] = problem
    elif name in taken:
        errors["name"] = f"an entity '{name}' exists already; choose another name"
    elif name in RESERVED_ENTITY_NAMES:
        errors["name"] = f"'{name}' is reserved by the designer; choose another name"
    doc: dict[str, Any] = {"name": name}
    lbl = input_label(data, "label", errors)
    if lbl:
        doc["label"] = lbl
    plural = input_label(data, "plural", errors, required=False)
    if plural:
        doc["plural_label"] = plural
    icon = input_text(data, "icon")
    if icon:
        if ICON_RE.match(icon):
            doc["icon"] = icon
        else:
            errors["icon"] = "an icon name: lowercase letters, digits and dashes"
    parent = input_text(data, "child_of")
    if parent:
        if parent in entities:
            doc["child_of"] = parent
        else:
            errors["child_of"] = f"unknown entity '{parent}'{did_you_mean(parent, entities)}"
    title = input_text(data, "title_name") or slug(input_text(data, "title_en")) or "name"
    problem = name_problem(title, "title field name")
    if problem:
        errors["title_name"] = problem
    elif title in ft.SYSTEM_COLUMNS or title.endswith("_currency"):
        errors["title_name"] = f"'{title}' is reserved for a system column; choose another name"
    title_label = input_label(data, "title", errors)
    if errors:
        raise EditRefused(errors)
    doc["title_field"] = title
    doc["search_fields"] = [title]
    doc["fields"] = [{"name": title, "type": "text", "label": title_label, "required": True}]
    return doc


def entity_properties_from_input(data: Mapping[str, Any], stored_fields: Collection[str]) -> dict[str, Any]:
    """label, plural_label, icon (None removes it) and title_field from the object page's inputs."""
    errors: dict[str, str] = {}
    out: dict[str, Any] = {}
    lbl = input_label(data, "label", errors)
    if lbl:
        out["label"] = lbl
    out["plural_label"] = input_label(data, "plural", errors, required=False)
    icon = input_text(data, "icon")
    if icon and not ICON_RE.match(icon):
        errors["icon"] = "an icon name: lowercase letters, digits and dashes"
    out["icon"] = icon or None
    title = input_text(data, "title_field")
    if title and title not in stored_fields:
        errors["title_field"] = f"'{title}' is not a stored field of this entity{did_you_mean(title, stored_fields)}"
    out["title_field"] = title or None
    if errors:
        raise EditRefused(errors)
    return out
