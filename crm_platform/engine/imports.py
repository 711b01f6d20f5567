"""Importing records from CSV and Excel files: read, map columns to fields, convert, check, write.

    table = read_table(data, "accounts.xlsx")           # CSV (UTF-8 with or without BOM, GBK) or .xlsx
    mapping = suggest_mapping(site, actor, entity, table.headers)   # column -> field by name or label
    importer = Importer(site, actor, "account", table, ImportSettings(mapping, key="name", mode="valid"))
    result = importer.run(dry_run=True)                 # every bad row with field and reason; nothing kept

Every row goes through the record service (`RecordService.create` / `.update`) inside one
transaction of the import, so a row is checked exactly as a save through the API would be
(types, required fields, references, rules, workflow, permissions): the dry run rolls that
transaction back, "all or nothing" rolls it back when any row failed, "valid rows only" keeps
the rows that passed (each row runs in a savepoint, so a refused row leaves nothing behind).

Before the service sees them, cell values are brought into the form it accepts: picklists by
value or by either label, references by the target's title or id, yes/no words in English and
Chinese, dates in common formats, numbers without currency signs or thousands separators,
Excel's typed cells (dates, numbers, percentages). What cannot be converted is passed on as
it is, so the service names the problem in its own words.

With a key field, a row whose key matches a record the user can see updates that record with
the row's non-blank mapped cells (blank cells leave the stored value alone); other rows are
created, owned by the importing user.

The import as a background job with its progress in `crm_import` is in `imports_store.py`.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import datetime as dt
import io
import re
import time
import unicodedata
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from crm_platform.engine.jobs import JobContext, job
from crm_platform.engine.records.actor import Actor
from crm_platform.engine.records.errors import BadRequest, FieldError, RecordError
from crm_platform.metadata import field_types as ft
from crm_platform.metadata.model import Entity, Field, Label
from crm_platform.metadata.values import is_blank, parse_value

if TYPE_CHECKING:
    from crm_platform.engine.site import Site

MODES = ("all", "valid")  # all or nothing | valid rows only
IMPORT_JOB = "import_records"
CHUNK = 500  # rows whose keys and references are looked up together
PROGRESS_EVERY = 0.5  # seconds between progress reports
MAX_ROWS = 500_000
CSV_DELIMITERS = (",", ";", "\t", "|")
KEY_TYPES = ("text", "email", "phone", "integer", "auto_number", "url")
NOT_IMPORTABLE = ("child_table", "file", "formula")
ID_TARGET = "id"
CURRENCY_SUFFIX = "_currency"
ID_LABEL = Label("ID", "ID")

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


# -- reading a file -------------------------------------------------------------------------
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
        return f"{_number_text(value * 100)}%"
    if isinstance(value, float):
        return _number_text(value)
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time(0) and value.tzinfo is None else value.isoformat(sep=" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value)


def _number_text(value: float) -> str:
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return format(value, ".15g")


# -- targets and the suggested mapping ----------------------------------------------------------
@dataclass(frozen=True)
class Target:
    """What a column may be mapped to: a field, the currency of a money field, or the record id."""

    name: str
    label: Label
    field: Field | None
    writable: bool  # False: only a key to find records (the id, auto-numbers, read-only fields)
    keyable: bool


def targets(site: Site, actor: Actor, entity: Entity) -> list[Target]:
    restricted = site.access.field_access(actor, entity)
    found = [Target(ID_TARGET, ID_LABEL, None, False, True)]
    for f in entity.fields:
        if f.type in NOT_IMPORTABLE or restricted.get(f.name) == "hidden":
            continue
        writable = ft.FIELD_TYPES[f.type].writable and restricted.get(f.name) != "read_only"
        found.append(Target(f.name, f.label, f, writable, f.value_type in KEY_TYPES))
        if f.type == "money" and writable:
            label = Label(f"{f.label.en} currency", f"{f.label.zh_cn}币种")
            found.append(Target(f.name + CURRENCY_SUFFIX, label, None, True, False))
    return found


def normalize_header(text: str) -> str:
    """Case, width, spaces and punctuation do not matter when matching a header to a field."""
    text = unicodedata.normalize("NFKC", str(text))
    return re.sub(r"[\s_\-·.:()*/\\#]+", "", text).casefold()


def suggest_mapping(site: Site, actor: Actor, entity: Entity, headers: Sequence[str]) -> list[str | None]:
    """A target per column whose header is a field's name or its English or Chinese label."""
    names: dict[str, str] = {}
    for target in targets(site, actor, entity):
        if target.writable:  # the id and auto-numbers are mapped when chosen as the key
            for text in (target.name, target.label.en, target.label.zh_cn):
                names.setdefault(normalize_header(text), target.name)
    used: set[str] = set()
    mapping: list[str | None] = []
    for header in headers:
        name = names.get(normalize_header(header))
        if name is not None and name not in used:
            used.add(name)
            mapping.append(name)
        else:
            mapping.append(None)
    return mapping


