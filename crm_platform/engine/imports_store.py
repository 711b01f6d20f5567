"""Imports as background jobs: the uploaded file, its settings and the progress in `crm_import`.

    store = ImportStore(site)
    import_id = store.upload(actor, "account", "accounts.xlsx", data)   # status draft, mapping suggested
    store.save_settings(actor, import_id, ImportSettings(mapping, key="name", mode="valid"))
    result = store.dry_run(actor, import_id)                           # every bad row; nothing written
    store.start(actor, import_id)                                      # job: queued -> running -> done
    store.progress(actor, import_id)                                   # rows done / total, created, updated, failed

Statuses: draft (uploaded), queued, running, done (written; in "valid rows only" mode the bad rows
are listed; the possible duplicates with what was done with each), refused ("all or nothing" found bad rows: nothing written), failed (the job broke:
nothing written, the message says why).

The job runs `Importer.run` in one transaction and records its outcome in the same transaction.
While it runs, the progress is kept in this process (and, on PostgreSQL, written to the row
about every half second from a second connection); SQLite allows one writer at a time, so there
the row shows the progress of a job run by another process only when it ends.
"""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from crm_platform.engine import jobs
from crm_platform.engine.column_types import utcnow
from crm_platform.engine.imports import (
    IMPORT_JOB,
    Importer,
    ImportResult,
    ImportSettings,
    Progress,
    SourceTable,
    read_table,
    suggest_mapping,
)
from crm_platform.engine.records.actor import Actor
from crm_platform.engine.records.errors import BadRequest, FieldError, NotFound, RecordError

if TYPE_CHECKING:
    from crm_platform.engine.jobs import JobContext
    from crm_platform.engine.site import Site

DRAFT, QUEUED, RUNNING, DONE, REFUSED, FAILED = "draft", "queued", "running", "done", "refused", "failed"
FINISHED = (DONE, REFUSED, FAILED)
MAX_STORED_ERRORS = 100_000

_live: dict[int, Progress] = {}  # import id -> progress of a job running in this process
_live_lock = threading.Lock()


