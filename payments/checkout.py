"""`POST /api/payments/create-intent`: the PaymentIntent a traveller confirms in the browser.

The booking is read from booking with the caller's own token (so only its owner or an admin sees
it, and only its owner may pay); it must be pending and not expired. The amount and currency are
the booking's, never the client's. A booking has one open payment attempt at most, and its
intent is reused (a declined card leaves it open for another card); a new attempt starts only once
the previous intent is canceled. Each attempt is committed before Stripe is asked, and asked with
the idempotency key `tourbook-intent-<bookingId>-<attempt>`: a retried or concurrent request, or
one after a crash, gets the same intent back from Stripe, never a second one.

With an `Idempotency-Key` header (per user) the same key and body answer the same response
again; the same key with another body is 422 IDEMPOTENCY_KEY_REUSED.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import structlog

from common.auth import Identity
from common.bus.envelope import utc_timestamp
from common.errors import Conflict, Forbidden
from common.http.idempotency import request_hash
from payments import db, idempotency
from payments.bookings import Booking, BookingClient
from payments.cancellations import Cancellations
from payments.config import Config
from payments.metrics import PaymentMetrics
from payments.settlement import Settlement
from payments.states import OPEN, PAID, PaymentStatus
from payments.stripe_api import StripeApi, StripeRefused, StripeUnavailable
from payments.stripe_objects import Intent

log = structlog.get_logger(__name__)


class NotBookingOwner(Forbidden):
    code = "NOT_BOOKING_OWNER"
    message = "Only the traveller who made the booking can pay for it"


class BookingNotPayable(Conflict):
    code = "BOOKING_NOT_PAYABLE"
    message = "Only a pending booking that has not expired can be paid"


class BookingAlreadyPaid(Conflict):
    code = "BOOKING_ALREADY_PAID"
    message = "This booking is paid already"


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]
    replayed: bool = False


@dataclass(frozen=True)
class _Answered:
    """The request's Idempotency-Key was answered meanwhile: replay that answer."""

    known: asyncpg.Record


def intent_key(booking_id: uuid.UUID, attempt: int) -> str:
    """Stripe's idempotency key of an attempt: the same attempt always names the same intent."""
    return f"tourbook-intent-{booking_id}-{attempt}"