@dataclass
class ImportSettings:
    mapping: list[str | None]  # per column: a target name, or None to skip the column
    key: str | None = None  # update-or-insert by this target; None: every row creates a record
    mode: str = "all"

    def as_dict(self) -> dict[str, Any]:
        return {"mapping": list(self.mapping), "key": self.key, "mode": self.mode}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ImportSettings:
        return cls(list(data.get("mapping") or []), data.get("key") or None, data.get("mode") or "all")


def parse_mapping(raw: Any, headers: Sequence[str]) -> list[str | None]:
    """A mapping sent as a list (per column) or an object {header or column number: field}."""
    if isinstance(raw, list):
        mapping = [str(v) if isinstance(v, str) and v.strip() else None for v in raw[: len(headers)]]
        return mapping + [None] * (len(headers) - len(mapping))
    if not isinstance(raw, dict):
        raise BadRequest("the mapping is {column header: field name}", [FieldError("mapping", "expected an object or a list", "type")])
    mapping = [None] * len(headers)
    errors = []
    for column, target in raw.items():
        index = headers.index(column) if column in headers else (int(column) - 1 if str(column).isdigit() and 0 < int(column) <= len(headers) else None)
        if index is None:
            errors.append(FieldError("mapping", f"the file has no column '{column}'", "unknown_column"))
            continue
        mapping[index] = target if isinstance(target, str) and target.strip() else None
    if errors:
        raise BadRequest(errors[0].message, errors)
    return mapping


# -- the result -----------------------------------------------------------------------------------
@dataclass
class ImportResult:
    total: int
    dry_run: bool
    mode: str
    done: int = 0
    created: int = 0
    updated: int = 0
    failed: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)  # {row, column, field, value, reason, code}
    written: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"total": self.total, "dry_run": self.dry_run, "mode": self.mode, "done": self.done, "created": self.created,
                "updated": self.updated, "failed": self.failed, "valid": self.done - self.failed, "written": self.written,
                "bad_rows": sorted({e["row"] for e in self.errors}), "errors": self.errors}


@dataclass(frozen=True)
class Progress:
    total: int
    done: int
    created: int
    updated: int
    failed: int


class _Rollback(Exception):
    """Leaves the import's transaction without keeping anything."""


# -- running the record service inside the import's transaction -------------------------------------
class _ConnectionView:
    """The import's connection lent to code that opens and ends reads of its own."""

    def __init__(self, conn: sa.Connection) -> None:
        self._conn = conn

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    def rollback(self) -> None:  # a read's own end: the import's transaction goes on
        pass

    def commit(self) -> None:
        pass

    def close(self) -> None:
        pass


class _TransactionEngine:
    """An engine whose transactions are savepoints of one open transaction."""

    def __init__(self, conn: sa.Connection, engine: sa.Engine) -> None:
        self._conn = conn
        self._engine = engine

    @property
    def dialect(self) -> Any:
        return self._engine.dialect

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

    @contextlib.contextmanager
    def begin(self) -> Iterator[sa.Connection]:
        with self._conn.begin_nested():
            yield self._conn

    @contextlib.contextmanager
    def connect(self) -> Iterator[Any]:
        yield _ConnectionView(self._conn)


class _SiteInTransaction:
    """The site as the record service sees it during an import: every write it makes joins the
    import's transaction (a savepoint per record), so the import decides what is kept. Jobs the
    writes add (workflow timers) are delivered after the commit."""

    def __init__(self, site: Site, conn: sa.Connection) -> None:
        from crm_platform.engine.records.service import RecordService

        self._site = site
        self.engine = _TransactionEngine(conn, site.engine)
        self.settings = dataclasses.replace(site.settings, redis_url=None)
        self.records = RecordService(self)  # type: ignore[arg-type]  # a Site in all the service uses

    def __getattr__(self, name: str) -> Any:
        return getattr(self._site, name)


