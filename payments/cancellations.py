"""A cancelled booking's money: its open intent is canceled at Stripe, what it paid is refunded.

`booking.cancelled` (from `payment_booking_queue`) records the cancellation with its refund share:
the configured policy (`PAYMENTS_CANCEL_REFUND_PERCENT`) when the booking was confirmed (paid)
when it was cancelled, else 100 %, since a booking cancelled before confirmation (expired, or
cancelled while unpaid) never held booked seats. Then it is settled:

- an open intent is canceled at Stripe. If Stripe says it already succeeded (the customer paid
  just as the hold expired), the payment is recorded as succeeded (`payment.succeeded`) and
  refunded in full (`payment.refunded`): money is never kept for a booking that holds no seats.
  If it is processing, Stripe decides later: its webhook (or reconciliation) settles the payment,
  which finds the booking cancelled and refunds it then;
- a paid payment is refunded by the share, once: the refund's Stripe idempotency key is derived
  from the booking and the payment.

The record is committed before Stripe is asked; whatever cannot be done now (Stripe down) is done
by reconciliation, which settles unsettled cancellations. The handler is idempotent by its own
keys (the cancellation's row, Stripe's idempotency), so it needs no processed-event guard.
"""

from __future__ import annotations

import uuid

import asyncpg
import structlog

from payments import db
from payments.events import CancelledBooking
from payments.refunds import Refunds
from payments.settlement import Settlement
from payments.states import OPEN, REFUNDABLE, PaymentStatus
from payments.stripe_api import StripeApi, StripeRefused, StripeUnavailable

log = structlog.get_logger(__name__)

# The booking had been paid, so confirmed, when it was cancelled: the policy applies.
_CONFIRMED_PAYMENT_STATUSES = frozenset({"paid", "partially_refunded", "refunded"})


def cancellation_key(booking_id: uuid.UUID, payment_id: uuid.UUID) -> str:
    """The Stripe idempotency key of a cancelled booking's refund: one refund, ever."""
    return f"tourbook-booking-cancelled-{booking_id}-{payment_id}"


class Cancellations:
    def __init__(self, pool: asyncpg.Pool, stripe: StripeApi, settlement: Settlement,
                 refunds: Refunds, *, policy_percent: int, lease: float) -> None:
        self._pool, self._stripe, self._refunds = pool, stripe, refunds
        self._settlement = settlement
        self._policy_percent, self._lease = policy_percent, lease

    def refund_percent(self, cancelled: CancelledBooking) -> int:
        if cancelled.payment_status in _CONFIRMED_PAYMENT_STATUSES:
            return self._policy_percent
        return 100

    async def record(self, cancelled: CancelledBooking) -> None:
        """`booking.cancelled`: remember the cancellation, then settle it if Stripe lets us."""
        percent = self.refund_percent(cancelled)
        async with self._pool.acquire() as conn, conn.transaction():
            # Under the lock checkout takes to start an attempt: an attempt started before is
            # seen by the settlement below; one started after sees the cancellation and refuses.
            await db.lock_booking(conn, cancelled.booking_id)
            # Leased to this process for a while, so reconciliation leaves it alone meanwhile.
            new = await db.insert_cancelled_booking(
                conn, cancelled.booking_id, refund_percent=percent,
                reason=cancelled.cancellation_reason, lease=self._lease)
        log.info("booking_cancellation_recorded", bookingId=str(cancelled.booking_id),
                 refundPercent=percent, duplicate=not new)
        await self.settle_soon(cancelled.booking_id)

    async def settle_soon(self, booking_id: uuid.UUID) -> None:
        """Settle now if Stripe answers; otherwise reconciliation does it later."""
        try:
            await self.settle(booking_id)
        except StripeUnavailable:
            log.warning("cancellation_settlement_deferred", bookingId=str(booking_id))

    async def settle(self, booking_id: uuid.UUID) -> bool:
        """Cancel the booking's open intents and refund what it paid; True once nothing is left
        to do. Raises StripeUnavailable when Stripe cannot be reached."""
        async with self._pool.acquire() as conn:
            cancellation = await db.cancelled_booking(conn, booking_id)
            payments = await db.payments_of_booking(conn, booking_id)
        if cancellation is None:
            return False
        settled = True
        for payment in payments:
            status = PaymentStatus(payment["status"])
            if status in OPEN:
                status = await self._cancel_intent(payment)
            if status in OPEN:  # processing: Stripe decides, then this runs again
                settled = False
            elif status in REFUNDABLE:
                settled = await self._refund(cancellation, payment) and settled
        if settled:
            async with self._pool.acquire() as conn:
                await db.mark_settled(conn, booking_id)
            log.info("booking_cancellation_settled", bookingId=str(booking_id))
        return settled

    async def _cancel_intent(self, payment: asyncpg.Record) -> PaymentStatus:
        intent_id = payment["stripe_payment_intent_id"]
        if intent_id is None:
            return await self._give_up_attempt(payment)
        try:
            intent = await self._stripe.cancel_intent(intent_id)
        except StripeRefused:
            # Not cancelable: it succeeded, is processing, or was canceled already. Stripe's
            # state decides what happens next, through the same settlement as its webhooks.
            intent = await self._stripe.retrieve_intent(intent_id)
        async with self._pool.acquire() as conn, conn.transaction():
            settled = await self._settlement.settle_intent(conn, intent)
        if settled is None:
            return PaymentStatus(payment["status"])
        if settled.status is PaymentStatus.SUCCEEDED:
            log.warning("paid_as_the_booking_was_cancelled", paymentId=str(payment["id"]),
                        bookingId=str(payment["booking_id"]))
        return settled.status

    async def _give_up_attempt(self, payment: asyncpg.Record) -> PaymentStatus:
        """An attempt Stripe never answered for has no intent to cancel: closed here, so that a
        creation still running finds it closed and cancels what Stripe makes (see checkout)."""
        async with self._pool.acquire() as conn, conn.transaction():
            locked = await db.lock_payment(conn, payment["id"])
            if locked is None:
                return PaymentStatus.CANCELED
            status = PaymentStatus(locked["status"])
            if status in OPEN and locked["stripe_payment_intent_id"] is None:
                await db.update_status(conn, locked["id"], status=PaymentStatus.CANCELED.value,
                                       failure_message=None, payment_method_id=None,
                                       charge_id=None)
                return PaymentStatus.CANCELED
        if status not in OPEN:
            return status
        return await self._cancel_intent(locked)  # its creation finished meanwhile

    async def _refund(self, cancellation: asyncpg.Record, payment: asyncpg.Record) -> bool:
        reason = cancellation["reason"] or "cancelled"
        try:
            refunded = await self._refunds.refund_share(
                payment["id"], cancellation["refund_percent"],
                key=cancellation_key(cancellation["booking_id"], payment["id"]),
                note=f"booking cancelled: {reason}")
        except StripeRefused:
            # Recorded as a failed refund and logged for an operator: asking again with the
            # same key would only be refused again.
            return True
        return refunded is None or refunded.refund["status"] != "requested"