class ImportStore:
    def __init__(self, site: Site) -> None:
        self.site = site
        self.table = site.schema.system["crm_import"]

    # -- steps before the job ------------------------------------------------------------------------
    def upload(self, actor: Actor, entity_name: str, file_name: str, data: bytes,
               settings: ImportSettings | None = None) -> tuple[int, SourceTable]:
        """Keep an uploaded file for importing into `entity_name` (a draft with a suggested mapping)."""
        entity = self.site.records.entity(entity_name)
        if entity.child_of:
            raise BadRequest(f"{entity.name} rows are imported with their {entity.child_of}")
        self.site.access.require(actor, entity, "create")
        table = read_table(data, file_name)
        if not table.rows:
            raise BadRequest("the file has a header but no rows", [FieldError("file", "no rows under the header", "empty_file")])
        if settings is None:
            settings = ImportSettings(suggest_mapping(self.site, actor, entity, table.headers))
        with self.site.engine.begin() as conn:
            import_id = conn.execute(self.table.insert().values(
                entity=entity.name, user_id=actor.user_id, file_name=(file_name or "upload")[:255], source=data,
                settings=json.dumps(settings.as_dict()), status=DRAFT, total=len(table.rows), created_at=utcnow(),
            ).returning(self.table.c.id)).scalar_one()
        return import_id, table

    def _load(self, actor: Actor, import_id: int, with_source: bool = False) -> dict[str, Any]:
        columns = [c for c in self.table.c if with_source or c.name != "source"]
        with self.site.engine.connect() as conn:
            row = conn.execute(sa.select(*columns).where(self.table.c.id == import_id)).mappings().first()
            conn.rollback()
        if row is None or (row["user_id"] != actor.user_id and not self.site.access.is_administrator(actor)):
            raise NotFound(f"import {import_id} not found")
        return dict(row)

    def get(self, actor: Actor, import_id: int) -> dict[str, Any]:
        """The import's row (without the file) with its settings; NotFound unless it is the actor's."""
        row = self._load(actor, import_id)
        row["settings"] = ImportSettings.from_dict(json.loads(row["settings"]))
        return row

    def source(self, actor: Actor, import_id: int) -> tuple[dict[str, Any], SourceTable]:
        row = self._load(actor, import_id, with_source=True)
        if row["source"] is None:
            raise BadRequest(f"import {import_id} ran already; its file is no longer kept")
        row["settings"] = ImportSettings.from_dict(json.loads(row["settings"]))
        return row, read_table(bytes(row["source"]), row["file_name"])

    def save_settings(self, actor: Actor, import_id: int, settings: ImportSettings) -> None:
        row = self._load(actor, import_id)
        if row["status"] not in (DRAFT, REFUSED):
            raise BadRequest(f"import {import_id} is {row['status']}: its settings cannot change")
        with self.site.engine.begin() as conn:
            conn.execute(self.table.update().where(self.table.c.id == import_id).values(settings=json.dumps(settings.as_dict()), status=DRAFT))

    def importer(self, actor: Actor, import_id: int) -> Importer:
        row, table = self.source(actor, import_id)
        return Importer(self.site, actor, row["entity"], table, row["settings"])

    def dry_run(self, actor: Actor, import_id: int) -> ImportResult:
        """Check every row as the import would (nothing is written)."""
        return self.importer(actor, import_id).run(dry_run=True)

    def start(self, actor: Actor, import_id: int, background: bool = True, table: SourceTable | None = None) -> int:
        """Queue the import as a job (settings checked first); returns the job id.

        Without Redis the job runs in this process: in a thread of its own (`background`), so the
        caller can show its progress, or before this returns."""
        row = self._load(actor, import_id)
        if row["status"] not in (DRAFT, REFUSED):
            raise BadRequest(f"import {import_id} is {row['status']} already")
        if table is None:
            self.importer(actor, import_id).check()
        else:
            settings = ImportSettings.from_dict(json.loads(row["settings"]))
            Importer(self.site, actor, row["entity"], table, settings).check()
        with self.site.engine.begin() as conn:
            job = jobs.add_job(self.site, conn, IMPORT_JOB, {"import_id": import_id}, key=f"import:{import_id}:{utcnow().timestamp()}")
            queued = conn.execute(self.table.update().where(self.table.c.id == import_id, self.table.c.status.in_((DRAFT, REFUSED))).values(
                status=QUEUED, job_id=job.id, rows_done=0, created=0, updated=0, failed=0, errors=None, message=None,
                started_at=None, finished_at=None))
            if queued.rowcount != 1:  # started twice at once: the other one won (this job row rolls back)
                raise BadRequest(f"import {import_id} is started already")
        if background and not self.site.settings.redis_url:
            threading.Thread(target=jobs.deliver, args=(self.site, [job.id]), name=f"crm-import-{import_id}", daemon=True).start()
        else:
            jobs.deliver(self.site, [job.id])
        return job.id

    def submit(self, actor: Actor, entity_name: str, file_name: str, data: bytes, settings: ImportSettings,
               background: bool = True) -> tuple[int, int]:
        """Upload and start at once (the API): (import id, job id)."""
        import_id, table = self.upload(actor, entity_name, file_name, data, settings)
        return import_id, self.start(actor, import_id, background, table)

    # -- progress ------------------------------------------------------------------------------------
    def progress(self, actor: Actor, import_id: int) -> dict[str, Any]:
        """Where the import is: status, rows done of total, created, updated, failed, the bad rows."""
        row = self._load(actor, import_id)
        status = row["status"]
        with _live_lock:
            live = _live.get(import_id)
        if live is not None:  # the job is at work in this process (its outcome may be written already)
            status = RUNNING
            row.update(rows_done=live.done, created=live.created, updated=live.updated, failed=live.failed)
        message = row["message"]
        if status in (QUEUED, RUNNING) and live is None and row["job_id"] is not None:
            job = jobs.get_job(self.site, row["job_id"])
            if job is not None and job["status"] in ("failed", "cancelled"):
                status, message = FAILED, job["last_error"] or f"the import job was {job['status']}"
        settings = json.loads(row["settings"])
        total = row["total"] or 0
        outcome = json.loads(row["errors"]) if row["errors"] else []
        if isinstance(outcome, list):  # written before imports checked duplicates: the errors alone
            outcome = {"errors": outcome}
        return {
            "id": row["id"], "entity": row["entity"], "file_name": row["file_name"], "status": status,
            "finished": status in FINISHED, "mode": settings.get("mode"), "key": settings.get("key"),
            "mapping": settings.get("mapping"), "duplicates_choice": settings.get("duplicates") or "skip", "total": total,
            "done": row["rows_done"], "created": row["created"], "updated": row["updated"], "failed": row["failed"],
            "skipped": live.skipped if live is not None else outcome.get("skipped", 0),
            "percent": 100 if status in FINISHED else (int(row["rows_done"] * 100 / total) if total else 0),
            "errors": outcome.get("errors", []), "duplicates": outcome.get("duplicates", []), "message": message, "job_id": row["job_id"],
            "created_at": _iso(row["created_at"]), "started_at": _iso(row["started_at"]), "finished_at": _iso(row["finished_at"]),
        }

    def recent(self, actor: Actor, entity_name: str, limit: int = 10) -> list[dict[str, Any]]:
        table = self.table
        query = (sa.select(table.c.id, table.c.file_name, table.c.status, table.c.total, table.c.created, table.c.updated,
                           table.c.failed, table.c.created_at)
                 .where(table.c.entity == entity_name, table.c.user_id == actor.user_id).order_by(table.c.id.desc()).limit(limit))
        with self.site.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _outcome(result: ImportResult, status: str) -> dict[str, Any]:
    errors = result.errors[:MAX_STORED_ERRORS]
    stored = {"errors": errors, "duplicates": result.duplicates[:MAX_STORED_ERRORS], "skipped": result.skipped}
    message = None
    if len(result.errors) > MAX_STORED_ERRORS:
        message = f"{len(result.errors)} problems; the first {MAX_STORED_ERRORS} are kept"
    if status == REFUSED:
        message = f"{result.failed} of {result.total} rows are not valid: nothing was imported (all or nothing)"
    values: dict[str, Any] = {"status": status, "rows_done": result.done, "created": result.created if result.written else 0,
                              "updated": result.updated if result.written else 0, "failed": result.failed,
                              "errors": json.dumps(stored, ensure_ascii=False), "message": message, "finished_at": utcnow()}
    if status == DONE:
        values["source"] = None  # the file is not kept once it is imported
    return values