# -- converting cells ---------------------------------------------------------------------------------
class _Unresolved(Exception):
    def __init__(self, message: str, code: str = "invalid") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def _clean(text: str) -> str:
    return unicodedata.normalize("NFKC", text).strip()


def _text_value(raw: Any) -> str:
    return raw.strip() if isinstance(raw, str) else cell_text(raw)


def _number(raw: Any, f: Field, currency: list[str]) -> Any:
    if isinstance(raw, Percent):
        return _number_text(raw * 100) if f.value_type == "percent" else _number_text(float(raw))
    if isinstance(raw, float):
        return _number_text(raw)
    if isinstance(raw, int | Decimal) and not isinstance(raw, bool):
        return raw
    if not isinstance(raw, str):
        return raw
    text = _clean(raw)
    if f.value_type == "money":
        match = CURRENCY_CODE.match(text)
        if match and (match.group(1) or match.group(3)):
            currency.append(match.group(1) or match.group(3))
            text = match.group(2)
        text = text.strip(CURRENCY_SIGNS + " ")
    if f.value_type in ("integer", "decimal", "money"):
        text = text.replace(" ", "").replace("\u00a0", "")
    return text


def _boolean(raw: Any) -> Any:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int | float) and raw in (0, 1):
        return bool(raw)
    if isinstance(raw, str):
        word = _clean(raw).casefold()
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
    return raw


def _date(raw: Any) -> Any:
    if isinstance(raw, dt.datetime):
        return raw.date().isoformat()
    if isinstance(raw, dt.date):
        return raw.isoformat()
    if isinstance(raw, int | float) and not isinstance(raw, bool) and 1 <= raw < 2958466:
        return (EXCEL_EPOCH + dt.timedelta(days=int(raw))).date().isoformat()
    if not isinstance(raw, str):
        return raw
    text = _clean(raw)
    parsed = _parse_date(text)
    if parsed is None and " " in text:  # a date with a time: the date part
        parsed = _parse_date(text.split(" ", 1)[0])
    if parsed is None and "T" in text:
        parsed = _parse_date(text.split("T", 1)[0])
    return parsed.isoformat() if parsed else text


def _parse_date(text: str) -> dt.date | None:
    for fmt in DATE_FORMATS:
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    match = SLASHED.match(text)
    if match:  # 05/03/2026: day first or month first, only when the numbers tell
        a, b, year = int(match.group(1)), int(match.group(2)), int(match.group(3))
        if a > 12 >= b:
            return _safe_date(year, b, a)
        if b > 12 >= a:
            return _safe_date(year, a, b)
        if a == b:
            return _safe_date(year, a, b)
    return None


def _safe_date(year: int, month: int, day: int) -> dt.date | None:
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


def _datetime(raw: Any) -> Any:
    if isinstance(raw, dt.datetime):
        return raw.isoformat()
    if isinstance(raw, dt.date):
        return dt.datetime.combine(raw, dt.time(0)).isoformat()
    if isinstance(raw, int | float) and not isinstance(raw, bool) and 1 <= raw < 2958466:
        return (EXCEL_EPOCH + dt.timedelta(days=float(raw))).replace(microsecond=0).isoformat()
    if not isinstance(raw, str):
        return raw
    text = _clean(raw)
    try:
        dt.datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
        return text
    except ValueError:
        pass
    match = DATE_AND_TIME.match(text)
    day = _parse_date(match.group(1)) if match else None
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


def _option(f: Field, raw: Any) -> Any:
    if raw is None:
        return None
    text = _clean(cell_text(raw) if not isinstance(raw, str) else raw)
    if text in f.option_values:
        return text
    wanted = text.casefold()
    for option in f.options:
        if wanted in (option.value.casefold(), _clean(option.label.en).casefold(), _clean(option.label.zh_cn).casefold()):
            return option.value
    return text


def _split(raw: Any) -> list[str]:
    text = raw if isinstance(raw, str) else cell_text(raw)
    return [part for part in LIST_SEPARATORS.split(text.strip()) if part]


