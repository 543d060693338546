"""Applying the state machine to rows: one conditional UPDATE and the event of the change, in the
caller's transaction. Every change of a booking's status or payment status goes through here:
requests, payment events and jobs alike."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime

import asyncpg

from booking import db
from booking.errors import BookingMoved, BookingNotFound
from booking.events import booking_event
from booking.states import (
    PaymentStatus,
    State,
    Status,
    Transition,
    allowed_transitions,
    customer_transitions,
)
from common.auth import Identity
from common.bus import add_event

Plan = Callable[[asyncpg.Record], Transition]


@dataclass(frozen=True)
class Changed:
    booking: asyncpg.Record
    transition: Transition


def state_of(booking: asyncpg.Record) -> State:
    return State(Status(booking["status"]), PaymentStatus(booking["payment_status"]))


def amount_paid(booking: asyncpg.Record) -> int:
    """What the booking was paid, in minor units (recorded when it became paid; 0 before)."""
    paid: int = booking["paid_amount"] if booking["paid_amount"] is not None else 0
    return paid


def payment_mismatch(booking: asyncpg.Record, amount: int | None,
                     currency: str | None) -> str | None:
    """Why a payment of `amount` in `currency` cannot pay for the booking as it stands (its total
    changes while it is pending): `unverifiable`, `currency` or `amount`; None when it can."""
    if amount is None or currency is None:
        return "unverifiable"
    if currency.upper() != booking["currency"]:
        return "currency"
    if amount != booking["total_amount"]:
        return "amount"
    return None


def utc_today() -> date:
    """The date departures are counted by, here as at catalog."""
    return datetime.now(UTC).date()


def transitions_for(booking: asyncpg.Record, viewer: Identity) -> dict[str, list[str]]:
    """The `allowedTransitions` one caller sees: the moves that caller may make."""
    state, tour_date, today = state_of(booking), booking["tour_date"], utc_today()
    if viewer.is_manager:
        moves = allowed_transitions(state, tour_date=tour_date, today=today)
        # Payment moves are reconciliation, for admins; a manager moves the status only.
        return moves if viewer.is_admin else {**moves, "paymentStatus": []}
    return customer_transitions(state, tour_date=tour_date, today=today)


async def change(conn: asyncpg.Connection, booking_id: uuid.UUID, plan: Plan) -> Changed:
    """Lock the booking, plan the change from the row as it stands, apply it.

    `plan` raises to refuse (InvalidTransition, or BookingNotFound for someone else's booking);
    nothing is written then. Must run inside a transaction.
    """
    booking = await db.lock_booking(conn, booking_id)
    if booking is None:
        raise BookingNotFound()
    transition = plan(booking)
    return Changed(await apply(conn, booking, transition), transition)


async def apply(conn: asyncpg.Connection, booking: asyncpg.Record,
                transition: Transition) -> asyncpg.Record:
    """Write `transition` and, when the status moves, its `booking.*` event to the outbox.

    The UPDATE matches only the state the transition was planned from, so a change planned on a
    stale read can never overwrite a newer one.
    """
    before, after, stamp = transition.before, transition.after, transition.stamp
    updated = await db.update_state(
        conn, booking["id"], expected_status=before.status.value,
        expected_payment_status=before.payment_status.value, status=after.status.value,
        payment_status=after.payment_status.value, stamp=stamp.value if stamp else None,
        reason=transition.reason, refunded_amount=transition.refunded_amount,
        paid_amount=transition.paid_amount)
    if updated is None:
        raise BookingMoved(f"booking {booking['id']} changed while this change was planned")
    if transition.event_type is not None:
        await add_event(conn, booking_event(transition.event_type, updated))
    return updated
