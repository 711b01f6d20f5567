"""The value types of the rules language and the rules that combine them.

Numbers come in four kinds (integer, decimal, money, percent) that mix freely in arithmetic;
the kind of a result follows `arithmetic_result`. A percent's value in the language is the
fraction (a stored 12.5 reads as 0.125). Picklists are text with a known set of values.
"""

from __future__ import annotations

from dataclasses import dataclass

from crm_platform.metadata.field_types import SYSTEM_TARGETS
from crm_platform.metadata.model import Field

NUMERIC_KINDS = frozenset({"integer", "decimal", "money", "percent"})
TEXT_KINDS = frozenset({"text", "picklist"})
ORDERED_KINDS = NUMERIC_KINDS | frozenset({"text", "date", "datetime"})

_DISPLAY = {
    "integer": "number",
    "decimal": "number",
    "money": "money",
    "percent": "percent",
    "text": "text",
    "boolean": "boolean",
    "date": "date",
    "datetime": "date and time",
    "picklist": "picklist",
    "multi_picklist": "multi-picklist",
    "null": "null",
    "any": "value",
}


@dataclass(frozen=True)
class RuleType:
    """A type: `kind`, plus the picklist values, the referenced entity or the list item type."""

    kind: str
    options: tuple[str, ...] = ()
    owner: str | None = None  # "entity.field" of a picklist or multi-picklist
    entity: str | None = None  # target of a reference or relation
    item: RuleType | None = None  # item type of a list

    def __str__(self) -> str:
        if self.kind == "reference":
            return f"reference to {self.entity}"
        if self.kind == "relation":
            return f"related {self.entity} records"
        if self.kind == "list":
            return f"list of {self.item}" if self.item and self.item.kind != "null" else "list"
        if self.kind in ("picklist", "multi_picklist") and self.owner:
            return f"{_DISPLAY[self.kind]} {self.owner}"
        return _DISPLAY.get(self.kind, self.kind)

    @property
    def numeric(self) -> bool:
        return self.kind in NUMERIC_KINDS

    @property
    def textual(self) -> bool:
        return self.kind in TEXT_KINDS

    @property
    def unknown(self) -> bool:
        """The type of an expression that already has an error (checks against it pass)."""
        return self.kind == "any"

    @property
    def vague(self) -> bool:
        """Null or unknown: fits anywhere."""
        return self.kind in ("any", "null")


INTEGER = RuleType("integer")
DECIMAL = RuleType("decimal")
MONEY = RuleType("money")
PERCENT = RuleType("percent")
TEXT = RuleType("text")
BOOLEAN = RuleType("boolean")
DATE = RuleType("date")
DATETIME = RuleType("datetime")
NULL = RuleType("null")
ANY = RuleType("any")


def reference(entity: str) -> RuleType:
    return RuleType("reference", entity=entity)


def list_of(item: RuleType) -> RuleType:
    return RuleType("list", item=item)


USER_ENTITY = SYSTEM_TARGETS["user"]  # "crm_user"
UNIT_ENTITY = SYSTEM_TARGETS["org_unit"]  # "crm_org_unit"
FILE_ENTITY = "crm_file"

USER_ATTRIBUTES: dict[str, RuleType] = {
    "id": reference(USER_ENTITY),
    "name": TEXT,
    "email": TEXT,
    "role": TEXT,
    "roles": list_of(TEXT),
    "unit": reference(UNIT_ENTITY),
}

_SIMPLE = {
    "text": TEXT,
    "long_text": TEXT,
    "email": TEXT,
    "phone": TEXT,
    "url": TEXT,
    "auto_number": TEXT,
    "integer": INTEGER,
    "decimal": DECIMAL,
    "money": MONEY,
    "percent": PERCENT,
    "boolean": BOOLEAN,
    "date": DATE,
    "datetime": DATETIME,
}


