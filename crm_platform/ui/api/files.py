"""File uploads for file fields: stored on disk under var/files by content hash, size-limited."""

from __future__ import annotations

import hashlib
import re
import secrets

import sqlalchemy as sa
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from crm_platform.engine.column_types import utcnow
from crm_platform.engine.records.errors import BadRequest, FieldError, NotFound
from crm_platform.ui.responses import error_response, json_response

_SAFE_NAME = re.compile(r"[^\w.\- ()\u4e00-\u9fff]+")


async def upload_file(request: Request) -> Response:
    site = request.app.state.site
    limit = site.settings.max_upload_mb * 1024 * 1024
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise BadRequest("upload with multipart/form-data and a 'file' part", [FieldError("file", "expected multipart/form-data", "content_type")])
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + 64 * 1024:
        return error_response(413, "too_large", f"files are limited to {site.settings.max_upload_mb} MB")
    async with request.form(max_part_size=limit + 1) as form:
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise BadRequest("no 'file' part in the upload", [FieldError("file", "required", "required")])
        data = await upload.read()
        filename, content_type = upload.filename, upload.content_type
    if len(data) > limit:
        return error_response(413, "too_large", f"files are limited to {site.settings.max_upload_mb} MB")
    digest = hashlib.sha256(data).hexdigest()
    key = f"{digest[:2]}/{digest}"
    path = site.settings.var_dir / "files" / key
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{secrets.token_hex(4)}.tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
    name = _SAFE_NAME.sub("_", filename or "file")[:255] or "file"
    table = site.schema.system["crm_file"]
    row = {"name": name, "content_type": (content_type or "application/octet-stream")[:127], "size": len(data),
           "sha256": digest, "storage_key": key, "created_by": request.state.actor.user_id, "created_at": utcnow()}
    with site.engine.begin() as conn:
        row["id"] = conn.execute(table.insert().values(**row).returning(table.c.id)).scalar_one()
    return json_response({"id": row["id"], "name": name, "size": len(data), "content_type": row["content_type"], "sha256": digest}, status=201)


async def download_file(request: Request) -> Response:
    site = request.app.state.site
    table = site.schema.system["crm_file"]
    with site.engine.connect() as conn:
        row = conn.execute(sa.select(table).where(table.c.id == request.path_params["id"])).mappings().first()
    if row is None:
        raise NotFound(f"file {request.path_params['id']} not found")
    path = site.settings.var_dir / "files" / row["storage_key"]
    if not path.is_file():
        raise NotFound(f"the content of file {row['id']} is missing from storage")
    return FileResponse(path, media_type=row["content_type"], filename=row["name"], headers={"X-Content-Type-Options": "nosniff"})


routes = [
    Route("/files", upload_file, methods=["POST"]),
    Route("/files/{id:int}", download_file, methods=["GET"]),
]
