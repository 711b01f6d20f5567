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
        return json.loads(body or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}", [FieldError("body", str(exc), "json")]) from None


def no_content() -> Response:
    return Response(status_code=204)
