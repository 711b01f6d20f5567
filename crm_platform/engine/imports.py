"""Importing records from CSV and Excel files: the importer that runs an import's rows.

    table = read_table(data, "accounts.xlsx")           # imports_read.py: CSV (UTF-8, BOM, GBK) or .xlsx
    mapping = suggest_mapping(site, actor, entity, table.headers)   # imports_mapping.py: column -> field
    importer = Importer(site, actor, "account", table, ImportSettings(mapping, key="name", mode="valid"))
    result = importer.run(dry_run=True)                 # every bad row and possible duplicate; nothing kept

Every row is checked as a save through the API would be, inside one transaction of the import:
cells converted by field type (imports_convert.py), keys and references looked up a chunk at a
time (imports_lookups.py), a new record checked by the record service (`new_values`: types,
required fields, references, rules, workflow) and written in batches (imports_writer.py), an
update through `RecordService.update`. The dry run rolls that transaction back, "all or
nothing" rolls it back when any row failed, "valid rows only" keeps the rows that passed
(a refused row leaves nothing behind).

With a key field, a row whose key matches a record the user can see updates that record with
the row's non-blank mapped cells (blank cells leave the stored value alone); other rows are
created, owned by the importing user.

Possible duplicates (imports_duplicates.py): a row that would create a record but looks like a
record the user may read, or like an earlier row of the file, is listed with the matches and
the reasons, and handled as `settings.duplicates` says: "skip" it, "import" it anyway, or
"update" the best match (update-or-insert imports).

The import as a background job with its progress in `crm_import` is in `imports_store.py`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from crm_platform.engine.imports_convert import Unresolved, convert_cells, text_value
from crm_platform.engine.imports_duplicates import RowDuplicates, RowMatch
from crm_platform.engine.imports_lookups import CHUNK, Lookups, fold
from crm_platform.engine.imports_mapping import (
    CURRENCY_SUFFIX,
    DUPLICATE_CHOICES,
    ID_TARGET,
    MODES,
    ImportSettings,
    Target,
    normalize_header,
    parse_mapping,
    suggest_mapping,
    targets,
)
from crm_platform.engine.imports_read import Percent, SourceTable, cell_text, read_table
from crm_platform.engine.imports_transaction import SiteInTransaction
from crm_platform.engine.imports_writer import (
    WRITE_BATCH,
    BatchWriter,
    NewRow,
    database_error,
    reads_other_records,
)
from crm_platform.engine.jobs import JobContext, job
from crm_platform.engine.records.actor import Actor
from crm_platform.engine.records.errors import BadRequest, FieldError, RecordError
from crm_platform.engine.records.payload import parse_payload
from crm_platform.metadata.values import is_blank, parse_value

if TYPE_CHECKING:
    from crm_platform.engine.records.service import RecordService
    from crm_platform.engine.site import Site

__all__ = ["DUPLICATE_CHOICES", "IMPORT_JOB", "MODES", "ImportResult", "ImportSettings", "Importer", "Percent", "Progress",
           "SourceTable", "Target", "cell_text", "parse_mapping", "read_table", "suggest_mapping", "targets"]

IMPORT_JOB = "import_records"
PROGRESS_EVERY = 0.5  # seconds between progress reports


@dataclass
class ImportResult:
    total: int
    dry_run: bool
    mode: str
    done: int = 0
    created: int = 0
    updated: int = 0
    failed: int = 0
    skipped: int = 0  # possible duplicates left out (settings.duplicates == "skip")
    errors: list[dict[str, Any]] = field(default_factory=list)  # {row, column, field, value, reason, code}
    duplicates: list[dict[str, Any]] = field(default_factory=list)  # {row, title, action, matches: [...]}
    written: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"total": self.total, "dry_run": self.dry_run, "mode": self.mode, "done": self.done, "created": self.created,
                "updated": self.updated, "failed": self.failed, "skipped": self.skipped, "valid": self.done - self.failed,
                "written": self.written, "bad_rows": sorted({e["row"] for e in self.errors}), "errors": self.errors,
                "duplicates": self.duplicates}


@dataclass(frozen=True)
class Progress:
    total: int
    done: int
    created: int
    updated: int
    failed: int
    skipped: int = 0


class _Rollback(Exception):
    """Leaves the import's transaction without keeping anything."""


