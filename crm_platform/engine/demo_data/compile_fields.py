"""Checking one field's generators against the field's type (unknown fields, generators that do
not fit the type, picklist values and workflow states, ranges, word lists, expressions) and
compiling them. Every problem is placed at its node of the profile file."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from crm_platform.engine.demo_data import generators as gen
from crm_platform.engine.demo_data.expressions import TEMPORAL, compile_at
from crm_platform.engine.demo_data.model import Alternative, FieldPlan, Located, parse_count
from crm_platform.metadata import field_types as ft
from crm_platform.metadata.errors import Problem, did_you_mean
from crm_platform.metadata.model import Entity, Field, Label, Place, Registry
from crm_platform.metadata.values import parse_value
from crm_platform.rules import CompiledExpression

KINDS = ("pick", "range", "days", "between", "pattern", "chance", "value", "expr", "related", "random", "ancestor")
MODIFIERS = {"range": {"step", "of"}, "days": {"from", "until"}, "between": {"until"}, "pick": {"count"}, "related": {"count"}, "random": {"count"}}
_TEXTS = ("text", "long_text", "email", "phone", "url")
_NUMBERS = ("integer", "decimal", "money", "percent")
ALLOWED = {
    **{t: {"pick", "pattern", "value", "expr"} for t in _TEXTS},
    **{t: {"pick", "range", "value", "expr"} for t in _NUMBERS},
    "boolean": {"chance", "pick", "value", "expr"},
    "date": {"days", "between", "value", "expr"},
    "datetime": {"days", "between", "value", "expr"},
    "picklist": {"pick", "value", "expr"},
    "multi_picklist": {"pick", "value"},
    "reference": {"related", "random", "ancestor", "expr"},
    "many_to_many": {"related", "random"},
}
NOT_GENERATED = {
    "auto_number": "is numbered by the platform",
    "formula": "is computed by its formula",
    "file": "holds an uploaded file, which demo data cannot make",
    "child_table": "holds child rows: generate them as their own entity with `per: {entity}`",
}
_TOKEN = re.compile(r"\{([^{}]*)\}")
CREATED_AT = "created_at"
_CREATED_AT_FIELD = Field(CREATED_AT, "datetime", Label("Created at", "创建时间"), Place("<system column>"))


@dataclass
class FieldContext:
    """What a field's generators may refer to, for the plan being compiled."""

    entity: Entity
    earlier: frozenset[str]  # entities generated before this one (same root) or pools
    ancestors: tuple[str, ...]  # entities this row is generated under, nearest first
    states: tuple[str, ...] | None = None  # the workflow states of this field, when it has a workflow
    approval_states: frozenset[str] = frozenset()