# -- looking up keys and references, a chunk of rows at a time -------------------------------------------
class _Lookups:
    def __init__(self, importer: Importer, conn: sa.Connection) -> None:
        self.importer = importer
        self.site = importer.site
        self.actor = importer.actor
        self.conn = conn
        self.keys: dict[Any, set[int]] = {}
        self.new_keys: dict[Any, set[int]] = {}
        self.titles: dict[str, dict[str, set[int]]] = {}  # target entity -> folded title -> ids
        self.new_titles: dict[str, dict[str, set[int]]] = {}

    def _readable(self, entity: Entity) -> tuple[sa.Table, Any]:
        table = self.site.schema.tables[entity.name]
        return table, sa.and_(table.c.deleted_at.is_(None), self.site.access.row_filter(self.actor, entity, table, "read"))

    def prepare(self, rows: list[tuple[int, list[Any]]]) -> None:
        importer = self.importer
        if importer.key_column is not None:
            values = {v for v in (importer.key_value(cells) for _n, cells in rows) if v is not None and not isinstance(v, _Unresolved)}
            self.keys = self._find_keys(values)
        self.titles = {}
        for index, target in enumerate(importer.columns):
            if target is None or target.field is None or target.field.type not in ("reference", "many_to_many") or not target.writable:
                continue
            f = target.field
            texts: set[str] = set()
            for _n, cells in rows:
                if not is_blank(cells[index]):
                    texts.update(_split(cells[index]) if f.type == "many_to_many" else [_text_value(cells[index])])
            self._find_titles(self.site.registry.entity(f.entity or ""), texts)

    def _find_keys(self, values: set[Any]) -> dict[Any, set[int]]:
        found: dict[Any, set[int]] = {}
        entity = self.importer.entity
        if not values or not self.site.access.can(self.actor, entity, "read"):
            return found  # records the user cannot see are never matched
        table, readable = self._readable(entity)
        column = table.c.id if self.importer.settings.key == ID_TARGET else table.c[self.importer.settings.key or ""]
        listed = sorted(values, key=str)
        for start in range(0, len(listed), CHUNK):
            part = listed[start:start + CHUNK]
            for record_id, value in self.conn.execute(sa.select(table.c.id, column).where(column.in_(part), readable)):
                found.setdefault(value, set()).add(record_id)
        return found

    def _find_titles(self, target: Entity, texts: set[str]) -> None:
        titles = self.titles.setdefault(target.name, {})
        if not texts or not self.site.access.can(self.actor, target, "read"):
            return  # ids only: the record service checks them
        table, readable = self._readable(target)
        if target.title_field and target.title_field in table.c:
            column = table.c[target.title_field]
            exact = sorted(texts)
            folded = sorted({t.casefold() for t in texts})
            query = sa.select(table.c.id, column).where(readable, sa.or_(column.in_(exact), sa.func.lower(column).in_(folded)))
            for record_id, title in self.conn.execute(query):
                titles.setdefault(_fold(title), set()).add(record_id)

    def find(self, key: Any) -> set[int]:
        return self.keys.get(key, set()) | self.new_keys.get(key, set())

    def resolve(self, f: Field, text: str) -> int:
        target = self.site.registry.entity(f.entity or "")
        matches = self.titles.get(target.name, {}).get(_fold(text), set()) | self.new_titles.get(target.name, {}).get(_fold(text), set())
        if len(matches) == 1:
            return next(iter(matches))
        if len(matches) > 1:
            ids = ", ".join(str(i) for i in sorted(matches)[:5])
            raise _Unresolved(f"{len(matches)} {target.label.en} records are called '{text}' (ids {ids}): give the id", "ambiguous_reference")
        bare = text.lstrip("#")
        if bare.isdigit() and len(bare) < 19:
            return int(bare)  # an id: the record service checks that it exists
        what = f"no {target.label.en} is called '{text}'" if target.title_field else f"'{text}' is not the id of a {target.label.en}"
        raise _Unresolved(what, "unknown_reference")

    def remember(self, record_id: int, key: Any, record: dict[str, Any]) -> None:
        if key is not None:
            self.new_keys.setdefault(key, set()).add(record_id)
        entity = self.importer.entity
        title = record.get(entity.title_field) if entity.title_field else None
        if isinstance(title, str):
            self.new_titles.setdefault(entity.name, {}).setdefault(_fold(title), set()).add(record_id)


