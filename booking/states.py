"""The one booking state machine: which status and payment-status moves exist, what a move stamps,
and which event it emits. Pure rules; `lifecycle` applies them to rows.

Requests (cancel, admin changes), payment events and the jobs all plan their changes here, so a
rule changes in one place and the API shows the same `allowedTransitions` the code enforces.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from common.errors import Conflict


class Status(StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class PaymentStatus(StrEnum):
    UNPAID = "unpaid"
    PROCESSING = "processing"
    PAID = "paid"
    FAILED = "failed"
    REFUNDED = "refunded"
    PARTIALLY_REFUNDED = "partially_refunded"


STATUS_MOVES: dict[Status, tuple[Status, ...]] = {
    Status.PENDING: (Status.CONFIRMED, Status.CANCELLED),
    Status.CONFIRMED: (Status.COMPLETED, Status.CANCELLED),
    Status.COMPLETED: (),
    Status.CANCELLED: (),
}

PAYMENT_MOVES: dict[PaymentStatus, tuple[PaymentStatus, ...]] = {
    PaymentStatus.UNPAID: (PaymentStatus.PROCESSING, PaymentStatus.PAID, PaymentStatus.FAILED),
    PaymentStatus.PROCESSING: (PaymentStatus.PAID, PaymentStatus.FAILED),
    # A failed attempt may be retried until the booking expires.
    PaymentStatus.FAILED: (PaymentStatus.PROCESSING, PaymentStatus.PAID),
    PaymentStatus.PAID: (PaymentStatus.REFUNDED, PaymentStatus.PARTIALLY_REFUNDED),
    # A second partial refund is a move too: the refunded amount grows.
    PaymentStatus.PARTIALLY_REFUNDED: (PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED),
    PaymentStatus.REFUNDED: (),
}

# The event each status move emits: every status change is announced, none is silent.
EMITS: dict[Status, str] = {
    Status.CONFIRMED: "booking.confirmed",
    Status.CANCELLED: "booking.cancelled",
    Status.COMPLETED: "booking.completed",
}


class InvalidTransition(Conflict):
    code = "INVALID_TRANSITION"

    def __init__(self, field: str, current: str, requested: str,
                 allowed: tuple[str, ...]) -> None:
        names = [str(move) for move in allowed]
        super().__init__(
            f"{field} cannot go from {current} to {requested}; allowed: "
            f"{', '.join(names) or 'none'}",
            details={"field": field, "current": str(current), "requested": str(requested),
                     "allowed": names})


@dataclass(frozen=True)
class State:
    """Where a booking stands."""

    status: Status
    payment_status: PaymentStatus


@dataclass(frozen=True)
class Transition:
    """A planned change from `before` to `after`, with what it records."""

    before: State
    after: State
    reason: str | None = None
    refunded_amount: int | None = None

    @property
    def status_changed(self) -> bool:
        return self.before.status is not self.after.status

    @property
    def event_type(self) -> str | None:
        """The `booking.*` event to write with the change, or None when the status stays."""
        return EMITS[self.after.status] if self.status_changed else None

    @property
    def stamp(self) -> Status | None:
        """The status whose `<status>_at` time this change sets."""
        return self.after.status if self.status_changed else None


def allowed_transitions(state: State) -> dict[str, list[str]]:
    """What the API shows on each booking: the moves open from here, per field."""
    return {"status": [s.value for s in STATUS_MOVES[state.status]],
            "paymentStatus": [p.value for p in PAYMENT_MOVES[state.payment_status]]}


def change_status(state: State, status: Status, *, reason: str | None = None) -> Transition:
    if status not in STATUS_MOVES[state.status]:
        raise InvalidTransition("status", state.status, status, STATUS_MOVES[state.status])
    return Transition(state, State(status, state.payment_status),
                      reason=reason if status is Status.CANCELLED else None)


def change_payment(state: State, payment_status: PaymentStatus, *,
                   refunded_amount: int | None = None) -> Transition:
    """A payment-status move; money received on a pending booking also confirms it.

    A payment that lands on a booking already cancelled (it expired while the customer paid) is
    recorded and the booking stays cancelled: payments refunds it on `booking.cancelled`.
    """
    moves = PAYMENT_MOVES[state.payment_status]
    if payment_status not in moves:
        raise InvalidTransition("paymentStatus", state.payment_status, payment_status, moves)
    status = state.status
    if payment_status is PaymentStatus.PAID and status is Status.PENDING:
        status = Status.CONFIRMED
    return Transition(state, State(status, payment_status), refunded_amount=refunded_amount)


def refund_status(refunded_amount: int, total_amount: int) -> PaymentStatus:
    """`refunded` once everything paid came back, `partially_refunded` before that."""
    if refunded_amount >= total_amount:
        return PaymentStatus.REFUNDED
    return PaymentStatus.PARTIALLY_REFUNDED
