"""The object designer's actions as edits of the site layer's files: YAML in, YAML out.

Every function takes the layer's files ({"entities/exhibition.yaml": "<yaml>", ...}) and returns
the complete new files dict; nothing here knows about HTTP or the database. What the designer
typed is checked first (`field_from_input`, `entity_from_input`, ...): a refusal raises
`EditRefused` with a message per input, and no file is produced.

Where things live in the layer (the pack format, README "Pack format v1"):
- an entity designed here: `entities/<name>.yaml`, the whole definition;
- fields added to a pack's entity: an extension `entities/<name>.yaml` with `extends: <name>`
  (a pack's own fields are never edited or removed: an extension cannot);
- the form: `forms/<entity>.yaml`, either the form `main` (an entity of the layer, or a pack
  entity whose packs declare no `main` form) or `extends: main` adding sections to the pack's;
- list views: `views/<entity>.yaml`; a pack's views cannot be replaced, only joined by views
  with other names.

Files are edited with ruamel.yaml's round trip, so what an admin wrote by hand (comments,
order, styles) is kept; new parts are written in the packs' compact style.
"""

from __future__ import annotations

import io
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from crm_platform.metadata import field_types as ft
from crm_platform.metadata.errors import did_you_mean

NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,27}$")
OPTION_RE = re.compile(r"^[a-z0-9][a-z0-9_]{0,63}$")
ICON_RE = re.compile(r"^[a-z0-9-]{1,40}$")
COLOR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")
CURRENCY_RE = re.compile(r"^[A-Z]{3}$")
NAME_RULE = "use lowercase letters, digits and underscores, starting with a letter, at most 28 characters"
# Names the designer's own URLs use (/admin/design/entities/new).
RESERVED_ENTITY_NAMES = ("new",)
# System columns a list view may show and sort by (as the loader allows).
LISTABLE_SYSTEM_COLUMNS = ("id", "created_at", "updated_at", "created_by", "updated_by", "owner_id", "state")
# The order properties are written in, as the packs write them.
FIELD_KEY_ORDER = ("name", "type", "entity", "label", "help", "required", "default", "max_length", "min", "max", "precision", "scale",
                   "currency", "unique", "indexed", "read_only", "on_delete", "format", "expression", "result_type", "max_size_mb", "accept",
                   "renamed_from", "options")
ENTITY_KEY_ORDER = ("name", "extends", "label", "plural_label", "description", "icon", "child_of", "owned", "title_field", "search_fields",
                    "timeline_date", "indexes", "fields", "picklist_values")
MAIN_FORM = "main"


