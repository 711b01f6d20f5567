"""Import and export screens: import from CSV or Excel (upload, map the columns, dry run, start,
progress polled by htmx, done), and Excel exports of a list (same filters as its CSV export) and
of a report (`/reports/export.xlsx?spec=<json>`, also as CSV)."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import json
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from crm_platform.engine.duplicates import rules_of
from crm_platform.engine.imports import DUPLICATE_CHOICES, MODES, ImportSettings, targets
from crm_platform.engine.imports_store import DRAFT, REFUSED, ImportStore
from crm_platform.engine.records.errors import BadRequest, FieldError, NotFound, RecordError
from crm_platform.engine.reports import Reports, ReportSpec
from crm_platform.metadata.model import Entity, Field
from crm_platform.ui.display import currency_sign, display_value
from crm_platform.ui.i18n import translate
from crm_platform.ui.screens.common import form_data, site_of
from crm_platform.ui.screens.list_routes import EXPORT_BATCH, _csv_safe, _params
from crm_platform.ui.screens.list_screen import ListScreen
from crm_platform.ui.templating import language_of, render

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
SHEET_NAME_BAD = re.compile(r"[\[\]:*?/\\]")


def _entity(request: Request) -> Entity:
    entity = site_of(request).records.entity(request.path_params["entity"])
    if entity.child_of:
        raise NotFound(f"{entity.name} rows are imported and exported with their {entity.child_of}")
    return entity


# -- import screens ----------------------------------------------------------------------------------
async def upload_page(request: Request) -> Response:
    entity = _entity(request)
    site = site_of(request)
    site.access.require(request.state.actor, entity, "create")
    return _upload_form(request, entity)


def _upload_form(request: Request, entity: Entity, error: str | None = None, status: int = 200) -> Response:
    recent = ImportStore(site_of(request)).recent(request.state.actor, entity.name)
    return render(request, "import_upload.html", {"entity": entity, "error": error, "recent": recent}, status=status)


async def upload(request: Request) -> Response:
    entity = _entity(request)
    site = site_of(request)
    form = await form_data(request)
    part = form.get("file")
    if part is None or isinstance(part, str) or not part.filename:
        return _upload_form(request, entity, translate("import_choose_file", language_of(request)), 400)
    data = await part.read()
    if len(data) > site.settings.max_upload_mb * 1024 * 1024:
        return _upload_form(request, entity, f"files are limited to {site.settings.max_upload_mb} MB", 413)
    try:
        import_id, _table = await run_in_threadpool(ImportStore(site).upload, request.state.actor, entity.name, part.filename, data)
    except BadRequest as exc:
        return _upload_form(request, entity, exc.message, 400)
    return RedirectResponse(f"/app/{entity.name}/import/{import_id}", status_code=303)


def _page(request: Request, entity: Entity, import_id: int, result: dict[str, Any] | None = None,
          error: str | None = None, status: int = 200, block: str | None = None) -> Response:
    site = site_of(request)
    actor = request.state.actor
    store = ImportStore(site)
    progress = store.progress(actor, import_id)
    if progress["entity"] != entity.name:
        raise NotFound(f"import {import_id} not found")
    context: dict[str, Any] = {"entity": entity, "progress": progress, "result": result, "error": error, "modes": MODES,
                               "duplicate_choices": DUPLICATE_CHOICES, "checks_duplicates": rules_of(site).of(entity.name) is not None,
                               "editable": progress["status"] in (DRAFT, REFUSED), "columns": [], "targets": [], "settings": None}
    if context["editable"] and block is None:
        row, table = store.source(actor, import_id)
        settings: ImportSettings = row["settings"]
        context["settings"] = settings
        context["targets"] = targets(site, actor, entity)
        mapping = list(settings.mapping) + [None] * (len(table.headers) - len(settings.mapping))
        context["columns"] = [{"index": i, "header": h, "samples": table.samples(i), "selected": mapping[i]} for i, h in enumerate(table.headers)]
    return render(request, "import.html", context, status=status, block=block)


async def import_page(request: Request) -> Response:
    return _page(request, _entity(request), request.path_params["id"])


async def progress_block(request: Request) -> Response:
    return _page(request, _entity(request), request.path_params["id"], block="progress")


def _settings_from(form: Any, store: ImportStore, actor: Any, import_id: int) -> ImportSettings:
    row, table = store.source(actor, import_id)
    mapping = []
    for index in range(len(table.headers)):
        value = form.get(f"map_{index}")
        mapping.append(value if isinstance(value, str) and value else None)
    key = form.get("key")
    mode = form.get("mode")
    duplicates = form.get("duplicates")
    return ImportSettings(mapping, key if isinstance(key, str) and key else None, mode if mode in MODES else "all",
                          duplicates if isinstance(duplicates, str) and duplicates else "skip")


async def check(request: Request) -> Response:
    """Save the mapping, key and mode, and show the dry run: counts and every bad row."""
    entity = _entity(request)
    site = site_of(request)
    actor = request.state.actor
    import_id = request.path_params["id"]
    store = ImportStore(site)
    form = await form_data(request)
    try:
        settings = _settings_from(form, store, actor, import_id)
        store.save_settings(actor, import_id, settings)
        result = await run_in_threadpool(store.dry_run, actor, import_id)
    except RecordError as exc:
        if isinstance(exc, NotFound):
            raise
        return _page(request, entity, import_id, error=_message(exc), status=exc.status)
    return _page(request, entity, import_id, result=result.as_dict())


async def start(request: Request) -> Response:
    entity = _entity(request)
    site = site_of(request)
    import_id = request.path_params["id"]
    try:
        await run_in_threadpool(ImportStore(site).start, request.state.actor, import_id)
    except RecordError as exc:
        if isinstance(exc, NotFound):
            raise
        return _page(request, entity, import_id, error=_message(exc), status=exc.status)
    return RedirectResponse(f"/app/{entity.name}/import/{import_id}", status_code=303)


def _message(exc: RecordError) -> str:
    if exc.details and len(exc.details) > 1:
        return "; ".join(d.message for d in exc.details)
    return exc.message


# -- Excel export of a list ---------------------------------------------------------------------------
async def export_xlsx(request: Request) -> Response:
    """Every record of the current view (all pages, the same filters as the CSV export) as .xlsx."""
    site = site_of(request)
    entity = site.records.entity(request.path_params["entity"])
    actor = request.state.actor
    screen = ListScreen.build(site.registry, entity, _params(request), site.access.hidden_fields(actor, entity))
    lang = language_of(request)
    site.access.require(actor, entity, "export")

    def build() -> bytes:
        book, sheet = _workbook(entity.plural_label.get(lang))
        sheet.append(_header_cells(sheet, [c.label.get(lang) for c in screen.columns]))
        page_number = 1
        while True:
            query = dataclasses.replace(screen.query, page=page_number, page_size=EXPORT_BATCH)  # every filter of the view
            page = site.records.list(actor, entity.name, query)
            for record in page.records:
                sheet.append([_record_cell(sheet, c, record, lang) for c in screen.columns])
            if page_number >= page.pages:
                break
            page_number += 1
        return _saved(book)

    data = await run_in_threadpool(build)
    return _xlsx_response(data, f"{entity.name}.xlsx")


def _workbook(title: str) -> tuple[Any, Any]:
    import openpyxl

    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet(title=SHEET_NAME_BAD.sub(" ", title)[:31] or "Sheet1")
    return book, sheet


def _saved(book: Any) -> bytes:
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _xlsx_response(data: bytes, filename: str) -> Response:
    return Response(data, media_type=XLSX_TYPE, headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def _header_cells(sheet: Any, labels: list[str]) -> list[Any]:
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    cells = []
    for label in labels:
        cell = _text_cell(sheet, label)
        cell.font = Font(bold=True)
        cells.append(cell)
    return cells if cells else [WriteOnlyCell(sheet, value=None)]


def _text_cell(sheet: Any, text: str, kind: str = "text") -> Any:
    """A string cell, never a formula: text a spreadsheet would evaluate is neutralised as in the CSV export."""
    from openpyxl.cell import WriteOnlyCell

    cell = WriteOnlyCell(sheet, value=None)
    cell.value = _csv_safe(text, kind)
    cell.data_type = "s"
    return cell


def _number_cell(sheet: Any, value: Any, number_format: str | None = None) -> Any:
    from openpyxl.cell import WriteOnlyCell

    cell = WriteOnlyCell(sheet, value=value)
    if number_format:
        cell.number_format = number_format
    return cell


def _decimal(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def _record_cell(sheet: Any, f: Field, record: dict[str, Any], lang: str) -> Any:
    """Numbers and dates as typed cells (sums and sorting work in Excel); everything else as shown on screen."""
    value = record.get(f.name)
    kind = f.value_type
    if value is None or value == "" or value == []:
        return None
    if kind == "integer" and isinstance(value, int) and not isinstance(value, bool):
        return _number_cell(sheet, value, "0")
    if kind in ("decimal", "money", "percent") and (number := _decimal(value)) is not None:
        if kind == "money":
            sign = currency_sign(f, record).replace('"', "")
            return _number_cell(sheet, number, f'"{sign}"#,##0.00')
        return _number_cell(sheet, number, '0.####"%"' if kind == "percent" else None)
    if kind == "date":
        try:
            return _number_cell(sheet, dt.date.fromisoformat(str(value)), "yyyy-mm-dd")
        except ValueError:
            pass
    if kind == "datetime":
        try:
            moment = dt.datetime.fromisoformat(str(value))
            moment = moment.astimezone(dt.UTC).replace(tzinfo=None) if moment.tzinfo else moment
            return _number_cell(sheet, moment, "yyyy-mm-dd hh:mm")
        except ValueError:
            pass
    return _text_cell(sheet, display_value(f, record, lang), f.value_type)


# -- reports as Excel (and CSV) ---------------------------------------------------------------------------
def _report_table(request: Request) -> tuple[Entity, list[str], list[list[Any]]]:
    """The report of `?spec=<json>` (as POST /api/v1/reports/run takes it): header and rows, the totals last."""
    site = site_of(request)
    actor = request.state.actor
    lang = language_of(request)
    raw = request.query_params.get("spec") or ""
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise BadRequest(f"spec is not valid JSON: {exc}", [FieldError("spec", str(exc), "json")]) from None
    spec = ReportSpec.from_dict(data)
    if spec.entity not in site.registry.entities:
        raise NotFound(f"unknown entity '{spec.entity}'")
    entity = site.registry.entity(spec.entity)
    site.access.require(actor, entity, "export")
    result = Reports(site).run(actor, spec)
    header = [_group_label(entity, g, lang) for g in result.groups]
    header += [_measure_label(entity, m, lang) for m in result.measures]
    rows: list[list[Any]] = []
    for row in result.rows:
        labels = [label.get("zh-CN" if lang.startswith("zh") else "en", "") for label in row["labels"]]
        rows.append([*labels, *(row["values"].get(m["key"]) for m in result.measures)])
    if result.groups:
        rows.append([translate("total", lang), *([""] * (len(result.groups) - 1)), *(result.totals.get(m["key"]) for m in result.measures)])
    return entity, header, rows


def _group_label(entity: Entity, group: dict[str, Any], lang: str) -> str:
    name = group["field"]
    system = {"owner_id": ("Owner", "负责人"), "unit_id": ("Unit", "部门"), "created_at": ("Created", "创建时间"), "updated_at": ("Updated", "更新时间")}
    if name in entity.field_map:
        label = entity.field(name).label.get(lang)
    else:
        english, chinese = system.get(name, (name, name))
        label = chinese if lang.startswith("zh") else english
    return f"{label} ({group['bucket']})" if group.get("bucket") else label


def _measure_label(entity: Entity, measure: dict[str, Any], lang: str) -> str:
    label = translate(f"agg_{measure['aggregate']}", lang)
    if measure.get("field") and measure["field"] in entity.field_map:
        label += " · " + entity.field(measure["field"]).label.get(lang)
    return label


async def report_xlsx(request: Request) -> Response:
    entity, header, rows = await run_in_threadpool(_report_table, request)

    def build() -> bytes:
        book, sheet = _workbook(entity.plural_label.get(language_of(request)))
        sheet.append(_header_cells(sheet, header))
        for row in rows:
            sheet.append([_report_cell(sheet, v) for v in row])
        return _saved(book)

    return _xlsx_response(await run_in_threadpool(build), f"report_{entity.name}.xlsx")


def _report_cell(sheet: Any, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, bool):
        return _text_cell(sheet, str(value))
    if isinstance(value, int | float | Decimal):
        return _number_cell(sheet, value)
    return _text_cell(sheet, str(value))


async def report_csv(request: Request) -> Response:
    entity, header, rows = await run_in_threadpool(_report_table, request)
    buffer = io.StringIO()
    buffer.write("\ufeff")
    writer = csv.writer(buffer)
    writer.writerow([_csv_safe(h, "text") for h in header])
    for row in rows:
        writer.writerow(["" if v is None else v if isinstance(v, int | float | Decimal) and not isinstance(v, bool) else _csv_safe(str(v), "text") for v in row])
    return Response(buffer.getvalue(), media_type="text/csv; charset=utf-8", headers={"Content-Disposition": f'attachment; filename="report_{entity.name}.csv"'})


routes = [
    Route("/app/{entity:str}/import", upload_page, methods=["GET"]),
    Route("/app/{entity:str}/import", upload, methods=["POST"]),
    Route("/app/{entity:str}/import/{id:int}", import_page, methods=["GET"]),
    Route("/app/{entity:str}/import/{id:int}/progress", progress_block, methods=["GET"]),
    Route("/app/{entity:str}/import/{id:int}/check", check, methods=["POST"]),
    Route("/app/{entity:str}/import/{id:int}/start", start, methods=["POST"]),
    Route("/app/{entity:str}/export.xlsx", export_xlsx, methods=["GET"]),
    Route("/reports/export.xlsx", report_xlsx, methods=["GET"]),
    Route("/reports/export.csv", report_csv, methods=["GET"]),
]
