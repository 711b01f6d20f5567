"""JSON responses and errors of the API: one error shape with a status, a code and field details."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from crm_platform.engine.records.errors import FieldError, RecordError


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(data, status_code=status, headers=headers)


def error_response(status: int, code: str, message: str, details: list[dict[str, Any]] | None = None, headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"error": {"status": status, "code": code, "message": message, "details": details or []}}
    return JSONResponse(body, status_code=status, headers=headers)


def record_error_response(exc: RecordError) -> JSONResponse:
    return JSONResponse({"error": exc.as_dict()}, status_code=exc.status)


async def read_json(request: Request) -> Any:
    """The request body as JSON; a RecordError (400/415) when it is not."""
    from crm_platform.engine.records.errors import BadRequest

    content_type = request.headers.get("content-type", "")
    if "json" not in content_type:
        error = BadRequest("send a JSON body with Content-Type: application/json", [FieldError("body", "expected application/json", "content_type")])
        error.status = 415
        error.code = "unsupported_media_type"
        raise error
    body = await request.body()
    try:
        data = json.loads(body or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}", [FieldError("body", str(exc), "json")]) from None
    where = _nul_at(data, "")
    if where is not None:
        raise BadRequest(f"{where or 'the body'} contains a NUL character (\\u0000), which text cannot hold", [FieldError(where or "body", "remove the NUL character", "nul")])
    return data


def _nul_at(value: Any, path: str) -> str | None:
    """The path (e.g. lines[0].name) of the first text holding a NUL character, which PostgreSQL cannot store."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            inner = f"{path}.{key}" if path else str(key)
            if "\x00" in key:
                return inner
            found = _nul_at(item, inner)
            if found is not None:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = _nul_at(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


def no_content() -> Response:
    return Response(status_code=204)