class EditRefused(ValueError):
    """What the designer typed does not make a valid change: a message per input name."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        self.errors = dict(errors)
        super().__init__("; ".join(f"{k}: {v}" for k, v in self.errors.items()))


# -- YAML ------------------------------------------------------------------------------------

def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.width = 4096
    yaml.allow_unicode = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.preserve_quotes = True  # type: ignore[assignment]
    return yaml


def load(text: str) -> Any:
    return _yaml().load(text) if text.strip() else CommentedMap()


def dump(data: Any) -> str:
    out = io.StringIO()
    _yaml().dump(data, out)
    return out.getvalue()


def flow(mapping: Mapping[str, Any]) -> CommentedMap:
    """A mapping written on one line: {en: Name, zh-CN: 名称}."""
    node = CommentedMap(mapping)
    node.fa.set_flow_style()
    return node


def flow_list(items: Iterable[Any]) -> CommentedSeq:
    node = CommentedSeq(items)
    node.fa.set_flow_style()
    return node


def block(mapping: Mapping[str, Any]) -> CommentedMap:
    node = CommentedMap(mapping)
    node.fa.set_block_style()
    return node


def label(en: str, zh: str) -> CommentedMap:
    return flow({"en": en, "zh-CN": zh})


def styled_field(data: Mapping[str, Any]) -> CommentedMap:
    """A field as the packs write it: on one line, or a block when it has picklist options."""
    ordered = {k: data[k] for k in FIELD_KEY_ORDER if k in data}
    ordered.update({k: v for k, v in data.items() if k not in ordered})
    for key in ("label", "help"):
        if key in ordered and isinstance(ordered[key], Mapping):
            ordered[key] = label(ordered[key]["en"], ordered[key]["zh-CN"])
    if isinstance(ordered.get("default"), list):
        ordered["default"] = flow_list(ordered["default"])
    if "accept" in ordered:
        ordered["accept"] = flow_list(ordered["accept"])
    if "options" in ordered:
        ordered["options"] = CommentedSeq([flow({**o, "label": label(o["label"]["en"], o["label"]["zh-CN"])}) for o in ordered["options"]])
        return block(ordered)
    return flow(ordered)


def _set_in_order(doc: CommentedMap, key: str, value: Any, order: tuple[str, ...]) -> None:
    """Set `key`, placing a new key where `order` puts it among the keys already there."""
    if key in doc:
        doc[key] = value
        return
    rank = order.index(key) if key in order else len(order)
    position = len(doc)
    for i, existing in enumerate(doc):
        if existing in order and order.index(existing) > rank:
            position = i
            break
    doc.insert(position, key, value)


# -- names ------------------------------------------------------------------------------------

def slug(text: str, limit: int = 28) -> str:
    """A snake_case name from an English label: "Booth size (m²)" -> booth_size_m."""
    words = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
    if words and not words[0].isalpha():
        words = f"f_{words}"
    return words[:limit].rstrip("_")


def name_problem(name: str, what: str = "name") -> str | None:
    """Why `name` is not a name of the pack format, or None."""
    if not name:
        return f"give a {what}"
    if not NAME_RE.match(name):
        hint = slug(name)
        return f"'{name}' is not a valid {what}: {NAME_RULE}" + (f" (e.g. {hint})" if hint and NAME_RE.match(hint) else "")
    return None


def _label_from(data: Mapping[str, Any], prefix: str, errors: dict[str, str], required: bool = True) -> dict[str, str] | None:
    """{en, zh-CN} from the inputs <prefix>_en and <prefix>_zh; both languages, or neither when optional."""
    en, zh = _text(data, f"{prefix}_en"), _text(data, f"{prefix}_zh")
    if not en and not zh and not required:
        return None
    if not en:
        errors[f"{prefix}_en"] = "give the English text (labels are in English and Chinese)"
    if not zh:
        errors[f"{prefix}_zh"] = "give the Chinese text (labels are in English and Chinese)"
    return {"en": en, "zh-CN": zh} if en and zh else None


def _text(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    return value.strip() if isinstance(value, str) else ""


def _flag(data: Mapping[str, Any], key: str) -> bool:
    return _text(data, key).lower() in ("on", "true", "1", "yes")


def _int(data: Mapping[str, Any], key: str, low: int, high: int, errors: dict[str, str]) -> int | None:
    text = _text(data, key)
    if not text:
        return None
    if not re.fullmatch(r"[+-]?\d+", text) or not low <= int(text) <= high:
        errors[key] = f"a whole number from {low} to {high}"
        return None
    return int(text)


def _number(data: Mapping[str, Any], key: str, errors: dict[str, str]) -> int | str | None:
    text = _text(data, key).replace(",", "")
    if not text:
        return None
    try:
        value = Decimal(text)
        assert value.is_finite()
    except (InvalidOperation, AssertionError):
        errors[key] = f"a number, not '{text}'"
        return None
    return int(value) if value == value.to_integral_value() and "." not in text else text


# -- reading the input of the field editor --------------------------------------------------------

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
    name = editing or _text(data, "name") or slug(_text(data, "label_en"))
    if editing is None:
        problem = name_problem(name, "field name")
        if problem:
            errors["name"] = problem
        elif name in ft.SYSTEM_COLUMNS or name.endswith("_currency"):
            errors["name"] = f"'{name}' is reserved for a system column; choose another name"
        elif name in taken:
            errors["name"] = f"the entity already has a field '{name}'; choose another name"
    out: dict[str, Any] = {"name": name, "type": ftype}
    lbl = _label_from(data, "label", errors)
    if lbl:
        out["label"] = lbl
    help_label = _label_from(data, "help", errors, required=False)
    if help_label:
        out["help"] = help_label
    for flag in ("required", "indexed", "read_only", "unique"):
        if flag in allowed and _flag(data, flag):
            out[flag] = True
    if "max_length" in allowed:
        value = _int(data, "max_length", 1, 10000, errors)
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
        precision = _int(data, "precision", 1, 18, errors)
        scale = _int(data, "scale", 0, 12, errors)
        if precision is not None:
            out["precision"] = precision
        if scale is not None:
            out["scale"] = scale
        if precision is not None and scale is not None and scale > precision:
            errors["scale"] = f"the decimals ({scale}) cannot be more than the digits ({precision})"
    if "currency" in allowed and _text(data, "currency"):
        currency = _text(data, "currency").upper()
        if CURRENCY_RE.match(currency):
            out["currency"] = currency
        else:
            errors["currency"] = "a currency code of three letters, e.g. CNY"
    if "entity" in allowed:
        target = _text(data, "entity")
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
    if "on_delete" in allowed and _text(data, "on_delete") and _text(data, "on_delete") != "restrict":
        if out.get("entity") in ft.SYSTEM_TARGETS and _text(data, "on_delete") not in ft.SYSTEM_TARGET_ON_DELETE:
            errors["on_delete"] = f"a reference to a {str(out['entity']).replace('_', ' ')} cannot cascade (users are deactivated, not deleted): choose restrict or set_null"
        elif _text(data, "on_delete") in ft.ON_DELETE:
            out["on_delete"] = _text(data, "on_delete")
        else:
            errors["on_delete"] = f"one of {', '.join(ft.ON_DELETE)}"
    if "format" in allowed:
        _auto_number_format(data, out, errors)
    if "expression" in allowed:
        if not _text(data, "expression"):
            errors["expression"] = "give the formula (rules language), e.g. round(quantity * unit_price, 2)"
        else:
            out["expression"] = " ".join(_text(data, "expression").split())
        result = _text(data, "result_type")
        if result not in ft.FORMULA_RESULT_TYPES:
            errors["result_type"] = f"one of {', '.join(ft.FORMULA_RESULT_TYPES)}"
        else:
            out["result_type"] = result
    if "max_size_mb" in allowed:
        value = _int(data, "max_size_mb", 1, 1024, errors)
        if value is not None:
            out["max_size_mb"] = value
    if "accept" in allowed and _text(data, "accept"):
        out["accept"] = [a.strip() for a in _text(data, "accept").split(",") if a.strip()]
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

    text = _text(data, "format")
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
        value, en, zh, color = (_text(row, k) for k in ("value", "en", "zh", "color"))
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
        items = raw if isinstance(raw, list) else _text(data, "default").split(",")
        value: Any = [str(v).strip() for v in items if str(v).strip()]
    elif ftype == "boolean":
        text = _text(data, "default").lower()
        value = {"true": True, "yes": True, "on": True, "false": False, "no": False}.get(text) if text else None
        if text and value is None:
            errors["default"] = "yes, no or blank"
            return
    else:
        value = _text(data, "default")
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
    name = _text(data, "name") or slug(_text(data, "label_en"))
    problem = name_problem(name, "object name")
    if problem:
        errors["name"] = problem
    elif name in taken:
        errors["name"] = f"an entity '{name}' exists already; choose another name"
    elif name in RESERVED_ENTITY_NAMES:
        errors["name"] = f"'{name}' is reserved by the designer; choose another name"
    doc: dict[str, Any] = {"name": name}
    lbl = _label_from(data, "label", errors)
    if lbl:
        doc["label"] = lbl
    plural = _label_from(data, "plural", errors, required=False)
    if plural:
        doc["plural_label"] = plural
    icon = _text(data, "icon")
    if icon:
        if ICON_RE.match(icon):
            doc["icon"] = icon
        else:
            errors["icon"] = "an icon name: lowercase letters, digits and dashes"
    parent = _text(data, "child_of")
    if parent:
        if parent in entities:
            doc["child_of"] = parent
        else:
            errors["child_of"] = f"unknown entity '{parent}'{did_you_mean(parent, entities)}"
    title = _text(data, "title_name") or slug(_text(data, "title_en")) or "name"
    problem = name_problem(title, "title field name")
    if problem:
        errors["title_name"] = problem
    elif title in ft.SYSTEM_COLUMNS or title.endswith("_currency"):
        errors["title_name"] = f"'{title}' is reserved for a system column; choose another name"
    title_label = _label_from(data, "title", errors)
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
    lbl = _label_from(data, "label", errors)
    if lbl:
        out["label"] = lbl
    out["plural_label"] = _label_from(data, "plural", errors, required=False)
    icon = _text(data, "icon")
    if icon and not ICON_RE.match(icon):
        errors["icon"] = "an icon name: lowercase letters, digits and dashes"
    out["icon"] = icon or None
    title = _text(data, "title_field")
    if title and title not in stored_fields:
        errors["title_field"] = f"'{title}' is not a stored field of this entity{did_you_mean(title, stored_fields)}"
    out["title_field"] = title or None
    if errors:
        raise EditRefused(errors)
    return out


# -- the layer's files ---------------------------------------------------------------------------

def _docs(files: Mapping[str, str], folder: str) -> Iterable[tuple[str, Any]]:
    for path in sorted(files):
        if path.startswith(f"{folder}/") and path.endswith(".yaml"):
            try:
                yield path, load(files[path])
            except Exception:  # a file that does not parse is not ours to touch
                continue


def entity_file(files: Mapping[str, str], entity: str) -> tuple[str | None, Any]:
    """(path, document) of the layer file declaring or extending `entity`, or (None, None)."""
    for path, doc in _docs(files, "entities"):
        if isinstance(doc, dict) and (doc.get("name") == entity or doc.get("extends") == entity):
            return path, doc
    return None, None


def _free_path(files: Mapping[str, str], folder: str, name: str) -> str:
    path = f"{folder}/{name}.yaml"
    n = 2
    while path in files:
        path = f"{folder}/{name}_{n}.yaml"
        n += 1
    return path


def layer_fields(files: Mapping[str, str], entity: str) -> list[str]:
    """Names of the fields the layer declares for `entity` (all of them for its own entity)."""
    _, doc = entity_file(files, entity)
    return [f["name"] for f in (doc or {}).get("fields") or [] if isinstance(f, dict) and "name" in f]


def new_entity(files: Mapping[str, str], entity: Mapping[str, Any]) -> dict[str, str]:
    """Add the file of a new entity (as entity_from_input gives it)."""
    doc = CommentedMap()
    for key in ENTITY_KEY_ORDER:
        if key not in entity:
            continue
        value = entity[key]
        if key in ("label", "plural_label", "description"):
            value = label(value["en"], value["zh-CN"])
        elif key == "search_fields":
            value = flow_list(value)
        elif key == "fields":
            value = CommentedSeq([styled_field(f) for f in value])
        doc[key] = value
    return {**files, _free_path(files, "entities", entity["name"]): dump(doc)}


def set_entity_properties(files: Mapping[str, str], entity: str, changes: Mapping[str, Any], current: Mapping[str, Any] | None = None) -> dict[str, str]:
    """Set label, plural_label, icon, title_field (None removes the key). For a pack's entity the
    change goes to its extension (the format lets an extension relabel an entity); a value equal
    to `current` (what the packs say) is then not written."""
    path, doc = entity_file(files, entity)
    if doc is None:
        doc = CommentedMap({"extends": entity})
        path = _free_path(files, "entities", entity)
    extension = "extends" in doc
    for key, value in changes.items():
        if extension and current is not None and key not in doc and current.get(key) == value:
            continue  # what the packs say already
        if value is None:
            doc.pop(key, None)
            continue
        if key in ("label", "plural_label"):
            value = label(value["en"], value["zh-CN"])
        _set_in_order(doc, key, value, ENTITY_KEY_ORDER)
    return _write(files, path, doc)


def _write(files: Mapping[str, str], path: str | None, doc: Any) -> dict[str, str]:
    """The files with `path` set to `doc`; an extension left with nothing to add is removed."""
    new = dict(files)
    assert path is not None
    if isinstance(doc, dict) and "extends" in doc and set(doc) <= {"extends", "fields", "picklist_values", "search_fields"} \
            and not doc.get("fields") and not doc.get("picklist_values") and not doc.get("search_fields"):
        new.pop(path, None)
    else:
        new[path] = dump(doc)
    return new


def _entity_doc(files: Mapping[str, str], entity: str, create_extension: bool = True) -> tuple[str, Any]:
    path, doc = entity_file(files, entity)
    if doc is None:
        if not create_extension:
            raise EditRefused({"entity": f"the layer has no file for entity '{entity}'"})
        return _free_path(files, "entities", entity), CommentedMap({"extends": entity})
    return path, doc  # type: ignore[return-value]


def add_field(files: Mapping[str, str], entity: str, field: Mapping[str, Any]) -> dict[str, str]:
    """Add a field to the layer's entity, or to the extension of a pack's entity."""
    path, doc = _entity_doc(files, entity)
    fields = doc.get("fields")
    if fields is None:
        fields = CommentedSeq()
        _set_in_order(doc, "fields", fields, ENTITY_KEY_ORDER)
    if any(isinstance(f, dict) and f.get("name") == field["name"] for f in fields):
        raise EditRefused({"name": f"the entity already has a field '{field['name']}'; choose another name"})
    fields.append(styled_field(field))
    return _write(files, path, doc)


def _layer_field(files: Mapping[str, str], entity: str, name: str) -> tuple[str, Any, int]:
    """(path, document, index) of a field the layer added to `entity`, or EditRefused."""
    path, doc = entity_file(files, entity)
    for i, f in enumerate((doc or {}).get("fields") or []):
        if isinstance(f, dict) and f.get("name") == name:
            return path, doc, i  # type: ignore[return-value]
    raise EditRefused({"field": f"field '{name}' of {entity} is not one the layer added: a pack's own fields cannot be changed or archived"})


def replace_field(files: Mapping[str, str], entity: str, name: str, field: Mapping[str, Any]) -> dict[str, str]:
    """Replace a layer field's definition (in place: its position stays)."""
    path, doc, index = _layer_field(files, entity, name)
    old = doc["fields"][index]
    new = styled_field({**field, **({"renamed_from": old["renamed_from"]} if "renamed_from" in old and "renamed_from" not in field else {})})
    doc["fields"][index] = new
    return _write(files, path, doc)


