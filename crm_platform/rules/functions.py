"""The one registry of functions: the checker, the Python compiler and the SQL compiler all
read FUNCTIONS (name -> FunctionSpec). The specs live in the lib_* modules by theme."""

from __future__ import annotations

from types import MappingProxyType

from crm_platform.rules import lib_dates, lib_logic, lib_math, lib_records, lib_text
from crm_platform.rules.function_spec import FunctionSpec

FUNCTIONS: MappingProxyType[str, FunctionSpec] = MappingProxyType(
    {
        spec.name: spec
        for lib in (lib_logic, lib_text, lib_math, lib_dates, lib_records)
        for spec in lib.SPECS
    }
)


def function(name: str) -> FunctionSpec | None:
    """The function called `name` (case-insensitive), or None."""
    return FUNCTIONS.get(name.lower())


def has_sql_form(spec: FunctionSpec) -> bool:
    """Can a call of this function (with non-constant arguments) run in a list filter?"""
    if spec.special == "change":
        return False
    return spec.sql is not None or spec.special in ("rollup", "lookup")
