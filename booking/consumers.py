"""What booking consumes, from its `booking_payment_queue`: payment.succeeded, .failed and
.refunded move a booking through the same state machine as the API, each event once and a
booking's events in order (docs/booking.md, "Payment events")."""

from __future__ import annotations

import uuid

import asyncpg
import structlog
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from booking import db
from booking.app_keys import BOOKING_METRICS
from booking.errors import InvalidTransition, NothingNew, PaymentMismatch, RefundBeforePayment
from booking.lifecycle import Plan, amount_paid, change, payment_mismatch, state_of
from booking.metrics import BookingMetrics
from booking.states import PaymentStatus, Transition, change_payment, refund_status
from common.bus import Consumer, Event, HandlerContext, QueueSpec

log = structlog.get_logger(__name__)

# booking's queue of payments' events; the name is the original's ("booking's payment queue").
QUEUE = QueueSpec("booking_payment_queue", ("payment.*",))


class PaymentData(BaseModel):
    """The `data` of a `payment.*` event. Only `bookingId` is required of every event; the
    handler of each routing key checks what it needs. Unknown fields are ignored: payments may
    add fields without breaking booking."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    booking_id: uuid.UUID
    payment_id: str | None = None
    payment_intent_id: str | None = None
    user_id: str | None = None
    amount: int | None = Field(None, ge=0)
    currency: str | None = None
    refunded_amount: int | None = Field(None, ge=0)
    failure_message: str | None = None


def payment_data(event: Event) -> PaymentData:
    """Raises ValueError (a pydantic.ValidationError too) when the data is not what the event
    type needs: a refund must say how much was refunded."""
    data = PaymentData.model_validate(event.data)
    if event.event_type == "payment.refunded" and data.refunded_amount is None:
        raise ValueError("payment.refunded without refundedAmount")
    return data


def booking_key(event: Event) -> str:
    """Orders the events of one booking. It parses the data, so an event whose data is not a
    payment event's goes to the dead-letter queue at once (`bad-key`) instead of being retried."""
    return str(payment_data(event).booking_id)


def build_consumer(app: web.Application) -> Consumer:
    metrics = app[BOOKING_METRICS]
    consumer = Consumer(QUEUE, name="booking")

    @consumer.handler("payment.succeeded", key=booking_key, idempotent="db")
    async def payment_succeeded(event: Event, ctx: HandlerContext) -> None:
        data = payment_data(event)

        def plan(booking: asyncpg.Record) -> Transition:
            # Checked against the row locked for the change: a pending booking's total may
            # have changed since the payment was asked for, and then this money is not its.
            reason = payment_mismatch(booking, data.amount, data.currency)
            if reason is not None:
                raise PaymentMismatch(reason)
            return change_payment(state_of(booking), PaymentStatus.PAID,
                                  paid_amount=data.amount)

        await _apply(ctx.conn, event, data, metrics, plan)

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
            if amount == 0:
                raise NothingNew("a refund of nothing")
            return change_payment(state_of(booking),
                                  refund_status(amount, amount_paid(booking)),
                                  refunded_amount=amount)

        await _apply(ctx.conn, event, data, metrics, plan)

    return consumer


async def _apply(conn: asyncpg.Connection, event: Event, data: PaymentData,
                 metrics: BookingMetrics, plan: Plan) -> None:
    try:
        changed = await change(conn, data.booking_id, plan)
    except (InvalidTransition, NothingNew) as exc:
        log.info("payment_event_ignored", bookingId=str(data.booking_id), reason=str(exc))
        return
    except PaymentMismatch as exc:
        await _record_anomaly(conn, event, data, exc.reason)
        metrics.payment_anomalies.labels(exc.reason).inc()
        return
    # Counted before the runtime commits: a commit failing now is retried and counted again.
    metrics.count(changed.transition, "payment")


async def _record_anomaly(conn: asyncpg.Connection, event: Event, data: PaymentData,
                          reason: str) -> None:
    """The booking stays as it was; the refusal is kept, in the transaction that records the
    event as handled, for an operator to follow up (the payment needs a refund)."""
    booking = await db.booking_by_id(conn, data.booking_id)
    if booking is None:  # change() found it locked a moment ago, in this transaction
        raise RuntimeError(f"booking {data.booking_id} vanished")
    await db.insert_payment_anomaly(
        conn, event_id=uuid.UUID(event.event_id), booking_id=data.booking_id,
        payment_id=data.payment_id, payment_intent_id=data.payment_intent_id, reason=reason,
        amount=data.amount, currency=data.currency,
        expected_amount=booking["total_amount"], expected_currency=booking["currency"])
    log.error("payment_amount_mismatch", bookingId=str(data.booking_id), reason=reason,
              paid=data.amount, currency=data.currency, totalAmount=booking["total_amount"],
              bookingCurrency=booking["currency"], paymentIntentId=data.payment_intent_id)