def reorder_fields(files: Mapping[str, str], entity: str, order: list[str]) -> dict[str, str]:
    """Put the layer's fields of `entity` in `order` (a permutation of their names)."""
    path, doc = _entity_doc(files, entity, create_extension=False)
    fields = doc.get("fields") or CommentedSeq()
    by_name = {f["name"]: f for f in fields}
    if sorted(order) != sorted(by_name) or len(set(order)) != len(order):
        raise EditRefused({"order": f"the order must list each field the layer added once: {', '.join(by_name)}"})
    _reorder(fields, [list(by_name).index(n) for n in order])
    return _write(files, path, doc)


def _reorder(seq: CommentedSeq, order: list[int]) -> None:
    """Put the items of `seq` in `order` (old indexes), their end-of-line comments with them."""
    comments = dict(seq.ca.items)
    old = list(seq)
    del seq[:]
    seq.extend(old[i] for i in order)
    seq.ca.items.clear()
    for new, i in enumerate(order):
        if i in comments:
            seq.ca.items[new] = comments[i]


def archive_field(files: Mapping[str, str], entity: str, name: str) -> dict[str, str]:
    """Remove a layer field: the migration archives its column (the data is kept and comes back
    when the field does, e.g. on rollback). Forms and views of the layer stop showing it."""
    path, doc, index = _layer_field(files, entity, name)
    if doc.get("title_field") == name:
        raise EditRefused({"field": f"'{name}' is the title field of {entity}: choose another title field first"})
    del doc["fields"][index]
    for key in ("search_fields",):
        if name in (doc.get(key) or []):
            doc[key].remove(name)
            if not doc[key]:
                del doc[key]
    if "indexes" in doc:
        doc["indexes"][:] = [ix for ix in doc["indexes"] if name not in ix]
        if not doc["indexes"]:
            del doc["indexes"]
    if doc.get("timeline_date") == name:
        del doc["timeline_date"]
    new = _write(files, path, doc)
    return _forget_in_screens(new, entity, name)


