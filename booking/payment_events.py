"""The consumer of `booking_payment_queue`: what `payment.succeeded`, `payment.failed` and
`payment.refunded` do to a booking, through the same state machine as the API.

Each event is applied once (`idempotent="db"`: its id is recorded in the transaction of the
change), events of one booking run in order (keyed by booking id), and a change writes its
`booking.*` event in that same transaction. Events that arrive after the booking moved on (a
failure reported after a success, a second success) change nothing and are acknowledged.
"""

from __future__ import annotations

import asyncpg
import structlog

from booking.events import PaymentData, payment_data
from booking.lifecycle import Plan, change, state_of
from booking.metrics import BookingMetrics
from booking.states import (
    InvalidTransition,
    PaymentStatus,
    Transition,
    change_payment,
    refund_status,
)
from common.bus import BOOKING_PAYMENT_QUEUE, Consumer, Event, HandlerContext

log = structlog.get_logger(__name__)


class RefundBeforePayment(Exception):
    """A refund arrived before the payment it refunds; retried until the payment is recorded."""


def booking_key(event: Event) -> str:
    """Orders the events of one booking. It parses the data, so an event whose data is not a
    payment event's goes to the dead-letter queue at once (`bad-key`) instead of being retried."""
    return str(payment_data(event).booking_id)


def build_consumer(metrics: BookingMetrics) -> Consumer:
    consumer = Consumer(BOOKING_PAYMENT_QUEUE, name="booking")

    @consumer.handler("payment.succeeded", key=booking_key, idempotent="db")
    async def payment_succeeded(event: Event, ctx: HandlerContext) -> None:
        data = payment_data(event)
        await _apply(ctx.conn, event, data, metrics, lambda booking: change_payment(
            state_of(booking), PaymentStatus.PAID))

    @consumer.handler("payment.failed", key=booking_key, idempotent="db")
    async def payment_failed(event: Event, ctx: HandlerContext) -> None:
        # The booking stays pending: the customer may pay again until it expires.
        data = payment_data(event)
        await _apply(ctx.conn, event, data, metrics, lambda booking: change_payment(
            state_of(booking), PaymentStatus.FAILED))

    @consumer.handler("payment.refunded", key=booking_key, idempotent="db")
    async def payment_refunded(event: Event, ctx: HandlerContext) -> None:
        data = payment_data(event)
        refunded_amount = data.refunded_amount
        if refunded_amount is None:  # payment_data refused it already; this tells the type
            raise ValueError("payment.refunded without refundedAmount")

        def plan(booking: asyncpg.Record) -> Transition:
            if booking["payment_status"] in (PaymentStatus.UNPAID, PaymentStatus.PROCESSING,
                                             PaymentStatus.FAILED):
                raise RefundBeforePayment(f"booking {booking['id']} is not recorded paid yet")
            # refundedAmount is the payment's total refunded so far; a late event with a
            # smaller total must not shrink what is recorded.
            amount = max(refunded_amount, booking["refunded_amount"])
            return change_payment(state_of(booking),
                                  refund_status(amount, booking["total_amount"]),
                                  refunded_amount=amount)

        await _apply(ctx.conn, event, data, metrics, plan)

    return consumer


async def _apply(conn: asyncpg.Connection, event: Event, data: PaymentData,
                 metrics: BookingMetrics, plan: Plan) -> None:
    try:
        changed = await change(conn, data.booking_id, plan)
    except InvalidTransition as exc:
        log.info("payment_event_ignored", bookingId=str(data.booking_id),
                 reason=exc.message)
        return
    # Counted before the runtime commits: a commit failing now is retried and counted again.
    metrics.count(changed.transition, "payment")
    if event.event_type == "payment.succeeded" and data.amount is not None and (
            data.amount != changed.booking["total_amount"]
            or (data.currency or "").upper() != changed.booking["currency"]):
        log.warning("payment_amount_mismatch", bookingId=str(data.booking_id),
                    paid=data.amount, currency=data.currency,
                    totalAmount=changed.booking["total_amount"])