class FieldCompiler:
    def __init__(self, registry: Registry, words: dict[str, tuple[str, ...]], store: Callable[[Entity, str, Any], Any], problems: list[Problem]) -> None:
        self.registry = registry
        self.words = words
        self.store = store
        self.problems = problems

    def compile(self, ctx: FieldContext, name: str, raw: Any, where: Located) -> FieldPlan | None:
        entity = ctx.entity
        if name == CREATED_AT:
            field = None
            kind = "datetime"
        elif name not in entity.field_map:
            choices = [*entity.field_map, CREATED_AT]
            self.problems.append(where.problem(f"unknown field '{name}' on {entity.name}{did_you_mean(name, choices)}", at_key=True))
            return None
        else:
            field = entity.field_map[name]
            kind = "many_to_many" if field.type == "many_to_many" else field.value_type
            if field.type in NOT_GENERATED:
                reason = NOT_GENERATED[field.type].format(entity=field.entity)
                self.problems.append(where.problem(f"field '{name}' of {entity.name} {reason}; leave it out of the profile", at_key=True))
                return None
        specs = raw if isinstance(raw, list) else [raw]
        alternatives = []
        for index, spec in enumerate(specs):
            at = where.child(index) if isinstance(raw, list) else where
            if not isinstance(spec, dict):
                spec = {"value": spec}
            alternative = self._alternative(ctx, name, field, kind, spec, at)
            if alternative is not None:
                alternatives.append(alternative)
        if len(alternatives) != len(specs):
            return None
        return FieldPlan(name, field, alternatives, where)

    # -- one generator -------------------------------------------------------------------------
    def _alternative(self, ctx: FieldContext, name: str, field: Field | None, kind: str, spec: dict[str, Any], at: Located) -> Alternative | None:
        problems_before = len(self.problems)
        entity = ctx.entity
        kinds = [k for k in spec if k in KINDS]
        if len(kinds) != 1:
            found = f"found {', '.join(kinds)}" if kinds else "found none"
            self.problems.append(at.problem(f"field '{name}': give exactly one generator ({', '.join(KINDS)}); {found}"))
            return None
        what = kinds[0]
        allowed = ALLOWED.get(kind, set())
        if what not in allowed:
            self.problems.append(at.child(what).problem(f"field '{name}' is a {kind} field: '{what}' does not fit it; use one of {', '.join(sorted(allowed))}", at_key=True))
            return None
        for key in spec:
            if key not in KINDS and key not in ("when", "blank") and key not in MODIFIERS.get(what, set()):
                self.problems.append(at.child(key).problem(f"field '{name}': '{key}' does not go with '{what}'", at_key=True))
        if spec.get("blank") and field is not None and field.required:
            self.problems.append(at.child("blank").problem(f"field '{name}' is required on {entity.name}: it cannot be left blank", at_key=True))
        when = None
        if "when" in spec:
            when, problems = compile_at(self.registry, at.child("when"), spec["when"], entity.name, "condition")
            self.problems.extend(problems)
        produce = self._produce(ctx, name, field, kind, what, spec, at)
        if produce is None or len(self.problems) > problems_before:
            return None
        target = spec[what] if what == "random" else None
        return Alternative(what, produce, when, float(spec.get("blank", 0.0)), target)

    def _produce(self, ctx: FieldContext, name: str, field: Field | None, kind: str, what: str, spec: dict[str, Any], at: Located) -> gen.Produce | None:
        entity = ctx.entity
        value = spec[what]
        place = at.child(what)
        if what == "pick":
            return self._pick(ctx, name, field, kind, value, place, spec, at)
        if what == "value":
            parsed = self._parse(ctx, name, field, value, place)
            return None if parsed is _BAD else gen.constant(parsed)
        if what == "chance":
            return gen.chance(float(value))
        if what == "expr":
            compiled, problems = compile_at(self.registry, place, value, entity.name, "formula", target_field=name)
            self.problems.extend(problems)
            if compiled is None:
                return None
            store = _store_created_at if field is None else (lambda v, e=entity, n=name: self.store(e, n, v))
            return gen.expression(compiled, store)
        if what == "pattern":
            parts = self._pattern(value, place)
            limit = (field.max_length or (None if field.type == "long_text" else ft.DEFAULT_TEXT_LENGTH)) if field else None
            return None if parts is None else gen.pattern(parts, limit)
        if what == "range":
            return self._range(ctx, name, field, kind, value, spec, at)
        if what in ("days", "between"):
            return self._dates(ctx, name, kind, what, value, spec, at)
        return self._reference(ctx, name, field, what, value, spec, at)

    def _parse(self, ctx: FieldContext, name: str, field: Field | None, raw: Any, place: Located, at_key: bool = False) -> Any:
        try:
            value = _store_created_at(parse_value(_CREATED_AT_FIELD, raw)) if field is None else parse_value(field, raw)
        except ValueError as exc:
            self.problems.append(place.problem(f"field '{name}': {exc}", at_key=at_key))
            return _BAD
        if ctx.states is not None and field is not None and field.name == name and value is not None:
            if value not in ctx.states:
                self.problems.append(place.problem(f"field '{name}': '{value}' is not a state of its workflow; expected one of {', '.join(ctx.states)}", at_key=at_key))
                return _BAD
            if value in ctx.approval_states:
                self.problems.append(place.problem(f"field '{name}': records entering state '{value}' start an approval, which generated records do not; leave '{value}' out", at_key=at_key))
                return _BAD
        return value

    def _pick(self, ctx: FieldContext, name: str, field: Field | None, kind: str, value: Any, place: Located, spec: dict[str, Any], at: Located) -> gen.Produce | None:
        if isinstance(value, dict):
            raw_values, weights = list(value), [float(w) for w in value.values()]
            if sum(weights) <= 0:
                self.problems.append(place.problem(f"field '{name}': the weights add up to 0"))
                return None
            places = [place.child(str(k)) for k in raw_values]
        else:
            raw_values, weights, places = list(value), None, [place.child(i) for i in range(len(value))]
        target = field
        if field is not None and field.type == "multi_picklist":
            target = Field(field.name, "picklist", field.label, field.place, options=field.options)
        keyed = isinstance(value, dict)
        values = [self._parse(ctx, name, target, v, p, at_key=keyed) for v, p in zip(raw_values, places, strict=True)]
        if any(v is _BAD for v in values):
            return None
        if kind == "multi_picklist":
            count = parse_count(spec.get("count", [1, 1]))
            return gen.pick_many(values, weights, count.draw, field.option_values if field else ())
        if "count" in spec:
            self.problems.append(at.child("count").problem(f"field '{name}': count applies to multi-picklists and N:N links only", at_key=True))
            return None
        return gen.pick(values, weights)

    def _pattern(self, text: str, place: Located) -> list[str | tuple[str, Any]] | None:
        parts: list[str | tuple[str, Any]] = []
        position = 0
        for match in _TOKEN.finditer(text):
            if match.start() > position:
                parts.append(text[position : match.start()])
            token = match.group(1)
            digits = re.fullmatch(r"digits:(\d{1,2})", token)
            if digits and 1 <= int(digits.group(1)) <= 18:
                parts.append(("digits", int(digits.group(1))))
            elif token in self.words:
                parts.append(("words", self.words[token]))
            else:
                self.problems.append(place.problem(f"pattern: unknown word list '{token}'{did_you_mean(token, self.words)}; "
                                                   "declare it under `words:` or use {digits:N} (N from 1 to 18)"))
                return None
            position = match.end()
        if position < len(text):
            parts.append(text[position:])
        return parts

    def _range(self, ctx: FieldContext, name: str, field: Field | None, kind: str, value: list[float], spec: dict[str, Any], at: Located) -> gen.Produce | None:
        assert field is not None
        low, high = float(value[0]), float(value[1])
        if low > high:
            self.problems.append(at.child("range").problem(f"field '{name}': range [{value[0]}, {value[1]}]: the minimum is larger than the maximum"))
            return None
        of = None
        if "of" in spec:
            of, problems = compile_at(self.registry, at.child("of"), spec["of"], ctx.entity.name, "formula", result=_NUMBERS)
            self.problems.extend(problems)
            if of is None:
                return None
        bounds = (_decimal(field.min), _decimal(field.max))
        if of is None:
            for bound, limit, word in ((low, bounds[0], "below the minimum"), (high, bounds[1], "above the maximum")):
                if limit is not None and ((word.startswith("below") and Decimal(str(bound)) < limit) or (word.startswith("above") and Decimal(str(bound)) > limit)):
                    self.problems.append(at.child("range").problem(f"field '{name}': range [{value[0]}, {value[1]}] goes {word} of the field ({limit})"))
                    return None
        scale = field.scale if field.scale is not None else {"money": 2, "percent": 4, "decimal": 4}.get(kind, 0)
        step = spec.get("step")
        return gen.number(kind, min(scale, 6), low, high, float(step) if step else None, of, bounds)

    def _dates(self, ctx: FieldContext, name: str, kind: str, what: str, value: list[Any], spec: dict[str, Any], at: Located) -> gen.Produce | None:
        entity = ctx.entity.name
        expressions: dict[str, CompiledExpression | None] = {}
        keys = [k for k in ("from", "until") if k in spec]
        texts = [(f"between[{i}]", at.child("between", i), v) for i, v in enumerate(value)] if what == "between" else []
        texts += [(k, at.child(k), spec[k]) for k in keys]
        for key, place, text in texts:
            compiled, problems = compile_at(self.registry, place, text, entity, "formula", result=TEMPORAL)
            self.problems.extend(problems)
            expressions[key] = compiled
        if any(v is None for v in expressions.values()):
            return None
        if what == "between":
            start, end = expressions["between[0]"], expressions["between[1]"]
            assert start is not None and end is not None
            return gen.between(kind, start, end, expressions.get("until"))
        low, high = float(value[0]), float(value[1])
        if low > high:
            self.problems.append(at.child("days").problem(f"field '{name}': days [{value[0]}, {value[1]}]: the first is after the second"))
            return None
        return gen.days(kind, low, high, expressions.get("from"), expressions.get("until"))

    def _reference(self, ctx: FieldContext, name: str, field: Field | None, what: str, target: str, spec: dict[str, Any], at: Located) -> gen.Produce | None:
        assert field is not None
        place = at.child(what)
        if target != field.entity:
            self.problems.append(place.problem(f"field '{name}' refers to {field.entity}, not {target}"))
            return None
        if what == "related" and target not in ctx.earlier:
            self.problems.append(place.problem(f"field '{name}': related {target}: no {target} rows are generated before {ctx.entity.name} under the same root; list {target} above {ctx.entity.name}"))
            return None
        if what == "ancestor" and target not in ctx.ancestors:
            chain = ", ".join(ctx.ancestors) or "nothing"
            self.problems.append(place.problem(f"field '{name}': {ctx.entity.name} is not generated under {target} (it is under {chain})"))
            return None
        many = field.type == "many_to_many"
        if "count" in spec and not many:
            self.problems.append(at.child("count").problem(f"field '{name}': count applies to multi-picklists and N:N links only", at_key=True))
            return None
        draw = parse_count(spec.get("count", [1, 1])).draw if many else None
        if what == "related":
            return gen.related(target, draw)
        if what == "random":
            return gen.random_row(target, draw)
        return gen.ancestor(target)


class _Bad:
    pass


_BAD: Any = _Bad()


def _decimal(raw: Any) -> Decimal | None:
    return None if raw is None else Decimal(str(raw))


def _store_created_at(value: Any) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).replace(microsecond=0)
    return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
