"""Reading an uploaded import file: CSV (UTF-8 with or without BOM, UTF-16, GBK; the delimiter
sniffed) or the first sheet of an .xlsx workbook, as a header row and numbered rows of cells.

    table = read_table(data, "accounts.xlsx")   # SourceTable(headers, rows, file_format, ...)

Excel's typed cells stay typed (numbers, dates, booleans; percentages as `Percent`); row
numbers are the ones a spreadsheet shows. An unreadable file is a BadRequest naming the file.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import warnings
from dataclasses import dataclass
from typing import Any

from crm_platform.engine.records.errors import BadRequest, FieldError
from crm_platform.metadata.values import is_blank

MAX_ROWS = 500_000
CSV_DELIMITERS = (",", ";", "\t", "|")


class Percent(float):
    """An Excel number shown as a percentage (0.15 displayed as 15%)."""


@dataclass
class SourceTable:
    """An uploaded file as a header and rows of cells; row numbers are the ones a spreadsheet shows."""

    headers: list[str]
    rows: list[tuple[int, list[Any]]]
    file_format: str  # csv | xlsx
    encoding: str | None = None
    delimiter: str | None = None

    def samples(self, column: int, count: int = 3) -> list[str]:
        found = []
        for _number, cells in self.rows:
            if column < len(cells) and not is_blank(cells[column]):
                found.append(cell_text(cells[column]))
                if len(found) == count:
                    break
        return found


def read_table(data: bytes, file_name: str = "") -> SourceTable:
    """The first sheet of an .xlsx file or a CSV file; BadRequest (naming the file) when unreadable."""
    name = (file_name or "").lower()
    if data[:4] == b"PK\x03\x04" or name.endswith((".xlsx", ".xlsm")):
        return _read_xlsx(data)
    if data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" or name.endswith(".xls"):
        raise _file_error("old Excel files (.xls) are not read: save the sheet as .xlsx or CSV")
    return _read_csv(data)


def _file_error(message: str) -> BadRequest:
    return BadRequest(message, [FieldError("file", message, "bad_file")])


def _decode(data: bytes) -> tuple[str, str]:
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="replace"), "utf-8-sig"
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):  # Excel's "Unicode text"
        return data.decode("utf-16"), "utf-16"
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030"), "gbk"  # Chinese Excel saves CSV in GBK (gb18030 is its superset)
    except UnicodeDecodeError:
        raise _file_error("the file is neither UTF-8 nor GBK text, nor an .xlsx workbook") from None


def _sniff_delimiter(text: str) -> str:
    """The candidate that splits the first lines into the most columns, consistently."""
    lines = [line for line in text.splitlines()[:20] if line.strip()]
    if not lines:
        return ","
    best, best_score = ",", (0, 0)
    for delimiter in CSV_DELIMITERS:
        widths = [len(row) for row in csv.reader(lines, delimiter=delimiter)]
        header = widths[0]
        if header < 2:
            continue
        agree = sum(1 for w in widths if w == header)
        score = (agree, header)
        if score > best_score:
            best, best_score = delimiter, score
    return best


def _read_csv(data: bytes) -> SourceTable:
    text, encoding = _decode(data)
    if "\x00" in text:
        raise _file_error("the file is not a text (CSV) file or an .xlsx workbook")
    delimiter = _sniff_delimiter(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        records = list(reader)
    except csv.Error as exc:
        raise _file_error(f"the CSV file cannot be read: {exc}") from None
    return _table(records, "csv", encoding, delimiter)


def _read_xlsx(data: bytes) -> SourceTable:
    import openpyxl

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # openpyxl warns about styles and extensions it skips
        try:
            book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        except Exception as exc:  # noqa: BLE001 - a broken or foreign file (zip, XML, missing parts)
            raise _file_error(f"the Excel file cannot be read: {exc}") from None
        try:
            sheet = book.active if book.active is not None else book.worksheets[0]
            records = [[_xlsx_value(cell) for cell in row] for row in sheet.iter_rows(min_row=1)]
        except Exception as exc:  # noqa: BLE001
            raise _file_error(f"the Excel file cannot be read: {exc}") from None
        finally:
            book.close()
    return _table(records, "xlsx")


def _xlsx_value(cell: Any) -> Any:
    """A cell's value as Excel typed it (numbers, dates, booleans, text); percentages marked."""
    value = getattr(cell, "value", None)
    if isinstance(value, float | int) and not isinstance(value, bool) and "%" in (getattr(cell, "number_format", "") or ""):
        return Percent(value)
    return value


def _table(records: list[list[Any]], file_format: str, encoding: str | None = None, delimiter: str | None = None) -> SourceTable:
    header_index = next((i for i, r in enumerate(records) if any(not is_blank(c) for c in r)), None)
    if header_index is None:
        raise _file_error("the file has no header row")
    header = list(records[header_index])
    while header and is_blank(header[-1]):
        header.pop()
    headers = []
    for index, cell in enumerate(header):
        text = cell_text(cell).strip() if not is_blank(cell) else ""
        headers.append(text or f"({_column_letter(index)})")
    rows = []
    for index in range(header_index + 1, len(records)):
        cells = list(records[index][: len(headers)])
        if not any(not is_blank(c) for c in cells):
            continue
        cells += [None] * (len(headers) - len(cells))
        rows.append((index + 1, cells))
    if len(rows) > MAX_ROWS:
        raise _file_error(f"the file has {len(rows)} rows; at most {MAX_ROWS} are imported at once")
    return SourceTable(headers, rows, file_format, encoding, delimiter)


def _column_letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def cell_text(value: Any) -> str:
    """A cell as the text a person sees in it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, Percent):
        return f"{number_text(value * 100)}%"
    if isinstance(value, float):
        return number_text(value)
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time(0) and value.tzinfo is None else value.isoformat(sep=" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value)


def number_text(value: float) -> str:
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return format(value, ".15g")