class Checkout:
    def __init__(self, pool: asyncpg.Pool, bookings: BookingClient, stripe: StripeApi,
                 settlement: Settlement, cancellations: Cancellations, *,
                 metrics: PaymentMetrics, config: Config) -> None:
        self._pool, self._bookings, self._stripe = pool, bookings, stripe
        self._settlement = settlement
        self._cancellations, self._metrics = cancellations, metrics
        self._recheck_after = float(config.reconcile_after)

    async def create_intent(self, identity: Identity, booking_id: uuid.UUID,
                            authorization: str, key: str | None) -> Answer:
        user_id = uuid.UUID(identity.user_id)
        body_hash = request_hash({"bookingId": str(booking_id)})
        if key is not None:
            async with self._pool.acquire() as conn:
                known = await db.intent_request(conn, user_id, key)
            if known is not None:
                idempotency.check_same_body(known, body_hash)
                if known["response_status"] is not None:
                    return await self._replay(known)

        async with self._pool.acquire() as conn:
            told = await db.booking_amount(conn, booking_id)
        booking = await self._bookings.get(booking_id, authorization)
        if booking.user_id != user_id:  # an administrator reading someone else's booking
            raise NotBookingOwner()
        _check_payable(booking)

        # Twice at most: an attempt found canceled at Stripe gives way to the next one.
        for _ in range(2):
            payment = await self._attempt(booking, user_id, key, body_hash,
                                          told["version"] if told else None)
            if isinstance(payment, _Answered):  # a concurrent twin with the key answered first
                return await self._replay(payment.known)
            answer = await self._intent_answer(payment)
            if answer is not None:
                break
        else:
            raise BookingNotPayable("This booking's payment was canceled; try again")
        if key is not None:
            async with self._pool.acquire() as conn:
                await db.answer_intent_request(conn, user_id, key, answer.status)
        return answer

    async def _attempt(self, booking: Booking, user_id: uuid.UUID, key: str | None,
                       body_hash: str, told_version: int | None) -> asyncpg.Record | _Answered:
        """The booking's open attempt, or a new one, committed (with the key's claim). A new
        one asks the booking's total as read, unless booking told a new total while it was
        being read (`told_version` is the version known before): then that one."""
        async with self._pool.acquire() as conn, conn.transaction():
            await db.lock_booking(conn, booking.id)
            if await db.cancelled_booking(conn, booking.id) is not None:
                # booking told us first, before it answered the read above with "pending".
                raise BookingNotPayable(details={
                    "status": "cancelled", "expiresAt": utc_timestamp(booking.expires_at),
                    "totalAmount": booking.total_amount})
            payments = await db.payments_of_booking(conn, booking.id)
            if any(PaymentStatus(p["status"]) in PAID for p in payments):
                raise BookingAlreadyPaid()
            payment = next((p for p in payments if PaymentStatus(p["status"]) in OPEN), None)
            if payment is None:
                amount, currency = booking.total_amount, booking.currency
                told = await db.booking_amount(conn, booking.id)
                if told is not None and told["version"] != told_version:
                    amount, currency = told["amount"], told["currency"]
                payment = await db.insert_payment(
                    conn, payment_id=uuid.uuid4(), booking_id=booking.id, user_id=user_id,
                    attempt=max((p["attempt"] for p in payments), default=0) + 1,
                    amount=amount, currency=currency, check_after=self._recheck_after)
                log.info("payment_attempt_started", paymentId=str(payment["id"]),
                         bookingId=str(booking.id), attempt=payment["attempt"])
            if key is not None:
                claim = await db.claim_intent_request(conn, user_id=user_id, key=key,
                                                      request_hash=body_hash,
                                                      payment_id=payment["id"])
                idempotency.check_same_body(claim, body_hash)
                if claim["response_status"] is not None:
                    return _Answered(claim)
        return payment

    async def _intent_answer(self, payment: asyncpg.Record) -> Answer | None:
        """The attempt's intent, created at Stripe if it has none yet; None when Stripe says it
        was canceled (the caller starts the next attempt)."""
        if payment["stripe_payment_intent_id"] is None:
            payment, intent = await self._create(payment)
            return Answer(201, _body(payment, intent))
        intent = await self._stripe.retrieve_intent(payment["stripe_payment_intent_id"])
        async with self._pool.acquire() as conn, conn.transaction():
            settled = await self._settlement.settle_intent(conn, intent)
        if settled is not None and settled.refund_due:
            await self._cancellations.settle_soon(settled.booking_id)
        status = settled.status if settled is not None else PaymentStatus.CANCELED
        if status in PAID:
            raise BookingAlreadyPaid()
        if status in (PaymentStatus.CANCELED, PaymentStatus.MISMATCHED):
            return None
        return Answer(200, _body(settled.payment if settled is not None else payment, intent))

    async def _create(self, payment: asyncpg.Record) -> tuple[asyncpg.Record, Intent]:
        booking_id = payment["booking_id"]
        intent = await self._stripe.create_intent(
            amount=payment["amount"], currency=payment["currency"],
            description=f"tourbook booking {booking_id}",
            metadata={"bookingId": str(booking_id), "paymentId": str(payment["id"]),
                      "userId": str(payment["user_id"]), "attempt": str(payment["attempt"])},
            idempotency_key=intent_key(booking_id, payment["attempt"]))
        async with self._pool.acquire() as conn, conn.transaction():
            # The row stays locked until commit, as an amount change locks it.
            recorded = await db.set_intent(conn, payment["id"], intent.id)
            if recorded is not None and (intent.amount, intent.currency) != (
                    recorded["amount"], recorded["currency"]):
                # The booking's total changed while Stripe was making the intent: it asks the
                # new one before anyone gets its secret.
                intent = await self._stripe.update_intent_amount(
                    intent.id, amount=recorded["amount"], currency=recorded["currency"])
        if recorded is None:
            # The booking was cancelled while Stripe made the intent: nobody gets its secret,
            # and it is canceled so that it can never take money.
            log.warning("intent_for_cancelled_attempt", paymentId=str(payment["id"]),
                        paymentIntentId=intent.id)
            try:
                await self._stripe.cancel_intent(intent.id)
            except (StripeUnavailable, StripeRefused):
                log.error("orphan_intent_not_canceled", paymentIntentId=intent.id)
            raise BookingNotPayable()
        self._metrics.intents_created.inc()
        log.info("payment_intent_created", paymentId=str(payment["id"]),
                 paymentIntentId=intent.id, amount=recorded["amount"])
        return recorded, intent

    async def _replay(self, known: asyncpg.Record) -> Answer:
        """The answer a key got before, rebuilt: the client secret is Stripe's to tell again."""
        async with self._pool.acquire() as conn:
            payment = await db.payment_by_id(conn, known["payment_id"])
        if payment is None or payment["stripe_payment_intent_id"] is None:
            raise RuntimeError(f"answered key without an intent (payment {known['payment_id']})")
        intent = await self._stripe.retrieve_intent(payment["stripe_payment_intent_id"])
        return Answer(known["response_status"], _body(payment, intent), replayed=True)


def _check_payable(booking: Booking) -> None:
    details = {"status": booking.status, "expiresAt": utc_timestamp(booking.expires_at),
               "totalAmount": booking.total_amount}
    if booking.status != "pending" or booking.expires_at <= datetime.now(UTC):
        raise BookingNotPayable(details=details)
    if booking.total_amount <= 0:  # a free tour: there is nothing to take
        raise BookingNotPayable("This booking has nothing to pay", details=details)


def _body(payment: asyncpg.Record, intent: Intent) -> dict[str, Any]:
    return {"clientSecret": intent.client_secret, "paymentIntentId": intent.id,
            "paymentId": str(payment["id"]), "amount": payment["amount"],
            "currency": payment["currency"]}
