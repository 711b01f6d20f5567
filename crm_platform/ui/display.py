"""How a stored value reads on screen: picklist labels, money with currency, dates, yes/no."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal, InvalidOperation
from typing import Any

from crm_platform.metadata.field_types import DEFAULT_CURRENCY
from crm_platform.metadata.model import Field
from crm_platform.ui.i18n import translate

CURRENCY_SIGNS = {"CNY": "¥", "USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "HKD": "HK$"}


def number_text(value: Any, places: int | None = None) -> str:
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return str(value)
    if places is not None:
        number = number.quantize(Decimal(1).scaleb(-places))
    text = f"{number:,f}"
    if "." in text and places is None:
        text = text.rstrip("0").rstrip(".")
    return text


def currency_of(field: Field, record: dict[str, Any]) -> str:
    """The currency a money value is shown in: a money field's own `<name>_currency`, else the
    field's declared currency, else the site default (a computed money field stores none)."""
    stored = record.get(f"{field.name}_currency")
    if isinstance(stored, str) and stored:
        return stored
    return field.currency or DEFAULT_CURRENCY


def currency_sign(field: Field, record: dict[str, Any]) -> str:
    """What goes before a money amount: ¥, $... or the code and a space for other currencies."""
    currency = currency_of(field, record)
    return CURRENCY_SIGNS.get(currency, currency + " ")


def display_value(field: Field, record: dict[str, Any], language: str) -> str:
    """Plain text of a field's value in `record` (JSON form, as the record service returns it)."""
    value = record.get(field.name)
    if value is None or value == [] or value == "":
        return ""
    kind = field.value_type
    if field.name == "owner_id" and "owner_id" in record.get("_titles", {}):
        return str(record["_titles"]["owner_id"])
    if kind == "picklist":
        option = next((o for o in field.options if o.value == value), None)
        return option.label.get(language) if option else str(value)
    if kind == "multi_picklist":
        labels = {o.value: o.label.get(language) for o in field.options}
        return ", ".join(labels.get(v, v) for v in value)
    if kind == "boolean":
        return translate("yes" if value else "no", language)
    if kind == "money":
        return f"{currency_sign(field, record)}{number_text(value, field.scale if field.scale is not None else 2)}"
    if kind == "percent":
        return f"{number_text(value)}%"
    if kind in ("decimal", "integer"):
        return number_text(value)
    if kind == "datetime":
        try:
            moment = dt.datetime.fromisoformat(str(value))
        except ValueError:
            return str(value)
        return moment.strftime("%Y-%m-%d %H:%M UTC")
    if kind in ("reference", "file"):
        return str(record.get("_titles", {}).get(field.name) or f"#{value}")
    if field.type == "many_to_many":
        titles = record.get("_titles", {}).get(field.name)
        return ", ".join(titles) if isinstance(titles, list) else ", ".join(f"#{v}" for v in value)
    return str(value)


def option_color(field: Field, value: Any) -> str | None:
    option = next((o for o in field.options if o.value == value), None)
    return option.color if option else None


def form_value(field: Field, record: dict[str, Any] | None) -> str:
    """The text a form input shows for the current value."""
    if record is None:
        return ""
    value = record.get(field.name)
    if value is None:
        return ""
    if field.value_type == "datetime":
        try:
            return dt.datetime.fromisoformat(str(value)).strftime("%Y-%m-%dT%H:%M")
        except ValueError:
            return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if field.value_type in ("decimal", "percent") and isinstance(value, str) and "." in value:
        return value.rstrip("0").rstrip(".")
    return str(value)
