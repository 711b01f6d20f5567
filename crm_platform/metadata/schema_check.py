"""Validating pack files against the JSON Schemas in `schemas/`, with errors placed and explained."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator, ValidationError
from referencing import Registry as SchemaRegistry
from referencing import Resource

from crm_platform.metadata.errors import Problem, closest
from crm_platform.metadata.yaml_source import JsonPath, SourceFile

SCHEMA_NAMES = ("common", "pack", "entity", "views", "forms", "menus", "records", "roles", "org", "workflow", "reminder", "scoring", "dashboard", "duplicates")

# Singular nouns for the lists of named things, used to say "field 'amount'" in messages.
_ITEM_NOUNS = {
    "fields": "field",
    "options": "option",
    "views": "view",
    "forms": "form",
    "sections": "section",
    "menus": "menu",
    "items": "item",
    "records": "record",
    "roles": "role",
    "permissions": "permission",
    "units": "unit",
    "states": "state",
    "transitions": "transition",
    "users": "user",
}


@cache
def load_schema(name: str) -> dict[str, Any]:
    text = resources.files("crm_platform.metadata").joinpath(f"schemas/{name}.schema.json")
    return json.loads(text.read_text(encoding="utf-8"))


@cache
def _validator(name: str) -> Draft202012Validator:
    resources_ = [
        (load_schema(n)["$id"], Resource.from_contents(load_schema(n))) for n in SCHEMA_NAMES
    ]
    registry: SchemaRegistry = SchemaRegistry().with_resources(resources_)
    return Draft202012Validator(load_schema(name), registry=registry)


def check_against_schema(source: SourceFile, schema: str) -> list[Problem]:
    """Every schema violation in `source`, each as a Problem at the offending node."""
    if not isinstance(source.data, dict) and load_schema(schema).get("type") == "object":
        found = "an empty file" if source.data is None else f"a single {_json_type(source.data)}"
        message = f"expected a mapping of properties at the top of the file (see {schema}.schema.json), found {found}"
        line, column = source.where(())
        return [Problem(source.path, line or 1, column or 1, message, "pack.schema")]
    problems: list[Problem] = []
    for error in _validator(schema).iter_errors(source.data):
        for leaf in _leaves(error):
            problems.extend(_problems(source, leaf))
    return problems


def _problems(source: SourceFile, leaf: ValidationError) -> list[Problem]:
    path = tuple(leaf.absolute_path)
    if leaf.validator == "additionalProperties" and isinstance(leaf.instance, dict):
        allowed = sorted(leaf.schema.get("properties", {})) if isinstance(leaf.schema, dict) else []
        extra = [k for k in leaf.instance if k not in allowed]
        prefix = _context(source.data, path)
        hint = f"; expected one of {', '.join(allowed)}" if allowed else ""
        problems = []
        for key in extra:
            close = closest(key, allowed)
            guess = f" (did you mean '{close}'?)" if close else ""
            problems.append(source.problem((*path, key), f"{prefix}unknown property '{key}'{guess}{hint}", "pack.schema", at_key=True))
        return problems
    if "propertyNames" in leaf.schema_path and isinstance(leaf.instance, str):
        schema = leaf.schema if isinstance(leaf.schema, dict) else {}
        message = f"{_context(source.data, path)}property name {leaf.instance!r} is not valid; expected {_expected(schema, leaf)}"
        return [source.problem((*path, leaf.instance), message, "pack.schema", at_key=True)]
    at_key = leaf.validator == "required" and bool(path) and isinstance(path[-1], str)
    return [source.problem(path, _message(source.data, path, leaf), "pack.schema", at_key=at_key)]


def _leaves(error: ValidationError) -> list[ValidationError]:
    """The errors to report for `error`: for a failed `oneOf`/`anyOf`, those of the branch the
    author evidently meant, else its own message (x-oneof-message), else the closest branch."""
    if error.validator in ("oneOf", "anyOf"):
        branches: dict[int, list[ValidationError]] = {}
        for sub in error.context or []:
            branches.setdefault(int(sub.schema_path[0]) if sub.schema_path else 0, []).append(sub)
        meant = _meant_branch(error, branches)
        if meant is not None:
            return [leaf for sub in meant for leaf in _leaves(sub)]
        if isinstance(error.schema, dict) and "x-oneof-message" in error.schema:
            return [error]
        if branches:
            best = min(branches.values(), key=len)
            return [leaf for sub in best for leaf in _leaves(sub)]
    if error.validator == "allOf" and error.context:
        return [leaf for sub in error.context for leaf in _leaves(sub)]
    return [error]


def _meant_branch(error: ValidationError, branches: dict[int, list[ValidationError]]) -> list[ValidationError] | None:
    """The only branch that fails just for missing properties while the instance has some of
    its required ones (e.g. a new entity with name and fields but no label)."""
    if not isinstance(error.instance, dict) or not isinstance(error.validator_value, list):
        return None
    candidates = []
    for index, errors in branches.items():
        branch = error.validator_value[index] if index < len(error.validator_value) else {}
        required = branch.get("required", []) if isinstance(branch, dict) else []
        if errors and all(e.validator == "required" and not e.path for e in errors) and any(k in error.instance for k in required):
            candidates.append(errors)
    return candidates[0] if len(candidates) == 1 else None


def _context(data: Any, path: JsonPath) -> str:
    """'field 'amount': ' for a path inside fields[3], etc.; empty at the top level."""
    parts: list[str] = []
    node = data
    parent_key: str | int | None = None
    for step in path:
        try:
            node = node[step]
        except (KeyError, IndexError, TypeError):
            break
        if isinstance(step, int) and isinstance(parent_key, str) and isinstance(node, (dict, list)):
            noun = _ITEM_NOUNS.get(parent_key, "item")
            keys = ("_key",) if noun == "record" else ("name", "value")
            ident = next((node[k] for k in keys if isinstance(node, dict) and node.get(k)), None)
            parts.append(f"{noun} '{ident}'" if ident else f"{noun} #{step + 1}")
        parent_key = step
    return ": ".join(parts) + ": " if parts else ""


def _message(data: Any, path: JsonPath, error: ValidationError) -> str:
    prefix = _context(data, path)
    key = next((p for p in reversed(path) if isinstance(p, str)), None)
    what = f"'{key}'" if key else "the document"
    schema = error.schema if isinstance(error.schema, dict) else {}
    validator = error.validator
    if validator in ("oneOf", "anyOf") and "x-oneof-message" in schema:
        return prefix + str(schema["x-oneof-message"])
    if validator == "enum":
        allowed = ", ".join(str(v) for v in error.validator_value)
        return f"{prefix}unknown {key or 'value'} {error.instance!r}; expected one of {allowed}"
    if validator == "const":
        return f"{prefix}{what} must be {error.validator_value!r}"
    if validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        owner = f"{path[-1]}: " if path and isinstance(path[-1], str) else ""
        return f"{prefix}{owner}missing required property '{missing}'"
    if validator == "type":
        expected = error.validator_value
        expected = " or ".join(expected) if isinstance(expected, list) else expected
        found = _json_type(error.instance)
        quote = f"; put it in quotes (\"{error.instance}\") to make it text" if expected == "string" and found in ("number", "boolean") else ""
        return f"{prefix}{what} must be of type {expected}, not {found}{quote}"
    if validator == "pattern":
        return f"{prefix}{key or 'value'} {error.instance!r} is not valid; expected {_expected(schema, error)}"
    if validator in ("minimum", "maximum", "minLength", "maxLength", "minItems", "maxItems"):
        return f"{prefix}{what}: {error.message}"
    if validator == "uniqueItems":
        return f"{prefix}{what} lists the same item twice"
    if validator == "propertyNames":
        return f"{prefix}{error.instance!r} is not a valid name"
    if validator == "not":
        return f"{prefix}{what}: this combination of properties is not allowed"
    return f"{prefix}{error.message}"


def _expected(schema: dict[str, Any], error: ValidationError) -> str:
    """What a pattern wants, from the schema's description ('A machine name: ...' -> 'a machine name: ...')."""
    text = str(schema.get("description") or "").strip().rstrip(".")
    if not text:
        return f"text matching {error.validator_value}"
    first = text.split()[0]
    return text if len(first) > 1 and first.isupper() else text[0].lower() + text[1:]


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"
