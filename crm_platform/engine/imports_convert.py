"""Converting an import file's cells into the form the record service accepts, by field type:
yes/no words in English and Chinese, dates in common formats, numbers without currency signs or
thousands separators, picklists by value or either label, Excel's typed cells. What cannot be
converted is passed on as it is, so the record service names the problem in its own words.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from crm_platform.engine.imports_mapping import CURRENCY_SUFFIX, Target
from crm_platform.engine.imports_read import Percent, cell_text, number_text
from crm_platform.engine.records.errors import FieldError
from crm_platform.metadata.model import Field
from crm_platform.metadata.values import is_blank

TRUE_WORDS = {"true", "yes", "y", "1", "on", "t", "x", "✓", "✔", "√", "是", "对", "真", "有", "有效", "启用"}
FALSE_WORDS = {"false", "no", "n", "0", "off", "f", "✗", "✘", "×", "否", "不", "假", "无", "无效", "停用"}
LIST_SEPARATORS = re.compile(r"\s*[;,，；、|\n]\s*")
CURRENCY_SIGNS = "¥￥$€£"
CURRENCY_CODE = re.compile(r"^(?:([A-Z]{3})\s*)?(.*?)(?:\s*([A-Z]{3}))?$")
DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%Y.%m.%d", "%Y%m%d", "%Y年%m月%d日", "%d.%m.%Y", "%d-%b-%Y", "%d %b %Y",
                "%b %d, %Y", "%B %d, %Y", "%d %B %Y", "%Y-%m", "%Y/%m", "%Y年%m月")
TIME_FORMATS = ("%H:%M:%S", "%H:%M", "%H时%M分", "%H:%M:%S.%f")
DATE_AND_TIME = re.compile(r"^(\d{4}年\d{1,2}月\d{1,2}日|\S+)\s*(.*)$")
SLASHED = re.compile(r"^(\d{1,2})[/\-](\d{1,2})[/\-](\d{4})$")
EXCEL_EPOCH = dt.datetime(1899, 12, 30)


class Unresolved(Exception):
    def __init__(self, message: str, code: str = "invalid") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def clean(text: str) -> str:
    return unicodedata.normalize("NFKC", text).strip()


def text_value(raw: Any) -> str:
    return raw.strip() if isinstance(raw, str) else cell_text(raw)


def to_number(raw: Any, f: Field, currency: list[str]) -> Any:
    if isinstance(raw, Percent):
        return number_text(raw * 100) if f.value_type == "percent" else number_text(float(raw))
    if isinstance(raw, float):
        return number_text(raw)
    if isinstance(raw, int | Decimal) and not isinstance(raw, bool):
        return raw
    if not isinstance(raw, str):
        return raw
    text = clean(raw)
    if f.value_type == "money":
        match = CURRENCY_CODE.match(text)
        if match and (match.group(1) or match.group(3)):
            currency.append(match.group(1) or match.group(3))
            text = match.group(2)
        text = text.strip(CURRENCY_SIGNS + " ")
    if f.value_type in ("integer", "decimal", "money"):
        text = text.replace(" ", "").replace("\u00a0", "")
    return text


def to_boolean(raw: Any) -> Any:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int | float) and raw in (0, 1):
        return bool(raw)
    if isinstance(raw, str):
        word = clean(raw).casefold()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
    return raw


def to_date(raw: Any) -> Any:
    if isinstance(raw, dt.datetime):
        return raw.date().isoformat()
    if isinstance(raw, dt.date):
        return raw.isoformat()
    if isinstance(raw, int | float) and not isinstance(raw, bool) and 1 <= raw < 2958466:
        return (EXCEL_EPOCH + dt.timedelta(days=int(raw))).date().isoformat()
    if not isinstance(raw, str):
        return raw
    text = clean(raw)
    parsed = parse_date(text)
    if parsed is None and " " in text:  # a date with a time: the date part
        parsed = parse_date(text.split(" ", 1)[0])
    if parsed is None and "T" in text:
        parsed = parse_date(text.split("T", 1)[0])
    return parsed.isoformat() if parsed else text


def parse_date(text: str) -> dt.date | None:
    for fmt in DATE_FORMATS:
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    match = SLASHED.match(text)
    if match:  # 05/03/2026: day first or month first, only when the numbers tell
        a, b, year = int(match.group(1)), int(match.group(2)), int(match.group(3))
        if a > 12 >= b:
            return safe_date(year, b, a)
        if b > 12 >= a:
            return safe_date(year, a, b)
        if a == b:
            return safe_date(year, a, b)
    return None


def safe_date(year: int, month: int, day: int) -> dt.date | None:
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


def to_datetime(raw: Any) -> Any:
    if isinstance(raw, dt.datetime):
        return raw.isoformat()
    if isinstance(raw, dt.date):
        return dt.datetime.combine(raw, dt.time(0)).isoformat()
    if isinstance(raw, int | float) and not isinstance(raw, bool) and 1 <= raw < 2958466:
        return (EXCEL_EPOCH + dt.timedelta(days=float(raw))).replace(microsecond=0).isoformat()
    if not isinstance(raw, str):
        return raw
    text = clean(raw)
    try:
        dt.datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
        return text
    except ValueError:
        pass
    match = DATE_AND_TIME.match(text)
    day = parse_date(match.group(1)) if match else None
    if match is None or day is None:
        return text
    rest = match.group(2).strip()
    if not rest:
        return dt.datetime.combine(day, dt.time(0)).isoformat()
    for fmt in TIME_FORMATS:
        try:
            return dt.datetime.combine(day, dt.datetime.strptime(rest, fmt).time()).isoformat()
        except ValueError:
            continue
    return text


def to_option(f: Field, raw: Any) -> Any:
    if raw is None:
        return None
    text = clean(cell_text(raw) if not isinstance(raw, str) else raw)
    if text in f.option_values:
        return text
    wanted = text.casefold()
    for option in f.options:
        if wanted in (option.value.casefold(), clean(option.label.en).casefold(), clean(option.label.zh_cn).casefold()):
            return option.value
    return text


def split_list(raw: Any) -> list[str]:
    text = raw if isinstance(raw, str) else cell_text(raw)
    return [part for part in LIST_SEPARATORS.split(text.strip()) if part]


def convert_cells(columns: list[Target | None], cells: list[Any], resolve: Callable[[Field, str], int]) -> tuple[dict[str, Any], list[FieldError]]:
    """A row's mapped, non-blank cells as values for the record service, and what could not be
    converted (`resolve` finds a reference's record by its title or id)."""
    values: dict[str, Any] = {}
    errors: list[FieldError] = []
    for index, target in enumerate(columns):
        if target is None or not target.writable:
            continue
        raw = cells[index]
        if is_blank(raw):
            continue
        f = target.field
        if f is None:  # the currency of a money field
            values[target.name] = clean(text_value(raw)).upper()
            continue
        kind = f.value_type
        try:
            if kind in ("integer", "decimal", "money", "percent"):
                currency: list[str] = []
                values[f.name] = to_number(raw, f, currency)
                if currency and not any(t is not None and t.name == f.name + CURRENCY_SUFFIX for t in columns):
                    values[f.name + CURRENCY_SUFFIX] = currency[0]
            elif kind == "boolean":
                values[f.name] = to_boolean(raw)
            elif kind == "date":
                values[f.name] = to_date(raw)
            elif kind == "datetime":
                values[f.name] = to_datetime(raw)
            elif kind == "picklist":
                values[f.name] = to_option(f, raw)
            elif kind == "multi_picklist":
                values[f.name] = [to_option(f, part) for part in split_list(raw)]
            elif kind == "reference":
                values[f.name] = resolve(f, text_value(raw))
            elif f.type == "many_to_many":
                values[f.name] = [resolve(f, part) for part in split_list(raw)]
            elif kind == "long_text":
                values[f.name] = raw.strip("\r\n") if isinstance(raw, str) else cell_text(raw)
            else:
                values[f.name] = text_value(raw)
        except Unresolved as exc:
            errors.append(FieldError(f.name, exc.message, exc.code))
    return values, errors
