"""web's error types: what the API answered, the API out of reach, and the page's own refusals."""

from __future__ import annotations

from typing import Any

from common.errors import AppError, Forbidden, NotFound, Unavailable


class ApiError(Exception):
    """The API refused a call: its status and envelope, for the page to explain."""

    def __init__(self, status: int, body: dict[str, Any] | None) -> None:
        body = body or {}
        self.status = status
        self.code = str(body.get("error") or "HTTP_ERROR")
        self.message = str(body.get("message") or f"HTTP {status}")
        self.details = body.get("details")
        super().__init__(f"{status} {self.code}: {self.message}")

    def field_errors(self) -> dict[str, str]:
        """{field: message} of a 400 VALIDATION_ERROR (nested fields as `contact.email`)."""
        if not isinstance(self.details, list):
            return {}
        return {str(d.get("field")): str(d.get("message", "")) for d in self.details
                if isinstance(d, dict) and d.get("field")}


class ApiUnavailable(Unavailable):
    """No answer from the API (down, slow, 5xx or an open circuit): the page says so."""

    code = "API_UNAVAILABLE"


class PageNotFound(NotFound):
    message = "This page does not exist"


class CsrfRejected(Forbidden):
    code, message = "CSRF_TOKEN_INVALID", "The form expired; please send it again"


class LoginRequired(AppError):
    """The page needs a signed-in visitor; the error pages turn it into a redirect to /login."""

    status, code, message = 401, "LOGIN_REQUIRED", "Please log in"


class NotAllowed(Forbidden):
    code, message = "FORBIDDEN", "This page is for operators"


class AdminsOnly(Forbidden):
    code, message = "FORBIDDEN_ADMIN_ONLY", "This page is for administrators"