def run_import_job(ctx: JobContext) -> None:
    """The job: run a queued import and record what it did in the same transaction as its writes."""
    site = ctx.site
    import_id = int(ctx.payload["import_id"])
    table = site.schema.system["crm_import"]
    with site.engine.begin() as conn:
        row = conn.execute(sa.select(table).where(table.c.id == import_id)).mappings().first()
        if row is None or row["status"] != QUEUED:
            return  # gone, or run already
        conn.execute(table.update().where(table.c.id == import_id).values(status=RUNNING, started_at=utcnow()))
    writes_progress = site.engine.dialect.name != "sqlite"  # SQLite: the import holds the only write lock

    def on_progress(progress: Progress) -> None:
        with _live_lock:
            _live[import_id] = progress
        if writes_progress:
            with site.engine.begin() as other:
                other.execute(table.update().where(table.c.id == import_id).values(
                    rows_done=progress.done, created=progress.created, updated=progress.updated, failed=progress.failed))

    def before_commit(conn: sa.Connection, result: ImportResult) -> None:
        conn.execute(table.update().where(table.c.id == import_id).values(**_outcome(result, DONE)))
        ctx.complete(conn)

    try:
        actor = site.users.actor(row["user_id"])
        if actor is None:
            raise BadRequest("the user who started the import is no longer active")
        settings = ImportSettings.from_dict(json.loads(row["settings"]))
        importer = Importer(site, actor, row["entity"], read_table(bytes(row["source"]), row["file_name"]), settings)
        result = importer.run(dry_run=False, progress=on_progress, before_commit=before_commit)
        if not result.written:
            with site.engine.begin() as conn:
                conn.execute(table.update().where(table.c.id == import_id).values(**_outcome(result, REFUSED)))
                ctx.complete(conn)
    except RecordError as exc:  # settings no longer valid (a field removed, a permission taken away)
        with site.engine.begin() as conn:
            conn.execute(table.update().where(table.c.id == import_id).values(status=FAILED, message=exc.message[:4000], finished_at=utcnow()))
            ctx.complete(conn)
    except Exception as exc:
        with site.engine.begin() as conn:
            conn.execute(table.update().where(table.c.id == import_id).values(
                status=FAILED, message=f"{type(exc).__name__}: {exc}"[:4000], finished_at=utcnow()))
        raise  # the job is marked failed (monitoring shows it)
    finally:
        with _live_lock:  # last: until then the import reads as running (its job is still at work)
            _live.pop(import_id, None)
