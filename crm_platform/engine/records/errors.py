"""Errors of the record service, each with an HTTP status and details naming the fields."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class FieldError:
    field: str
    message: str
    code: str = "invalid"
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"field": self.field, "message": self.message, "code": self.code, **self.extra}


class RecordError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, details: list[FieldError] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "code": self.code,
            "message": self.message,
            "details": [d.as_dict() for d in self.details],
        }


class BadRequest(RecordError):
    status = 400
    code = "bad_request"


class NotFound(RecordError):
    status = 404
    code = "not_found"


class Forbidden(RecordError):
    status = 403
    code = "forbidden"


class Conflict(RecordError):
    status = 409
    code = "conflict"


class ValidationFailed(RecordError):
    status = 422
    code = "validation_failed"

    def __init__(self, details: list[FieldError]) -> None:
        names = ", ".join(sorted({d.field for d in details}))
        super().__init__(f"{len(details)} field(s) are not valid: {names}", details)
