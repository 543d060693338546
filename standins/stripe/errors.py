"""Errors in Stripe's shape, `{"error": {"type", "code", "message", "param", ...}}`, with the HTTP
status from which the SDK picks its exception class (400 and 404 InvalidRequestError, 401
AuthenticationError, 402 CardError, `idempotency_error` IdempotencyError)."""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]


class StripeError(Exception):
    status = 400
    type = "invalid_request_error"

    def __init__(self, message: str, *, code: str | None = None, param: str | None = None,
                 decline_code: str | None = None, extra: Obj | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.param = param
        self.decline_code = decline_code
        self.extra = extra or {}

    def body(self) -> Obj:
        error: Obj = {"type": self.type, "message": self.message}
        if self.code:
            error["code"] = self.code
            error["doc_url"] = f"https://stripe.com/docs/error-codes/{self.code.replace('_', '-')}"
        if self.param:
            error["param"] = self.param
        if self.decline_code:
            error["decline_code"] = self.decline_code
        error.update(self.extra)
        return {"error": dict(sorted(error.items()))}


class InvalidRequest(StripeError):
    """400: the request cannot be carried out as sent."""


class NotFound(StripeError):
    status = 404


class AuthenticationFailed(StripeError):
    # Stripe types a refused key as invalid_request_error; the SDK goes by the 401.
    status = 401


class CardDeclined(StripeError):
    status = 402
    type = "card_error"


class IdempotencyMismatch(StripeError):
    type = "idempotency_error"


class IdempotencyInProgress(StripeError):
    status = 409
    type = "idempotency_error"


class ApiError(StripeError):
    status = 500
    type = "api_error"


class NotEmulated(InvalidRequest):
    """Stripe would accept this, the stand-in cannot do it: refused loudly rather than faked."""

    def __init__(self, what: str, *, param: str | None = None) -> None:
        super().__init__(f"The Stripe stand-in does not emulate {what}. See "
                         "standins/stripe/README.md for what it does.", param=param)


def missing(param: str) -> InvalidRequest:
    return InvalidRequest(f"Missing required param: {param}.", code="parameter_missing",
                          param=param)


def unknown(param: str) -> InvalidRequest:
    return InvalidRequest(f"Received unknown parameter: {param}", code="parameter_unknown",
                          param=param)


def no_such(kind: str, object_id: str, *, param: str = "id", status: int = 404) -> StripeError:
    """An id that names nothing: 404 in the path, 400 when a parameter refers to it."""
    error_class = NotFound if status == 404 else InvalidRequest
    return error_class(f"No such {kind}: '{object_id}'", code="resource_missing", param=param)


def one_of(values: tuple[str, ...]) -> str:
    """`a, b, or c`, as Stripe lists the values an enum accepts."""
    if len(values) <= 2:
        return " or ".join(values)
    return f"{', '.join(values[:-1])}, or {values[-1]}"