def _forget_in_screens(files: dict[str, str], entity: str, name: str) -> dict[str, str]:
    """Take an archived field out of the layer's forms and views (and related lists through it)."""
    for path, doc in list(_docs(files, "forms")):
        changed = False
        forms = doc.get("forms") or []
        for form in list(forms):
            if doc.get("entity") == entity:
                for section in list(form.get("sections") or []):
                    if name in section.get("fields", []):
                        section["fields"].remove(name)
                        changed = True
                        if not section["fields"]:
                            form["sections"].remove(section)
            through = f"{entity}.{name}"
            if through in (form.get("related") or []):
                form["related"].remove(through)
                changed = True
            if "extends" in form and not form.get("sections") and not form.get("related"):
                forms.remove(form)  # an extension of a pack's form with nothing left to add
        if changed and forms:
            files[path] = dump(doc)
        elif changed:
            del files[path]
    for path, doc in list(_docs(files, "views")):
        if doc.get("entity") != entity:
            continue
        changed = False
        for view in doc.get("views") or []:
            if name in view.get("columns", []):
                if len(view["columns"]) == 1:
                    raise EditRefused({"field": f"'{name}' is the only column of the view '{view.get('name')}': give the view other columns first"})
                view["columns"].remove(name)
                changed = True
            for key in [k for k in view.get("sort") or [] if k.lstrip("-") == name]:
                view["sort"].remove(key)
                changed = True
            if "sort" in view and not view["sort"]:
                del view["sort"]
        if changed:
            files[path] = dump(doc)
    return files


