"""What the rules, workflow and menu designers share:

- the layer's YAML: read as plain data, written readably (labels and short lists in flow style);
- picklist values added by the layer, merged into the layer's entity file without disturbing it;
- rule errors as the screens show them (line, column, the line with carets).
The workflow draft the workflow designer edits is in workflow_draft.py. Pure functions: no
request, no database."""

from __future__ import annotations

import io
import re
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from crm_platform.metadata.model import Registry
from crm_platform.metadata.yaml_source import parse_yaml_text
from crm_platform.rules import checked_expression
from crm_platform.rules.errors import RuleError

NAME = re.compile(r"^[a-z][a-z0-9_]{0,27}$")


# -- YAML ---------------------------------------------------------------------------------------

def yaml_rt() -> YAML:
    yaml = YAML(typ="rt")
    yaml.width = 4096
    yaml.allow_unicode = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float, bool))


def styled(node: Any) -> Any:
    """Plain data as ruamel nodes: small mappings of scalars and lists of scalars in flow style."""
    if isinstance(node, dict):
        mapping = CommentedMap((k, styled(v)) for k, v in node.items())
        flat = all(_scalar(v) or (isinstance(v, list) and all(_scalar(x) for x in v)) for v in node.values())
        if node and flat and len(repr(node)) < 110 and not any(isinstance(v, str) and "\n" in v for v in node.values()):
            mapping.fa.set_flow_style()
        return mapping
    if isinstance(node, list):
        seq = CommentedSeq(styled(v) for v in node)
        if node and all(_scalar(v) for v in node) and len(repr(node)) < 110:
            seq.fa.set_flow_style()
        return seq
    return node


def to_yaml(data: Any) -> str:
    stream = io.StringIO()
    yaml_rt().dump(styled(data), stream)
    return stream.getvalue()


def plain_yaml(text: str, name: str = "<layer>") -> Any:
    """A layer file as plain data (None when it does not parse)."""
    source, problems = parse_yaml_text(text, name)
    return None if source is None or problems else source.data


def label_of(form: Any, prefix: str, fallback: str) -> dict[str, str]:
    """{en, zh-CN} from the inputs `<prefix>_en` and `<prefix>_zh` (English falls back to `fallback`)."""
    english = str(form.get(f"{prefix}_en") or "").strip() or fallback.replace("_", " ").capitalize()
    chinese = str(form.get(f"{prefix}_zh") or "").strip() or english
    return {"en": english, "zh-CN": chinese}


# -- picklist values added by the layer ---------------------------------------------------------

def add_picklist_values(files: dict[str, str], entity: str, field: str, options: list[dict[str, Any]]) -> dict[str, str]:
    """The layer's files with `options` ({value, label}) added to entity.field's picklist: into the
    layer's own declaration of the entity, else its extension of it (picklist_values), else a new
    extension `entities/<entity>.yaml`. Everything else in those files is kept as it is."""
    if not options:
        return files
    result = dict(files)
    yaml = yaml_rt()
    entity_files = sorted(name for name in files if name.startswith("entities/"))
    for kind in ("name", "extends"):
        for name in entity_files:
            try:
                data = yaml.load(files[name])
            except Exception:  # noqa: BLE001 - an unreadable file is not ours to fix here
                continue
            if not isinstance(data, dict) or data.get(kind) != entity:
                continue
            if kind == "name":
                target = next((f for f in data.get("fields") or [] if isinstance(f, dict) and f.get("name") == field), None)
                if target is None:
                    continue
                existing = target.setdefault("options", CommentedSeq())
            else:
                values = data.setdefault("picklist_values", CommentedMap())
                existing = values.setdefault(field, CommentedSeq())
            known = {o.get("value") for o in existing if isinstance(o, dict)}
            for option in options:
                if option["value"] not in known:
                    existing.append(styled(option))
            stream = io.StringIO()
            yaml.dump(data, stream)
            result[name] = stream.getvalue()
            return result
    target_name = f"entities/{entity}.yaml"
    if target_name in files:
        target_name = f"entities/{entity}_values.yaml"
    result[target_name] = to_yaml({"extends": entity, "picklist_values": {field: options}})
    return result



# -- rule errors as the screens show them ---------------------------------------------------------

def error_rows(errors: list[RuleError]) -> list[dict[str, Any]]:
    """Each error: where (line:column), the message, and the source line with carets under the spot."""
    rows = []
    for error in errors:
        _, _, caret = error.render().partition("\n")
        rows.append({"file": error.file, "line": error.line, "column": error.column, "message": error.message, "code": error.code,
                     "where": f"{error.file + ':' if error.file else ''}{error.line}:{error.column}", "caret": caret})
    return rows


def expression_errors(registry: Registry, entity: str, text: str, purpose: str = "condition", target: str | None = None) -> list[RuleError]:
    """Every problem of one expression on `entity` (an unknown entity or target field is one more)."""
    if entity not in registry.entities:
        return [RuleError(f"unknown entity '{entity}'", code="rules.unknown_name")]
    if target is not None and target not in registry.entity(entity).field_map:
        return [RuleError(f"unknown field '{target}' on {entity}", code="rules.unknown_name")]
    return checked_expression(text, registry, entity, purpose, target_field=target).errors
