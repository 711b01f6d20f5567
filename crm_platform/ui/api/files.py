"""File uploads for file fields: stored on disk under var/files by content hash, size-limited."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from crm_platform.engine.files import FileStore
from crm_platform.engine.records.errors import BadRequest, FieldError
from crm_platform.ui.responses import error_response, json_response


async def read_upload(request: Request, part: str = "file") -> tuple[bytes, str | None, str | None] | Response:
    """The bytes, name and type of one uploaded part, or a 413 response when it is too large."""
    limit = request.app.state.site.settings.max_upload_mb * 1024 * 1024
    too_large = error_response(413, "too_large", f"files are limited to {request.app.state.site.settings.max_upload_mb} MB")
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise BadRequest(f"upload with multipart/form-data and a '{part}' part", [FieldError(part, "expected multipart/form-data", "content_type")])
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + 64 * 1024:
        return too_large
    form = request.scope.get("state", {}).get("form")
    if form is None:
        form = await request.form(max_part_size=limit + 1)
        request.scope.setdefault("state", {})["form"] = form  # closed by the auth middleware
    upload = form.get(part)
    if upload is None or isinstance(upload, str):
        raise BadRequest(f"no '{part}' part in the upload", [FieldError(part, "required", "required")])
    data = await upload.read()
    if len(data) > limit:
        return too_large
    return data, upload.filename, upload.content_type


async def upload_file(request: Request) -> Response:
    upload = await read_upload(request)
    if isinstance(upload, Response):
        return upload
    data, name, content_type = upload
    stored = FileStore(request.app.state.site).save(data, name, content_type, request.state.actor.user_id)
    return json_response({k: stored[k] for k in ("id", "name", "size", "content_type", "sha256")}, status=201)


async def download_file(request: Request) -> Response:
    store = FileStore(request.app.state.site)
    store.check_readable(request.state.actor, request.path_params["id"])
    row, path = store.open(request.path_params["id"])
    return FileResponse(path, media_type=row["content_type"], filename=row["name"], headers={"X-Content-Type-Options": "nosniff"})


routes = [
    Route("/files", upload_file, methods=["POST"]),
    Route("/files/{id:int}", download_file, methods=["GET"]),
]