# -- forms ---------------------------------------------------------------------------------------

def form_file(files: Mapping[str, str], entity: str) -> tuple[str | None, Any]:
    for path, doc in _docs(files, "forms"):
        if isinstance(doc, dict) and doc.get("entity") == entity:
            return path, doc
    return None, None


def layer_form(files: Mapping[str, str], entity: str) -> dict[str, Any] | None:
    """The layer's form item for `entity`: the form `main`, or the item extending it."""
    _, doc = form_file(files, entity)
    for item in (doc or {}).get("forms") or []:
        if item.get("name") == MAIN_FORM or item.get("extends") == MAIN_FORM:
            return item  # type: ignore[no-any-return]
    return None


def sections_from_input(sections: Sequence[Mapping[str, Any]], known: Collection[str]) -> list[dict[str, Any]]:
    """Sections {label_en, label_zh, columns, fields} -> the format's sections, or EditRefused."""
    errors: dict[str, str] = {}
    out = []
    placed: set[str] = set()
    for number, sec in enumerate(sections, 1):
        sec_errors: dict[str, str] = {}
        lbl = _label_from(sec, "label", sec_errors)
        for key, message in sec_errors.items():
            errors[f"section_{number}_{key}"] = f"section {number}: {message}"
        columns = _text(sec, "columns") or "2"
        if columns not in ("1", "2", "3", "4"):
            errors[f"section_{number}_columns"] = f"section {number}: 1 to 4 columns"
        fields = list(sec.get("fields") or [])
        if not fields:
            errors[f"section_{number}_fields"] = f"section {number} has no fields: add fields to it or remove it"
        for f in fields:
            if f not in known:
                errors[f"section_{number}_fields"] = f"section {number}: unknown field '{f}'{did_you_mean(f, known)}"
            elif f in placed:
                errors[f"section_{number}_fields"] = f"section {number}: field '{f}' is placed twice"
            placed.add(f)
        out.append({"label": lbl, "columns": int(columns) if columns.isdigit() else 2, "fields": fields})
    if errors:
        raise EditRefused(errors)
    return out


