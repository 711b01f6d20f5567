"""Rules-language expressions written in a demo profile (`when`, `expr`, `of`, `from`, `until`,
`between`): checked against the Registry and compiled, errors placed in the YAML file."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from crm_platform.engine.demo_data.model import Located
from crm_platform.metadata.errors import Problem
from crm_platform.metadata.model import Registry
from crm_platform.rules import CompiledExpression, RuleError, checked_expression, compile_python

NUMERIC = ("integer", "decimal", "money", "percent")
TEMPORAL = ("date", "datetime")


@cache
def _lines(path: str) -> tuple[str, ...]:
    try:
        return tuple(Path(path).read_text(encoding="utf-8").splitlines())
    except OSError:
        return ()


def _problem(where: Located, error: RuleError) -> Problem:
    line, column = where.source.where(where.path)
    if line is None or column is None:
        return where.problem(error.message)
    lines = _lines(where.source.path)
    text = lines[line - 1] if line - 1 < len(lines) else None
    if text is not None and text[column - 1 : column] in ("'", '"'):
        column += 1  # the expression starts after the opening quote
    shifted = error.shifted(line, column, where.source.path, text)
    rendered = shifted.render()
    return Problem(where.source.path, shifted.line, shifted.column, shifted.message + rendered[len(str(shifted)):], error.code)


def compile_at(
    registry: Registry,
    where: Located,
    text: str,
    entity: str,
    purpose: str,
    target_field: str | None = None,
    result: tuple[str, ...] = (),
) -> tuple[CompiledExpression | None, list[Problem]]:
    """The compiled expression, or None and the problems (at their place in the file).

    `result` lists the kinds the value must have (e.g. numbers for `of`), when not a condition.
    """
    checked = checked_expression(text, registry, entity, purpose, target_field)
    if checked.errors:
        return None, [_problem(where, e) for e in checked.errors]
    kind = checked.result.kind
    if result and kind not in result and kind not in ("null", "any"):
        return None, [where.problem(f"'{text}' gives {checked.result}; expected {' or '.join(result)}")]
    return compile_python(checked), []
