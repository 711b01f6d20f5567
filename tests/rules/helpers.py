"""Evaluating one expression against one record, for the rules tests."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from crm_platform.metadata.model import Registry
from crm_platform.rules import EvalContext, UserInfo, compile_expression

NOW = dt.datetime(2026, 3, 15, 9, 30, tzinfo=dt.UTC)
TODAY = NOW.date()


def evaluate(
    registry: Registry,
    text: str,
    record: Mapping[str, Any] | None = None,
    entity: str = "company",
    purpose: str = "formula",
    **context: Any,
) -> Any:
    """The value of `text` for `record` (a formula unless `purpose` says otherwise)."""
    compiled = compile_expression(text, registry, entity, purpose)
    context.setdefault("clock", lambda: NOW)
    context.setdefault(
        "user", UserInfo(id=7, role="sales", roles=("sales", "manager"), unit=3, name="Ann")
    )
    return compiled.evaluate(EvalContext(dict(record or {}), **context))
