"""The rules language: one Lark grammar for validations, formulas, defaults, form conditions,
workflow guards and list filters; a static type checker against the Registry; compilers to
Python closures and to SQLAlchemy expressions. See README.md in this folder.

Imports point one way: rules -> metadata. No database session, no HTTP.
"""

from crm_platform.rules.checker import PURPOSES, Checked, Dependencies
from crm_platform.rules.compile_python import CompiledExpression, compile_python
from crm_platform.rules.compile_sql import compile_filter
from crm_platform.rules.context import EvalContext, Relation, SqlContext, UserInfo
from crm_platform.rules.errors import RuleError, RuleErrors
from crm_platform.rules.expressions import (
    check_expression,
    checked_expression,
    compile_expression,
    compile_filter_text,
)
from crm_platform.rules.functions import FUNCTIONS
from crm_platform.rules.parser import parse_expression
from crm_platform.rules.runtime import percent_from_stored, percent_to_stored
from crm_platform.rules.statements import Rule, RuleSet, check_rule_file
from crm_platform.rules.types import RuleType

__all__ = [
    "FUNCTIONS",
    "PURPOSES",
    "Checked",
    "CompiledExpression",
    "Dependencies",
    "EvalContext",
    "Relation",
    "Rule",
    "RuleError",
    "RuleErrors",
    "RuleSet",
    "RuleType",
    "SqlContext",
    "UserInfo",
    "check_expression",
    "check_rule_file",
    "checked_expression",
    "compile_expression",
    "compile_filter",
    "compile_filter_text",
    "compile_python",
    "parse_expression",
    "percent_from_stored",
    "percent_to_stored",
]