def set_form(files: Mapping[str, str], entity: str, sections: Sequence[Mapping[str, Any]], *, extends: bool,
             form_label: Mapping[str, str] | None = None, related: list[str] | None = None) -> dict[str, str]:
    """Write the layer's form of `entity`: the whole form `main`, or (extends=True) the sections
    (and related lists) added to a pack's form `main`. Other forms in the file are kept."""
    path, doc = form_file(files, entity)
    if doc is None:
        doc = CommentedMap({"entity": entity, "forms": CommentedSeq()})
        path = _free_path(files, "forms", entity)
    forms = doc.setdefault("forms", CommentedSeq())
    index = next((i for i, item in enumerate(forms) if item.get("name") == MAIN_FORM or item.get("extends") == MAIN_FORM), None)
    item = CommentedMap()
    if extends:
        item["extends"] = MAIN_FORM
    else:
        item["name"] = MAIN_FORM
        lbl = form_label or (forms[index].get("label") if index is not None else None) or {"en": "Main", "zh-CN": "主表单"}
        item["label"] = label(lbl["en"], lbl["zh-CN"])
    if sections or not extends:
        item["sections"] = CommentedSeq([block({"label": label(s["label"]["en"], s["label"]["zh-CN"]), "columns": s.get("columns", 2),
                                                "fields": flow_list(s["fields"])}) for s in sections])
    if related is None and index is not None:
        related = list(forms[index].get("related") or [])
    if related:
        item["related"] = flow_list(related)
    empty = extends and not sections and not related
    if index is None and not empty:
        forms.append(item)
    elif index is not None and empty:
        del forms[index]
    elif index is not None:
        forms[index] = item
    new = dict(files)
    if not forms:
        new.pop(path, None)  # type: ignore[arg-type]
    else:
        new[path] = dump(doc)  # type: ignore[index]
    return new


