"""booking's exception types: the errors its API answers (rendered in the common envelope), those
of its calls to catalog and payments, and the failures its jobs and consumer act on."""

from __future__ import annotations

from typing import Any

from common.errors import AppError, Conflict, NotFound, Unavailable

# -- bookings ----------------------------------------------------------------------------------


class BookingNotFound(NotFound):
    code, message = "BOOKING_NOT_FOUND", "No such booking"


class BookingExpired(Conflict):
    code = "BOOKING_EXPIRED"


class BookingCancelled(Conflict):
    code = "BOOKING_CANCELLED"


class HoldExpired(Conflict):
    code = "HOLD_EXPIRED"
    message = ("The seats this request held expired before it could be completed, and were "
               "given back; send it again to book")


class RequestAbandoned(Unavailable):
    message = ("This booking request took too long and its seats were given back; "
               "please try again")


class IdempotencyKeyInUse(Conflict):
    code = "IDEMPOTENCY_KEY_IN_USE"
    message = "A request with this Idempotency-Key is still being processed; retry shortly"


class InvalidTransition(Conflict):
    code = "INVALID_TRANSITION"

    def __init__(self, field: str, current: str, requested: str,
                 allowed: tuple[str, ...], *, why: str | None = None) -> None:
        names = [str(move) for move in allowed]
        super().__init__(
            f"{field} cannot go from {current} to {requested}{f': {why}' if why else ''}; "
            f"allowed: {', '.join(names) or 'none'}",
            details={"field": field, "current": str(current), "requested": str(requested),
                     "allowed": names})


class BookingMoved(Exception):
    """The row changed between the plan and the update; only possible when it was not locked."""


# -- changes of a pending booking --------------------------------------------------------------


class PreconditionRequired(AppError):
    status, code = 428, "PRECONDITION_REQUIRED"
    message = ("Send If-Match with the booking's ETag (the version you read), so that a change "
               "made meanwhile is not overwritten")


class PreconditionFailed(AppError):
    status, code = 412, "PRECONDITION_FAILED"

    def __init__(self, version: int, etag: str) -> None:
        super().__init__("The booking changed since you read it; read it again and re-apply "
                         "your change", details={"version": version}, headers={"ETag": etag})


class BookingNotChangeable(Conflict):
    code = "BOOKING_NOT_CHANGEABLE"


# -- catalog -----------------------------------------------------------------------------------


class CatalogRefused(AppError):
    """Catalog's own answer (e.g. 409 INSUFFICIENT_AVAILABILITY), status, code, message and
    details unchanged."""

    def __init__(self, status: int, code: str, message: str, details: Any = None) -> None:
        super().__init__(message, details=details)
        self.status, self.code = status, code


class CatalogUnavailable(Unavailable):
    message = "The tour catalog cannot be reached right now; try again shortly"


# -- payments ----------------------------------------------------------------------------------


class PaymentInProgress(Conflict):
    code = "PAYMENT_IN_PROGRESS"
    message = ("A payment of this booking is being processed or has succeeded: the booking "
               "cannot change now")


class PaymentsUnavailable(Unavailable):
    """Payments said it could not (Stripe away), or was not asked (its circuit is open)."""

    message = ("Payments cannot be reached right now, so the booking was not changed; try "
               "again shortly")


class PaymentsUnanswered(PaymentsUnavailable):
    """Asked, and no answer came (timeout, connection lost): the amount may have been set."""


# -- payment events ----------------------------------------------------------------------------


class RefundBeforePayment(Exception):
    """A refund arrived before the payment it refunds; retried until the payment is recorded."""


class NothingNew(Exception):
    """The event reports nothing the booking does not already know (a refund of no money)."""


class PaymentMismatch(Exception):
    """A payment.succeeded that is not the booking's total: it confirms nothing."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
