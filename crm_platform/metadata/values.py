"""Parsing and checking one value against a field's type: shared by the loader and the record service.

`parse_value` turns what a user, a form or a pack wrote into the Python value stored for the
field (Decimal for money, date for dates, list for multi-picklists ...), or raises ValueError
with a message written for the person who typed the value.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from crm_platform.metadata import field_types as ft
from crm_platform.metadata.model import Field

_PHONE = re.compile(r"^\+?[0-9 ()\-./]{3,40}(\s*(ext|x|#)\s*[0-9]{1,6})?$", re.IGNORECASE)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_URL = re.compile(r"^https?://[^\s/$.?#].[^\s]*$", re.IGNORECASE)
_CURRENCY = re.compile(r"^[A-Z]{3}$")


def is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip() == "") or value == []


def parse_value(field: Field, raw: Any) -> Any:
    """The stored Python value of `raw` for `field`; None for blank. Raises ValueError."""
    if is_blank(raw):
        return None
    kind = field.value_type
    parser = _PARSERS.get(kind)
    if parser is None:
        raise ValueError(f"fields of type {field.type} cannot be set directly")
    return parser(field, raw)


def _text(field: Field, raw: Any) -> str:
    if not isinstance(raw, (str, int, float, Decimal)) or isinstance(raw, bool):
        raise ValueError("expected text")
    value = str(raw)
    limit = field.max_length or (None if field.type == "long_text" else ft.DEFAULT_TEXT_LENGTH)
    if field.type == "formula":
        limit = ft.DEFAULT_TEXT_LENGTH
    if limit is not None and len(value) > limit:
        raise ValueError(f"at most {limit} characters allowed, got {len(value)}")
    return value


def _integer(field: Field, raw: Any) -> int:
    if isinstance(raw, bool):
        raise ValueError(f"expected a whole number, got {raw!r}")
    if isinstance(raw, int):
        value = raw
    elif isinstance(raw, float) and raw.is_integer():
        value = int(raw)
    elif isinstance(raw, (str, Decimal)):
        text = str(raw).strip().replace(",", "")
        if not re.fullmatch(r"[-+]?\d+", text):
            raise ValueError(f"expected a whole number, got {str(raw)!r}")
        value = int(text)
    else:
        raise ValueError(f"expected a whole number, got {raw!r}")
    if abs(value) > 2**63 - 1:
        raise ValueError("number too large")
    _check_range(field, Decimal(value))
    return value


def _precision(field: Field) -> tuple[int, int]:
    if field.value_type == "money":
        default = ft.DEFAULT_MONEY
    elif field.value_type == "percent":
        default = ft.PERCENT_PRECISION
    else:
        default = ft.DEFAULT_DECIMAL
    return field.precision or default[0], field.scale if field.scale is not None else default[1]


def _decimal(field: Field, raw: Any) -> Decimal:
    if isinstance(raw, bool):
        raise ValueError("expected a number")
    if isinstance(raw, float):
        raw = repr(raw)
    if isinstance(raw, str):
        raw = raw.strip().replace(",", "")
        if field.value_type == "percent":
            raw = raw.rstrip("%").strip()
    try:
        value = Decimal(raw)
    except (InvalidOperation, TypeError, ValueError):
        raise ValueError(f"expected a number, got {str(raw)!r}") from None
    if not value.is_finite():
        raise ValueError("expected a finite number")
    precision, scale = _precision(field)
    if value.copy_abs() >= 1 and value.adjusted() + 1 > precision - scale:  # checked before quantizing, which fails past the context's digits
        raise ValueError(f"too large: at most {precision - scale} digits before the decimal point")
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > scale:
        quantized = value.quantize(Decimal(1).scaleb(-scale))
        if quantized != value:
            raise ValueError(f"at most {scale} decimal places allowed")
        value = quantized
    digits_before = len(str(int(value.copy_abs())))
    if value.copy_abs() >= 1 and digits_before > precision - scale:
        raise ValueError(f"too large: at most {precision - scale} digits before the decimal point")
    _check_range(field, value)
    return value.quantize(Decimal(1).scaleb(-scale))


def _check_range(field: Field, value: Decimal) -> None:
    if field.min is not None and value < _bound(field, "min"):
        raise ValueError(f"must be at least {field.min}")
    if field.max is not None and value > _bound(field, "max"):
        raise ValueError(f"must be at most {field.max}")


def _bound(field: Field, which: str) -> Decimal:
    raw = getattr(field, which)
    try:
        return Decimal(str(raw))
    except InvalidOperation:
        raise ValueError(f"the field's {which} ({raw!r}) is not a number") from None


def _boolean(field: Field, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.strip().lower() in ("true", "1", "yes", "on"):
        return True
    if isinstance(raw, str) and raw.strip().lower() in ("false", "0", "no", "off"):
        return False
    if isinstance(raw, int) and raw in (0, 1):
        return bool(raw)
    raise ValueError("expected true or false")


def _date(field: Field, raw: Any) -> dt.date:
    if isinstance(raw, dt.datetime):
        return raw.date()
    if isinstance(raw, dt.date):
        return raw
    if isinstance(raw, str):
        try:
            return dt.date.fromisoformat(raw.strip())
        except ValueError:
            pass
    raise ValueError(f"expected a date as YYYY-MM-DD, got {str(raw)!r}")


def _datetime(field: Field, raw: Any) -> dt.datetime:
    value: dt.datetime | None = None
    if isinstance(raw, dt.datetime):
        value = raw
    elif isinstance(raw, str):
        text = raw.strip()
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        try:
            value = dt.datetime.fromisoformat(text)
        except ValueError:
            value = None
    if value is None:
        raise ValueError(f"expected a date and time as YYYY-MM-DDTHH:MM[:SS][+hh:mm], got {str(raw)!r}")
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def _picklist(field: Field, raw: Any) -> str:
    if not isinstance(raw, str) or raw not in field.option_values:
        allowed = ", ".join(field.option_values)
        raise ValueError(f"{raw!r} is not one of the allowed values: {allowed}")
    return raw


def _multi_picklist(field: Field, raw: Any) -> list[str]:
    items = raw.split(";") if isinstance(raw, str) else raw
    if not isinstance(items, (list, tuple)):
        raise ValueError("expected a list of values")
    seen: list[str] = []
    for item in items:
        if is_blank(item):
            continue
        value = _picklist(field, item.strip() if isinstance(item, str) else item)
        if value not in seen:
            seen.append(value)
    order = field.option_values
    return sorted(seen, key=order.index)


def _reference(field: Field, raw: Any) -> int:
    if field.system_target:
        return _record_id(field, raw, "the id of a user" if field.system_target == "user" else "the id of an org unit")
    entity = field.entity or "linked"
    article = "an" if entity[:1] in ("a", "e", "i", "o", "u") else "a"
    return _record_id(field, raw, f"the id of {article} {entity} record")


def _file(field: Field, raw: Any) -> int:
    return _record_id(field, raw, "the id of an uploaded file")


def _record_id(field: Field, raw: Any, expected: str) -> int:
    """A positive id, given as a number, numeric text or an object with an `id`."""
    if isinstance(raw, dict) and "id" in raw:
        raw = raw["id"]
    try:
        value = _integer(field, raw)
    except ValueError:
        raise ValueError(f"expected {expected}") from None
    if value <= 0:
        raise ValueError(f"expected {expected}")
    return value


def _email(field: Field, raw: Any) -> str:
    if not isinstance(raw, str) or not _EMAIL.match(raw.strip()) or len(raw) > ft.EMAIL_LENGTH:
        raise ValueError(f"{raw!r} is not a valid email address")
    return raw.strip()


def _phone(field: Field, raw: Any) -> str:
    if not isinstance(raw, (str, int)) or not _PHONE.match(str(raw).strip()):
        raise ValueError(f"{raw!r} is not a valid phone number")
    return str(raw).strip()


def _url(field: Field, raw: Any) -> str:
    if not isinstance(raw, str) or not _URL.match(raw.strip()) or len(raw) > ft.URL_LENGTH:
        raise ValueError(f"{raw!r} is not a valid http(s) URL")
    return raw.strip()


def parse_currency(raw: Any) -> str:
    if not isinstance(raw, str) or not _CURRENCY.match(raw):
        raise ValueError(f"{raw!r} is not a currency code (three capital letters, e.g. CNY)")
    return raw


_PARSERS = {
    "text": _text,
    "long_text": _text,
    "integer": _integer,
    "decimal": _decimal,
    "money": _decimal,
    "percent": _decimal,
    "boolean": _boolean,
    "date": _date,
    "datetime": _datetime,
    "picklist": _picklist,
    "multi_picklist": _multi_picklist,
    "reference": _reference,
    "file": _file,
    "email": _email,
    "phone": _phone,
    "url": _url,
}


def to_json(field: Field, value: Any) -> Any:
    """The JSON form of a stored value (Decimal and dates as strings, lists as lists)."""
    if value is None:
        return None
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return value
