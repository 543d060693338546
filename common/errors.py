"""The error types every service raises; one middleware renders them in the envelope of the API."""

from __future__ import annotations

from typing import Any


class AppError(Exception):
    """An error a client may see: an HTTP status, a stable UPPER_SNAKE code and a message."""

    status: int = 500
    code: str = "INTERNAL_ERROR"
    message: str = "An unexpected error occurred"

    def __init__(self, message: str | None = None, *, details: Any = None,
                 headers: dict[str, str] | None = None) -> None:
        self.message = message or type(self).message
        self.details = details
        self.headers = headers or {}
        super().__init__(self.message)

    def envelope(self) -> dict[str, Any]:
        body: dict[str, Any] = {"status": self.status, "error": self.code, "message": self.message}
        if self.details is not None:
            body["details"] = self.details
        return body


class BadRequest(AppError):
    status, code, message = 400, "BAD_REQUEST", "The request is not valid"


class ValidationFailed(AppError):
    """400 with per-field details: `[{"field": "tourDate", "message": "..."}]`."""

    status, code, message = 400, "VALIDATION_ERROR", "The request is not valid"


class Unauthorized(AppError):
    status, code, message = 401, "UNAUTHORIZED", "Authentication is required"


class Forbidden(AppError):
    status, code, message = 403, "FORBIDDEN", "You are not allowed to do this"


class NotFound(AppError):
    status, code, message = 404, "NOT_FOUND", "Not found"


class Conflict(AppError):
    status, code, message = 409, "CONFLICT", "The request conflicts with the current state"


class PayloadTooLarge(AppError):
    status, code, message = 413, "PAYLOAD_TOO_LARGE", "The request body is too large"


class Unavailable(AppError):
    status, code, message = 503, "SERVICE_UNAVAILABLE", "The service is temporarily unavailable"
