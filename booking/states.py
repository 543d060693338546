"""The one booking state machine: the status and payment-status moves, what a move stamps, which
event it emits, which moves a traveller may make. Pure rules, planned here by requests, payment
events and jobs alike; `lifecycle` applies them to rows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from booking.errors import InvalidTransition


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


# The cancellation reason of a pending booking the expiry job cancelled.
EXPIRED_REASON = "expired"


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
    paid_amount: int | None = None

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


def allowed_transitions(state: State, *, tour_date: date, today: date) -> dict[str, list[str]]:
    """Every move open from here, per field: what an administrator may make (and what payment
    events and the jobs may make). A traveller sees `customer_transitions`."""
    return {"status": [s.value for s in status_moves(state, tour_date=tour_date, today=today)],
            "paymentStatus": [p.value for p in PAYMENT_MOVES[state.payment_status]]}


def has_departed(tour_date: date, today: date) -> bool:
    """From its own day on, a departure is past: `today` is the UTC date, as catalog counts."""
    return tour_date <= today


def departure_date_passed(tour_date: date, today: date) -> bool:
    """The departure's date is behind us (the day after it, UTC): the tour has taken place."""
    return tour_date < today


def status_moves(state: State, *, tour_date: date, today: date) -> tuple[Status, ...]:
    """The machine's status moves from `state` on these dates: a booking is `completed` only
    once its departure date has passed, whoever asks."""
    return tuple(s for s in STATUS_MOVES[state.status]
                 if s is not Status.COMPLETED or departure_date_passed(tour_date, today))


def customer_transitions(state: State, *, tour_date: date, today: date) -> dict[str, list[str]]:
    """What a traveller may do with their own booking: cancel it, until its departure day.

    Confirming follows the money (payments' events) or an administrator; the payment status is
    payments' to report. Cancelling refunds a paid booking, so once the tour has started only an
    administrator may cancel.
    """
    return {"status": [s.value for s in _customer_status_moves(state, tour_date, today)],
            "paymentStatus": []}


def _customer_status_moves(state: State, tour_date: date, today: date) -> tuple[Status, ...]:
    if has_departed(tour_date, today):
        return ()
    return tuple(s for s in STATUS_MOVES[state.status] if s is Status.CANCELLED)


def change_status(state: State, status: Status, *, tour_date: date, today: date,
                  reason: str | None = None) -> Transition:
    moves = status_moves(state, tour_date=tour_date, today=today)
    if status not in moves:
        why = None
        if status is Status.COMPLETED and status in STATUS_MOVES[state.status]:
            why = f"the departure date ({tour_date.isoformat()}) has not passed yet"
        raise InvalidTransition("status", state.status, status, moves, why=why)
    return Transition(state, State(status, state.payment_status),
                      reason=reason if status is Status.CANCELLED else None)


def cancel_by_customer(state: State, *, tour_date: date, today: date,
                       reason: str) -> Transition:
    """The traveller's cancel: the machine's move, refused from the departure day on."""
    moves = _customer_status_moves(state, tour_date, today)
    if Status.CANCELLED not in moves:
        why = None
        if Status.CANCELLED in STATUS_MOVES[state.status]:
            why = (f"the departure date ({tour_date.isoformat()}) has come and only an "
                   "administrator can cancel now")
        raise InvalidTransition("status", state.status, Status.CANCELLED, moves, why=why)
    return change_status(state, Status.CANCELLED, tour_date=tour_date, today=today,
                         reason=reason)


def change_payment(state: State, payment_status: PaymentStatus, *,
                   refunded_amount: int | None = None,
                   paid_amount: int | None = None) -> Transition:
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
    return Transition(state, State(status, payment_status), refunded_amount=refunded_amount,
                      paid_amount=paid_amount)


def refund_status(refunded_amount: int, paid_amount: int) -> PaymentStatus:
    """`refunded` once everything paid came back, `partially_refunded` before that."""
    if refunded_amount >= paid_amount:
        return PaymentStatus.REFUNDED
    return PaymentStatus.PARTIALLY_REFUNDED