def place_on_form(files: Mapping[str, str], entity: str, field: str, *, extends: bool | None,
                  section_label: Mapping[str, str] | None = None) -> dict[str, str]:
    """Show a new field on the form: at the end of the layer's last section, or in a new section
    added to the pack's form. extends=None: the entity has no form (every field shows anyway)."""
    if extends is None:
        return dict(files)
    item = layer_form(files, entity)
    sections = [{"label": dict(s["label"]), "columns": s.get("columns", 2), "fields": list(s["fields"])} for s in (item or {}).get("sections") or []]
    if not sections:
        if not extends:
            return dict(files)  # the layer declares no form yet: the fallback layout shows every field
        sections = [{"label": dict(section_label or {"en": "More", "zh-CN": "更多"}), "columns": 2, "fields": []}]
    if field not in sections[-1]["fields"]:
        sections[-1]["fields"].append(field)
    return set_form(files, entity, sections, extends=extends)


# -- list views ----------------------------------------------------------------------------------

def view_file(files: Mapping[str, str], entity: str) -> tuple[str | None, Any]:
    for path, doc in _docs(files, "views"):
        if isinstance(doc, dict) and doc.get("entity") == entity:
            return path, doc
    return None, None


def layer_views(files: Mapping[str, str], entity: str) -> list[dict[str, Any]]:
    _, doc = view_file(files, entity)
    return [dict(v) for v in (doc or {}).get("views") or []]