def field_type(entity: str, field: Field) -> RuleType:
    """The type of a field's value in the language."""
    if field.type in ("child_table", "many_to_many"):
        return RuleType("relation", entity=field.entity)
    kind = field.value_type
    if kind in _SIMPLE:
        return _SIMPLE[kind]
    if kind in ("picklist", "multi_picklist"):
        return RuleType(kind, options=field.option_values, owner=f"{entity}.{field.name}")
    if kind == "reference":  # `entity: user` / `org_unit` point at the platform's tables
        return reference(SYSTEM_TARGETS.get(field.entity or "", field.entity or ""))
    if kind == "file":
        return reference(FILE_ENTITY)
    return ANY


def arithmetic_result(op: str, left: RuleType, right: RuleType) -> RuleType | None:
    """The type of `left op right`, or None when the operation makes no sense."""
    if left.unknown or right.unknown:
        return ANY
    if left.kind == "null" and right.kind == "null":
        return NULL
    if (left.numeric or left.kind == "null") and (right.numeric or right.kind == "null"):
        return _numeric_result(
            op, left if left.numeric else right, right if right.numeric else left
        )
    if op in "+-" and left.kind == "date" and right.kind in ("integer", "null"):
        return DATE
    if op == "+" and left.kind in ("integer", "null") and right.kind == "date":
        return DATE
    if op == "-" and left.kind == "date" and right.kind == "date":
        return INTEGER
    if (
        op == "+"
        and (left.textual or left.kind == "null")
        and (right.textual or right.kind == "null")
    ):
        return TEXT
    return None


def _numeric_result(op: str, left: RuleType, right: RuleType) -> RuleType:
    kinds = {left.kind, right.kind}
    if op in "+-":
        if len(kinds) == 1:
            return left
        if "money" in kinds:
            return MONEY
        return DECIMAL
    if op == "*":
        if kinds == {"integer"}:
            return INTEGER
        if "money" in kinds and kinds != {"money"}:
            return MONEY
        return DECIMAL
    # division
    if left.kind == "money" and right.kind != "money":
        return MONEY
    return DECIMAL


def comparable(left: RuleType, right: RuleType) -> bool:
    """May `left = right` be asked?"""
    if left.vague or right.vague:
        return True
    if left.numeric and right.numeric:
        return True
    if left.textual and right.textual:
        return True
    if left.kind == right.kind == "reference":
        return left.entity == right.entity
    if {left.kind, right.kind} == {"reference", "integer"}:
        return True  # a record id written as a number
    return left.kind == right.kind and left.kind in ("boolean", "date", "datetime")


def ordered(kind: RuleType) -> bool:
    """May values of this type be compared with < and >?"""
    return kind.vague or kind.kind in ORDERED_KINDS


def unify(left: RuleType, right: RuleType) -> RuleType | None:
    """One type for two branches (if, case, coalesce, list items), or None when they clash."""
    if left.unknown or right.unknown:
        return ANY
    if left.kind == "null":
        return right
    if right.kind == "null":
        return left
    if left == right:
        return left
    if left.numeric and right.numeric:
        kinds = {left.kind, right.kind}
        for special in ("money", "percent"):
            if special in kinds and kinds <= {special, "integer", "decimal"}:
                return RuleType(special)
        return DECIMAL
    if left.textual and right.textual:
        return TEXT
    if left.kind == right.kind and left.kind in ("boolean", "date", "datetime"):
        return left
    if left.kind == right.kind == "reference" and left.entity == right.entity:
        return left
    if left.kind == right.kind == "list" and left.item and right.item:
        item = unify(left.item, right.item)
        return list_of(item) if item else None
    return None


def fits(value: RuleType, target: RuleType) -> bool:
    """May a value of type `value` be stored in a field of type `target`?"""
    if value.vague or target.unknown:
        return True
    kind = target.kind
    if kind == "integer":
        return value.kind == "integer"
    if target.numeric:
        return value.numeric
    if kind in ("text", "picklist"):
        return value.textual
    if kind == "multi_picklist":
        return value.kind == "multi_picklist" or (
            value.kind == "list" and (value.item is None or value.item.textual or value.item.vague)
        )
    if kind == "reference":
        return value.kind == "reference" and value.entity == target.entity
    return value.kind == kind


def parse_type_name(name: str) -> RuleType | None:
    """A formula's declared result type (FORMULA_RESULT_TYPES) as a RuleType."""
    return _SIMPLE.get(name)