def _fold(text: Any) -> str:
    return _clean(str(text)).casefold()


# -- the importer -----------------------------------------------------------------------------------------
class Importer:
    """One import of a table into an entity; `check()` refuses bad settings, `run()` does the rows."""

    def __init__(self, site: Site, actor: Actor, entity_name: str, table: SourceTable, settings: ImportSettings) -> None:
        self.site = site
        self.actor = actor
        self.entity = site.records.entity(entity_name)
        self.table = table
        self.settings = settings
        self.available = {t.name: t for t in targets(site, actor, self.entity)}
        mapping = list(settings.mapping[: len(table.headers)]) + [None] * max(len(table.headers) - len(settings.mapping), 0)
        self.columns: list[Target | None] = [self.available.get(name) if name else None for name in mapping]
        self.key_column: int | None = None
        if settings.key:
            self.key_column = next((i for i, t in enumerate(self.columns) if t is not None and t.name == settings.key), None)
            key = self.available.get(settings.key)
            if self.key_column is None and key is not None:  # the key's own column, by its header, when not mapped
                wanted = {normalize_header(text) for text in (key.name, key.label.en, key.label.zh_cn)}
                self.key_column = next((i for i, h in enumerate(table.headers) if self.columns[i] is None and normalize_header(h) in wanted), None)
                if self.key_column is not None:
                    self.columns[self.key_column] = key

    # -- settings ---------------------------------------------------------------------------------
    def check(self) -> None:
        """Refuse (BadRequest / Forbidden) what no row could succeed with: permissions, the mapping, key, mode."""
        entity = self.entity
        if entity.child_of:
            raise BadRequest(f"{entity.name} rows are imported with their {entity.child_of}")
        access = self.site.access
        access.require(self.actor, entity, "create")
        if self.settings.key:
            access.require(self.actor, entity, "update")
        errors: list[FieldError] = []
        if self.settings.mode not in MODES:
            errors.append(FieldError("mode", f"the mode is one of {', '.join(MODES)}", "bad_mode"))
        seen: set[str] = set()
        restricted_fields = access.field_access(self.actor, entity)
        for index, name in enumerate(self.settings.mapping[: len(self.table.headers)]):
            if not name:
                continue
            header = self.table.headers[index]
            target = self.available.get(name)
            if target is None:
                restricted = self.site.access.field_access(self.actor, entity).get(name)
                reason = "hidden for your role" if restricted == "hidden" else f"not a field of {entity.name} that can be imported"
                errors.append(FieldError("mapping", f"column '{header}': '{name}' is {reason}", "bad_mapping"))
            elif name in seen:
                errors.append(FieldError("mapping", f"column '{header}': '{name}' is mapped to two columns", "bad_mapping"))
            elif not target.writable and name != self.settings.key and restricted_fields.get(name) != "read_only":
                errors.append(FieldError("mapping", f"column '{header}': {target.label.en} is set by the platform; it can only be the key that finds records", "bad_mapping"))
            seen.add(name)
        if not seen:
            errors.append(FieldError("mapping", "map at least one column to a field", "bad_mapping"))
        if self.settings.key:
            target = self.available.get(self.settings.key)
            if target is None or not target.keyable:
                errors.append(FieldError("key", f"'{self.settings.key}' cannot be a key: choose the id or a text, number, email or auto-number field", "bad_key"))
            elif self.key_column is None:
                errors.append(FieldError("key", f"the key '{self.settings.key}' is not mapped to a column", "bad_key"))
        if errors:
            raise BadRequest("; ".join(e.message for e in errors), errors)
        access.check_writes(self.actor, entity, [t.name for t in self.columns if t is not None and t.name != ID_TARGET and t.name != self.settings.key])

    # -- one row ------------------------------------------------------------------------------------
    def key_value(self, cells: list[Any]) -> Any:
        """The key of a row as stored (None when blank), or _Unresolved when it cannot be one."""
        if self.key_column is None:
            return None
        raw = cells[self.key_column]
        if is_blank(raw):
            return None
        target = self.columns[self.key_column]
        assert target is not None
        if target.name == ID_TARGET or (target.field is not None and target.field.value_type == "integer"):
            text = _text_value(raw).lstrip("#").replace(",", "")
            if not text.isdigit() or len(text) > 18:
                return _Unresolved(f"'{_text_value(raw)}' is not a whole number", "invalid")
            return int(text)
        if target.field is None or target.field.type == "auto_number":
            return _text_value(raw)
        try:
            return parse_value(target.field, _text_value(raw))
        except ValueError as exc:
            return _Unresolved(str(exc))

    def _convert(self, cells: list[Any], lookups: _Lookups) -> tuple[dict[str, Any], list[FieldError]]:
        values: dict[str, Any] = {}
        errors: list[FieldError] = []
        for index, target in enumerate(self.columns):
            if target is None or not target.writable:
                continue
            raw = cells[index]
            if is_blank(raw):
                continue
            f = target.field
            if f is None:  # the currency of a money field
                values[target.name] = _clean(_text_value(raw)).upper()
                continue
            kind = f.value_type
            try:
                if kind in ("integer", "decimal", "money", "percent"):
                    currency: list[str] = []
                    values[f.name] = _number(raw, f, currency)
                    if currency and not any(t is not None and t.name == f.name + CURRENCY_SUFFIX for t in self.columns):
                        values[f.name + CURRENCY_SUFFIX] = currency[0]
                elif kind == "boolean":
                    values[f.name] = _boolean(raw)
                elif kind == "date":
                    values[f.name] = _date(raw)
                elif kind == "datetime":
                    values[f.name] = _datetime(raw)
                elif kind == "picklist":
                    values[f.name] = _option(f, raw)
                elif kind == "multi_picklist":
                    values[f.name] = [_option(f, part) for part in _split(raw)]
                elif kind == "reference":
                    values[f.name] = lookups.resolve(f, _text_value(raw))
                elif f.type == "many_to_many":
                    values[f.name] = [lookups.resolve(f, part) for part in _split(raw)]
                elif kind == "long_text":
                    values[f.name] = raw.strip("\r\n") if isinstance(raw, str) else cell_text(raw)
                else:
                    values[f.name] = _text_value(raw)
            except _Unresolved as exc:
                errors.append(FieldError(f.name, exc.message, exc.code))
        return values, errors

    def _write(self, service: Any, conn: sa.Connection, record_id: int | None, values: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        if record_id is None:
            return "created", service.create(self.actor, self.entity.name, values)
        table = self.site.schema.tables[self.entity.name]
        version = conn.execute(sa.select(table.c.version).where(table.c.id == record_id)).scalar()
        return "updated", service.update(self.actor, self.entity.name, record_id, {**values, "version": version or 1})

    def _row(self, conn: sa.Connection, service: Any, lookups: _Lookups, cells: list[Any]) -> tuple[str | None, list[FieldError]]:
        """'created' / 'updated' (kept in the transaction), or None with the row's errors."""
        values, errors = self._convert(cells, lookups)
        key = self.key_value(cells)
        record_id: int | None = None
        if isinstance(key, _Unresolved):
            errors.append(FieldError(self.settings.key or "", key.message, key.code))
            key = None
        elif key is not None:
            matches = lookups.find(key)
            if len(matches) > 1:
                errors.append(FieldError(self.settings.key or "", f"{len(matches)} records have this {self._label(self.settings.key or '')}: the key must name one", "ambiguous_key"))
            elif matches:
                record_id = next(iter(matches))
            elif self.settings.key == ID_TARGET:
                errors.append(FieldError(ID_TARGET, f"there is no {self.entity.label.en} {key} you may see", "not_found"))
        if any(e.field == self.settings.key for e in errors):
            return None, errors  # without its record the row cannot be checked further
        failed_fields = {e.field for e in errors}
        savepoint = conn.begin_nested() if errors else None  # still let the service name its errors, keep nothing
        try:
            outcome, record = self._write(service, conn, record_id, values)
        except RecordError as exc:
            details = exc.details or [FieldError(self.settings.key if record_id is not None and self.settings.key else "_record", exc.message, exc.code)]
            errors += [d for d in details if d.field not in failed_fields]
            outcome = None
        except (sa.exc.IntegrityError, sa.exc.DataError) as exc:
            errors.append(_database_error(self.entity, exc))
            outcome = None
        finally:
            if savepoint is not None and savepoint.is_active:
                savepoint.rollback()
        if errors:
            return None, errors
        lookups.remember(record["id"], key if record_id is None else None, record)
        return outcome, []

    def _label(self, name: str) -> str:
        target = self.available.get(name)
        return target.label.en if target else name

    def _report(self, number: int, cells: list[Any], errors: list[FieldError]) -> list[dict[str, Any]]:
        reports = []
        for error in errors:
            name = error.field
            index = next((i for i, t in enumerate(self.columns) if t is not None and t.name == name), None)
            if index is None and name.endswith(CURRENCY_SUFFIX):
                index = next((i for i, t in enumerate(self.columns) if t is not None and t.name == name[: -len(CURRENCY_SUFFIX)]), None)
            target = self.available.get(name)
            reports.append({
                "row": number,
                "column": self.table.headers[index] if index is not None else "",
                "field": name,
                "field_label": target.label.as_dict() if target else None,
                "value": cell_text(cells[index]) if index is not None else "",
                "reason": error.message,
                "code": error.code,
            })
        return reports

    # -- all rows -----------------------------------------------------------------------------------
    def run(self, dry_run: bool = False, progress: Callable[[Progress], None] | None = None,
            before_commit: Callable[[sa.Connection, ImportResult], None] | None = None,
            progress_every: float | None = None) -> ImportResult:
        """Every row through the record service in one transaction, kept only when the mode says so.

        `before_commit(conn, result)` runs in the transaction when it is about to be kept (the job
        records its outcome there); `progress` is called about every `progress_every` seconds."""
        self.check()
        every = PROGRESS_EVERY if progress_every is None else progress_every
        result = ImportResult(len(self.table.rows), dry_run, self.settings.mode)
        jobs_table = self.site.schema.system["crm_job"]
        with self.site.engine.connect() as conn:
            last_job = conn.execute(sa.select(sa.func.max(jobs_table.c.id))).scalar() or 0
            conn.rollback()
        last_report = time.monotonic()
        try:
            with self.site.engine.begin() as conn:
                bound = _SiteInTransaction(self.site, conn)
                lookups = _Lookups(self, conn)
                rows = self.table.rows
                for start in range(0, len(rows), CHUNK):
                    chunk = rows[start:start + CHUNK]
                    lookups.prepare(chunk)
                    for number, cells in chunk:
                        outcome, errors = self._row(conn, bound.records, lookups, cells)
                        result.done += 1
                        if outcome == "created":
                            result.created += 1
                        elif outcome == "updated":
                            result.updated += 1
                        else:
                            result.failed += 1
                            result.errors += self._report(number, cells, errors)
                        if progress is not None and time.monotonic() - last_report >= every:
                            last_report = time.monotonic()
                            progress(Progress(result.total, result.done, result.created, result.updated, result.failed))
                result.written = not dry_run and (self.settings.mode == "valid" or result.failed == 0)
                if not result.written:
                    raise _Rollback
                if before_commit is not None:
                    before_commit(conn, result)
        except _Rollback:
            pass
        if progress is not None:
            progress(Progress(result.total, result.done, result.created, result.updated, result.failed))
        if result.written:
            self._deliver_new_jobs(jobs_table, last_job)
        return result

    def _deliver_new_jobs(self, jobs_table: sa.Table, last_job: int) -> None:
        """Jobs the imported records added (workflow timers), delivered now that they are committed."""
        from crm_platform.engine import jobs

        with self.site.engine.connect() as conn:
            ids = list(conn.execute(sa.select(jobs_table.c.id).where(jobs_table.c.id > last_job, jobs_table.c.status == "pending")).scalars())
            conn.rollback()
        if ids:
            jobs.deliver(self.site, ids)


def _database_error(entity: Entity, exc: Exception) -> FieldError:
    """A refusal by the database (a unique index): named on the field when the message tells it."""
    text = str(getattr(exc, "orig", exc))
    for f in entity.fields:
        if re.search(rf"\b{re.escape(f.name)}\b", text):
            return FieldError(f.name, f"another {entity.label.en} has this {f.label.en} already", "duplicate")
    return FieldError("_record", f"the database refused the row: {text.splitlines()[0][:200]}", "database")


@job(IMPORT_JOB, max_attempts=1, timeout=6 * 3600)
def import_job(ctx: JobContext) -> None:
    """Runs a queued import (imports_store.py keeps its file, settings and progress)."""
    from crm_platform.engine.imports_store import run_import_job

    run_import_job(ctx)
