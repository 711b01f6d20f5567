"""The catalogue of field types: which properties each accepts and how it is stored."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldType:
    """What a field type is: its name, the extra properties it accepts, whether it is a column."""

    name: str
    properties: frozenset[str]
    stored: bool = True  # False for child tables and N:N relations (no column on the entity)
    writable: bool = True  # False for auto-numbers and formulas (computed by the platform)


_COMMON = frozenset(
    {"name", "type", "label", "help", "required", "default", "indexed", "renamed_from", "read_only"}
)


def _t(name: str, *extra: str, stored: bool = True, writable: bool = True) -> FieldType:
    # A computed field (auto-number, formula) is never typed in: required and default do not apply.
    common = _COMMON if writable else _COMMON - {"required", "default"}
    return FieldType(name, common | frozenset(extra), stored, writable)


FIELD_TYPES: dict[str, FieldType] = {
    t.name: t
    for t in (
        _t("text", "max_length", "unique"),
        _t("long_text"),
        _t("integer", "min", "max", "unique"),
        _t("decimal", "precision", "scale", "min", "max"),
        _t("money", "precision", "scale", "min", "max", "currency"),
        _t("percent", "min", "max"),
        _t("boolean"),
        _t("date"),
        _t("datetime"),
        _t("picklist", "options"),
        _t("multi_picklist", "options"),
        _t("reference", "entity", "on_delete"),
        _t("email", "unique"),
        _t("phone"),
        _t("url"),
        _t("file", "max_size_mb", "accept"),
        _t("auto_number", "format", writable=False),
        _t("formula", "expression", "result_type", "precision", "scale", "currency", writable=False),
        _t("child_table", "entity", stored=False),
        _t("many_to_many", "entity", stored=False),
    )
}

FIELD_TYPE_NAMES: tuple[str, ...] = tuple(FIELD_TYPES)

# Types a formula may produce.
FORMULA_RESULT_TYPES = ("text", "integer", "decimal", "money", "percent", "boolean", "date", "datetime")

# Types whose values are numbers (used by filters and validation).
NUMERIC_TYPES = frozenset({"integer", "decimal", "money", "percent"})

# Default sizes, kept here so storage and validation agree.
DEFAULT_TEXT_LENGTH = 255
DEFAULT_DECIMAL = (18, 4)
DEFAULT_MONEY = (18, 2)
PERCENT_PRECISION = (9, 4)
EMAIL_LENGTH = 254
PHONE_LENGTH = 40
URL_LENGTH = 2048
PICKLIST_LENGTH = 64
AUTO_NUMBER_LENGTH = 64
DEFAULT_CURRENCY = "CNY"

# Names every entity table carries; a field may not use them.
SYSTEM_COLUMNS = (
    "id",
    "created_at",
    "created_by",
    "updated_at",
    "updated_by",
    "owner_id",
    "unit_id",
    "version",
    "state",
    "deleted_at",
    "parent_id",
)

ON_DELETE = ("restrict", "set_null", "cascade")

# Reserved reference targets: platform tables instead of pack entities (like Salesforce's
# Lookup(User)). `type: reference, entity: user` names a user, `entity: org_unit` an org unit.
# No pack entity may take these names. Users are deactivated, not deleted, so such a field
# may restrict a deletion or be emptied by it (set_null), never cascade.
SYSTEM_TARGETS: dict[str, str] = {"user": "crm_user", "org_unit": "crm_org_unit"}
SYSTEM_TARGET_ON_DELETE = ("restrict", "set_null")
