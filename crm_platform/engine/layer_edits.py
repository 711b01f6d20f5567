"""The designer's edits of the site layer's files: what they share.

The edits themselves live next to this module, one job each:
- layer_field_input: reading what the designer typed for a field or an entity (checked, plain data);
- layer_entity_edits: the entity files (new entity, its properties, adding, changing, reordering
  and archiving the fields the layer added);
- layer_screen_edits: the form and list view files, and moving items in the editors' lists;
- layer_access_edits: the roles and permissions files.

Every edit takes the layer's files ({"entities/exhibition.yaml": "<yaml>", ...}) and returns the
complete new files dict; nothing knows about HTTP or the database. What the designer typed is
checked first: a refusal raises `EditRefused` with a message per input, and no file is produced.

This module owns what they all use: `EditRefused`; the YAML round trip (`load`, `dump`) and the
packs' compact style (`flow`, `flow_list`, `block`, `label`, `styled_field`); names (`slug`,
`name_problem`); the small readers of form input (`input_text`, `input_flag`, `input_int`,
`input_label`); and finding the layer's files (`layer_docs`, `free_path`).

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
from collections.abc import Iterable, Mapping
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,27}$")
NAME_RULE = "use lowercase letters, digits and underscores, starting with a letter, at most 28 characters"
# The order a field's properties are written in, as the packs write them.
FIELD_KEY_ORDER = ("name", "type", "entity", "label", "help", "required", "default", "max_length", "min", "max", "precision", "scale",
                   "currency", "unique", "indexed", "read_only", "on_delete", "format", "expression", "result_type", "max_size_mb", "accept",
                   "renamed_from", "options")


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


# -- the designer's inputs -----------------------------------------------------------------------

def input_label(data: Mapping[str, Any], prefix: str, errors: dict[str, str], required: bool = True) -> dict[str, str] | None:
    """{en, zh-CN} from the inputs <prefix>_en and <prefix>_zh; both languages, or neither when optional."""
    en, zh = input_text(data, f"{prefix}_en"), input_text(data, f"{prefix}_zh")
    if not en and not zh and not required:
        return None
    if not en:
        errors[f"{prefix}_en"] = "give the English text (labels are in English and Chinese)"
    if not zh:
        errors[f"{prefix}_zh"] = "give the Chinese text (labels are in English and Chinese)"
    return {"en": en, "zh-CN": zh} if en and zh else None


def input_text(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    return value.strip() if isinstance(value, str) else ""


def input_flag(data: Mapping[str, Any], key: str) -> bool:
    return input_text(data, key).lower() in ("on", "true", "1", "yes")


def input_int(data: Mapping[str, Any], key: str, low: int, high: int, errors: dict[str, str]) -> int | None:
    text = input_text(data, key)
    if not text:
        return None
    if not re.fullmatch(r"[+-]?\d+", text) or not low <= int(text) <= high:
        errors[key] = f"a whole number from {low} to {high}"
        return None
    return int(text)


# -- the layer's files ---------------------------------------------------------------------------

def layer_docs(files: Mapping[str, str], folder: str) -> Iterable[tuple[str, Any]]:
    """(path, document) of each YAML file in `folder` of the layer that parses, in path order."""
    for path in sorted(files):
        if path.startswith(f"{folder}/") and path.endswith(".yaml"):
            try:
                yield path, load(files[path])
            except Exception:  # a file that does not parse is not ours to touch
                continue


def free_path(files: Mapping[str, str], folder: str, name: str) -> str:
    """A path for a new file `<folder>/<name>.yaml` that no file of the layer has yet."""
    path = f"{folder}/{name}.yaml"
    n = 2
    while path in files:
        path = f"{folder}/{name}_{n}.yaml"
        n += 1
    return path