@dataclass
class _Run:
    """What one run of the rows works with, inside the import's transaction."""

    conn: sa.Connection
    service: RecordService
    lookups: Lookups
    writer: BatchWriter
    duplicates: RowDuplicates
    result: ImportResult


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
        """Refuse (BadRequest / Forbidden) what no row could succeed with: permissions, the mapping, key, mode, duplicates."""
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
        if self.settings.duplicates not in DUPLICATE_CHOICES:
            errors.append(FieldError("duplicates", f"possible duplicates are one of {', '.join(DUPLICATE_CHOICES)}", "bad_duplicates"))
        elif self.settings.duplicates == "update" and not self.settings.key:
            errors.append(FieldError("duplicates", "updating the matched records needs a key (an update-or-insert import)", "bad_duplicates"))
        if errors:
            raise BadRequest("; ".join(e.message for e in errors), errors)
        access.check_writes(self.actor, entity, [t.name for t in self.columns if t is not None and t.name != ID_TARGET and t.name != self.settings.key])

    # -- one row ------------------------------------------------------------------------------------
    def key_value(self, cells: list[Any]) -> Any:
        """The key of a row as stored (None when blank), or Unresolved when it cannot be one."""
        if self.key_column is None:
            return None
        raw = cells[self.key_column]
        if is_blank(raw):
            return None
        target = self.columns[self.key_column]
        assert target is not None
        if target.name == ID_TARGET or (target.field is not None and target.field.value_type == "integer"):
            text = text_value(raw).lstrip("#").replace(",", "")
            if not text.isdigit() or len(text) > 18:
                return Unresolved(f"'{text_value(raw)}' is not a whole number", "invalid")
            return int(text)
        if target.field is None or target.field.type == "auto_number":
            return text_value(raw)
        try:
            return parse_value(target.field, text_value(raw))
        except ValueError as exc:
            return Unresolved(str(exc))

    def _row(self, run: _Run, number: int, cells: list[Any]) -> None:
        """One row: a new record (waiting in the batch), an update, a skipped possible duplicate, or its errors."""
        values, errors = convert_cells(self.columns, cells, run.lookups.resolve)
        key = self.key_value(cells)
        record_id: int | None = None
        if isinstance(key, Unresolved):
            errors.append(FieldError(self.settings.key or "", key.message, key.code))
            key = None
        elif key is not None:
            matches = run.lookups.find(key)
            if len(matches) > 1:
                errors.append(FieldError(self.settings.key or "", f"{len(matches)} records have this {self._label(self.settings.key or '')}: the key must name one", "ambiguous_key"))
            elif matches:
                record_id = next(iter(matches))
            elif self.settings.key == ID_TARGET:
                errors.append(FieldError(ID_TARGET, f"there is no {self.entity.label.en} {key} you may see", "not_found"))
        if any(e.field == self.settings.key for e in errors):
            self._failed(run, number, cells, errors)  # without its record the row cannot be checked further
        elif record_id is not None:
            self._update(run, number, cells, record_id, values, errors)
        else:
            self._create(run, number, cells, values, key, errors)

    def _update(self, run: _Run, number: int, cells: list[Any], record_id: int, values: dict[str, Any], errors: list[FieldError]) -> bool:
        run.writer.flush()  # the records of the rows before this one first
        failed_fields = {e.field for e in errors}
        savepoint = run.conn.begin_nested() if errors else None  # still let the service name its errors, keep nothing
        table = self.site.schema.tables[self.entity.name]
        try:
            version = run.conn.execute(sa.select(table.c.version).where(table.c.id == record_id)).scalar()
            run.service.update(self.actor, self.entity.name, record_id, {**values, "version": version or 1})
        except RecordError as exc:
            details = exc.details or [FieldError(self.settings.key or "_record", exc.message, exc.code)]
            errors += [d for d in details if d.field not in failed_fields]
        except (sa.exc.IntegrityError, sa.exc.DataError) as exc:
            errors.append(database_error(self.entity, exc))
        finally:
            if savepoint is not None and savepoint.is_active:
                savepoint.rollback()
        if errors:
            self._failed(run, number, cells, errors)
            return False
        run.result.updated += 1
        return True

    def _create(self, run: _Run, number: int, cells: list[Any], values: dict[str, Any], key: Any, errors: list[FieldError]) -> None:
        payload = parse_payload(self.site.registry, self.entity, values)
        run.writer.start_state(payload)
        failed_fields = {e.field for e in errors}
        try:
            stored = run.service.new_values(run.conn, self.actor, self.entity, payload)
        except RecordError as exc:  # what the record service refuses, named per field
            errors += [d for d in exc.details or [FieldError("_record", exc.message, exc.code)] if d.field not in failed_fields]
        if errors:
            self._failed(run, number, cells, errors)
            return
        matches = run.duplicates.find(run.conn, stored, number) if run.duplicates.active else []
        if matches and self._duplicate(run, number, cells, values, stored, matches):
            return
        title = stored.get(self.entity.title_field) if self.entity.title_field else None
        run.duplicates.remember(number, stored)
        run.writer.add(NewRow(number, cells, payload, stored, key, title if isinstance(title, str) else None),
                       fold(title) if isinstance(title, str) else None)

    def _duplicate(self, run: _Run, number: int, cells: list[Any], values: dict[str, Any], stored: dict[str, Any], matches: list[RowMatch]) -> bool:
        """A row that looks like others, listed with them; True when it is not to be created."""
        entry: dict[str, Any] = {"row": number, "title": run.duplicates.title_of(stored, number), "matches": [m.as_dict() for m in matches]}
        run.result.duplicates.append(entry)
        choice = self.settings.duplicates
        if choice == "import":
            entry["action"] = "imported"
            return False
        best = matches[0]
        record_id = best.id
        if choice == "update" and record_id is None and best.row is not None:
            run.writer.flush()  # the earlier row's record, if it is waiting
            record_id = run.duplicates.record_of(best.row)
        if choice == "update" and record_id is not None:
            entry["action"] = "updated" if self._update(run, number, cells, record_id, values, []) else "failed"
            entry["updated_id"] = record_id
            return True
        entry["action"] = "skipped"
        run.result.skipped += 1
        return True

    def _written(self, run: _Run, row: NewRow, record_id: int) -> None:
        run.result.created += 1
        run.lookups.remember(record_id, row.key, row.values)
        run.duplicates.created(row.number, record_id)

    def _failed(self, run: _Run, number: int, cells: list[Any], errors: list[FieldError]) -> None:
        run.result.failed += 1
        run.result.errors += self._report(number, cells, errors)

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
        """Every row checked in one transaction, kept only when the mode says so.

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

        def report() -> None:
            if progress is not None:
                progress(Progress(result.total, result.done, result.created, result.updated, result.failed, result.skipped))

        try:
            with self.site.engine.begin() as conn:
                service = SiteInTransaction(self.site, conn).records
                lookups = Lookups(self, conn)
                batch = 1 if reads_other_records(self.site, self.entity) else WRITE_BATCH
                writer = BatchWriter(self.site, service, conn, self.actor, self.entity, lambda row, record_id: self._written(run, row, record_id),
                                     lambda row, errors: self._failed(run, row.number, row.cells, errors), batch)
                run = _Run(conn, service, lookups, writer, RowDuplicates(self.site, self.actor, self.entity), result)
                lookups.writer = writer
                rows = self.table.rows
                for start in range(0, len(rows), CHUNK):
                    chunk = rows[start:start + CHUNK]
                    lookups.prepare(chunk)
                    for number, cells in chunk:
                        self._row(run, number, cells)
                        result.done += 1
                        if progress is not None and time.monotonic() - last_report >= every:
                            last_report = time.monotonic()
                            report()
                    run.writer.flush()
                result.written = not dry_run and (self.settings.mode == "valid" or result.failed == 0)
                if not result.written:
                    raise _Rollback
                if before_commit is not None:
                    before_commit(conn, result)
        except _Rollback:
            pass
        report()
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


@job(IMPORT_JOB, max_attempts=1, timeout=6 * 3600)
def import_job(ctx: JobContext) -> None:
    """Runs a queued import (imports_store.py keeps its file, settings and progress)."""
    from crm_platform.engine.imports_store import run_import_job

    run_import_job(ctx)