def view_from_input(data: Mapping[str, Any], *, listable: Collection[str], taken: Collection[str] = (), editing: str | None = None) -> dict[str, Any]:
    """A list view from the inputs name, label_en/_zh, columns (ordered), sort_field, sort_desc,
    filter (already checked by the caller, who has the rules), page_size, default."""
    errors: dict[str, str] = {}
    name = editing or _text(data, "name") or slug(_text(data, "label_en"))
    if editing is None:
        problem = name_problem(name, "view name")
        if problem:
            errors["name"] = problem
        elif name in taken:
            errors["name"] = f"the entity already has a view '{name}'; choose another name"
    view: dict[str, Any] = {"name": name}
    lbl = _label_from(data, "label", errors)
    if lbl:
        view["label"] = lbl
    columns = [c for c in data.get("columns") or [] if c]
    if not columns:
        errors["columns"] = "choose at least one column"
    for c in columns:
        if c not in listable:
            errors["columns"] = f"'{c}' cannot be a column{did_you_mean(c, listable)}"
    if len(set(columns)) != len(columns):
        errors["columns"] = "a column is listed twice"
    view["columns"] = columns
    sort = []
    for key in ("sort_field", "sort2_field"):
        field = _text(data, key)
        if not field:
            continue
        if field not in listable:
            errors[key] = f"cannot sort by '{field}'{did_you_mean(field, listable)}"
        desc = _flag(data, key.replace("_field", "_desc"))
        sort.append(("-" if desc else "") + field)
    if sort:
        view["sort"] = sort
    page_size = _int(data, "page_size", 5, 200, errors)
    if page_size is not None:
        view["page_size"] = page_size
    text = " ".join(_text(data, "filter").split())
    if text:
        view["filter"] = text
    if _flag(data, "default"):
        view["default"] = True
    if errors:
        raise EditRefused(errors)
    return view


def set_view(files: Mapping[str, str], entity: str, view: Mapping[str, Any]) -> dict[str, str]:
    """Add or replace (by name) a list view of `entity` in the layer."""
    path, doc = view_file(files, entity)
    if doc is None:
        doc = CommentedMap({"entity": entity, "views": CommentedSeq()})
        path = _free_path(files, "views", entity)
    views = doc.setdefault("views", CommentedSeq())
    item = block({"name": view["name"], "label": label(view["label"]["en"], view["label"]["zh-CN"]), "columns": flow_list(view["columns"]),
                  **({"sort": flow_list(view["sort"])} if view.get("sort") else {}),
                  **({"page_size": view["page_size"]} if view.get("page_size") else {}),
                  **({"filter": view["filter"]} if view.get("filter") else {}),
                  **({"default": True} if view.get("default") else {})})
    index = next((i for i, v in enumerate(views) if v.get("name") == view["name"]), None)
    if view.get("default"):
        for other in views:
            if other.get("name") != view["name"] and other.get("default"):
                del other["default"]
    if index is None:
        views.append(item)
    else:
        views[index] = item
    return {**files, path: dump(doc)}  # type: ignore[dict-item]


def remove_view(files: Mapping[str, str], entity: str, name: str) -> dict[str, str]:
    path, doc = view_file(files, entity)
    views = (doc or {}).get("views") or []
    index = next((i for i, v in enumerate(views) if v.get("name") == name), None)
    if index is None:
        raise EditRefused({"view": f"the layer has no view '{name}' of {entity}: a pack's views cannot be removed"})
    del views[index]
    new = dict(files)
    if views:
        new[path] = dump(doc)  # type: ignore[index]
    else:
        new.pop(path, None)  # type: ignore[arg-type]
    return new


# -- moving items up and down (the editors' buttons without JavaScript) ----------------------------

def move(sequence: list[str], item: str, delta: int, first_fixed: bool = True) -> list[str]:
    """Move `item` one step up (delta -1) or down (+1) in a flat list where entries starting
    with '§' mark the start of a group: crossing a marker moves the item into the neighbouring
    group. The first entry (the first group's marker) is never crossed."""
    seq = list(sequence)
    if item not in seq:
        return seq
    i = seq.index(item)
    j = i + delta
    if j < (1 if first_fixed and seq and seq[0].startswith("§") else 0) or j >= len(seq):
        return seq
    seq[i], seq[j] = seq[j], seq[i]
    return seq
