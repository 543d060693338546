"""Refunds we make: by an administrator (any amount up to what is left), and when a booking is
cancelled (its policy's share, once).

A refund is written first, as `requested`, in the transaction that checks what is left of the
payment (the row locked): the amounts of all refunds, answered or not, never add up to more than
was paid. Then Stripe is asked, with an idempotency key stored on the refund: if the answer is
lost, reconciliation asks again with the same key and Stripe answers with the same refund instead
of making a second one.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import asyncpg
import structlog

from common.errors import Conflict, Unavailable
from payments import db
from payments.errors import PaymentNotFound
from payments.metrics import PaymentMetrics
from payments.settlement import Settlement, paid
from payments.states import REFUND_REASONS, REFUNDABLE, PaymentStatus
from payments.stripe_api import StripeApi, StripeRefused, StripeUnavailable

log = structlog.get_logger(__name__)


class NotRefundable(Conflict):
    code = "PAYMENT_NOT_REFUNDABLE"
    message = ("Only a succeeded (or mismatched) payment that is not wholly refunded can be "
               "refunded")


class RefundTooLarge(Conflict):
    code = "REFUND_EXCEEDS_PAYMENT"


class RefundPending(Unavailable):
    code = "REFUND_PENDING"
    message = ("The payment provider did not answer; the refund is recorded and will be sent "
               "again automatically")


@dataclass(frozen=True)
class RefundRequest:
    """What to refund. `reason` is Stripe's enum or None; `note` the free text we keep."""

    amount: int | None
    reason: str | None
    note: str | None
    source: str
    idempotency_key: str | None = None


@dataclass(frozen=True)
class Refunded:
    refund: asyncpg.Record
    payment: asyncpg.Record


def split_reason(text: str | None) -> tuple[str | None, str | None]:
    """An administrator's reason: Stripe's enum value as such, anything else as a note only
    (Stripe refuses free text in `reason`)."""
    if text is None:
        return None, None
    value = text.strip()
    if value.lower() in REFUND_REASONS:
        return value.lower(), None
    return None, value or None


class Refunds:
    def __init__(self, pool: asyncpg.Pool, stripe: StripeApi, settlement: Settlement,
                 metrics: PaymentMetrics, *, lease: float) -> None:
        self._pool, self._stripe, self._metrics = pool, stripe, metrics
        self._settlement = settlement
        self._lease = lease

    async def refund(self, payment_id: uuid.UUID, request: RefundRequest) -> Refunded:
        """An administrator's refund: the amount asked for, or everything left."""
        async with self._pool.acquire() as conn, conn.transaction():
            payment = await db.lock_payment(conn, payment_id)
            if payment is None:
                raise PaymentNotFound()
            refundable = await self._refundable(conn, payment)
            amount = refundable if request.amount is None else request.amount
            if refundable <= 0:
                raise NotRefundable(details={"status": payment["status"], "refundable": 0})
            if amount > refundable:
                raise RefundTooLarge(
                    f"Only {refundable} (minor units of {paid(payment)[1]}) is left to refund "
                    "on this payment",
                    details={"requested": amount, "refundable": refundable})
            refund = await self._insert(conn, payment, amount, request)
        if refund is None:  # only a repeated idempotency key collides, and admins send none
            raise RuntimeError(f"refund of payment {payment_id} collided with another")
        try:
            return await self.send(refund, payment)
        except StripeUnavailable:
            raise RefundPending(details={"refundId": str(refund["id"])}) from None

    async def refund_share(self, payment_id: uuid.UUID, percent: int, *, key: str,
                           note: str) -> Refunded | None:
        """A cancelled booking's refund: `percent` of the payment, less what was refunded
        already; made once per key (a second call finds it and only finishes it). None when
        nothing is due."""
        async with self._pool.acquire() as conn, conn.transaction():
            payment = await db.lock_payment(conn, payment_id)
            if payment is None:
                raise PaymentNotFound()
            refund = await db.refund_by_key(conn, key)
            if refund is None:
                # What is left of the share; integer minor units, rounded down.
                due = payment["amount"] * percent // 100 - await db.reserved_amount(
                    conn, payment_id)
                due = min(due, await self._refundable(conn, payment))
                if due <= 0:
                    return None
                refund = await self._insert(conn, payment, due, RefundRequest(
                    amount=due, reason=None, note=note, source="cancellation",
                    idempotency_key=key))
                if refund is None:
                    raise RuntimeError(f"refund {key} appeared under our lock")
        if refund["status"] != "requested":
            return Refunded(refund, payment)
        return await self.send(refund, payment)

    async def retry(self, refund: asyncpg.Record) -> Refunded:
        """Ask Stripe again about a refund left `requested` (same key, same parameters)."""
        async with self._pool.acquire() as conn:
            payment = await db.payment_by_id(conn, refund["payment_id"])
        if payment is None:
            raise PaymentNotFound()
        return await self.send(refund, payment)

    async def send(self, refund: asyncpg.Record, payment: asyncpg.Record) -> Refunded:
        """Stripe is asked, then the answer recorded (with `payment.refunded`). Stripe refusing
        marks the refund failed, which frees its amount; Stripe not answering leaves it
        `requested` for reconciliation."""
        try:
            answer = await self._stripe.create_refund(
                payment_intent=payment["stripe_payment_intent_id"], amount=refund["amount"],
                reason=refund["reason"], idempotency_key=refund["idempotency_key"],
                metadata=_metadata(refund, payment))
        except StripeRefused as exc:
            async with self._pool.acquire() as conn:
                await db.update_refund(conn, refund["id"], stripe_refund_id=None,
                                       status="failed", failure_message=exc.message)
            log.error("refund_refused", refundId=str(refund["id"]),
                      paymentId=str(payment["id"]), stripeCode=exc.stripe_code,
                      error=exc.message)
            raise
        async with self._pool.acquire() as conn, conn.transaction():
            settled = await self._settlement.record_refund(conn, answer)
            row = await db.refund_by_id(conn, refund["id"])
        self._metrics.refunds.labels(refund["source"]).inc()
        log.info("refund_made", refundId=str(refund["id"]), paymentId=str(payment["id"]),
                 amount=refund["amount"], status=answer.status, source=refund["source"])
        return Refunded(row or refund, settled.payment if settled else payment)

    async def _refundable(self, conn: asyncpg.Connection, payment: asyncpg.Record) -> int:
        """What is left of what the payment took: a mismatched one's money is given back by
        the same refunds, up to what Stripe took."""
        status = PaymentStatus(payment["status"])
        if status not in REFUNDABLE and status is not PaymentStatus.MISMATCHED:
            return 0
        refundable: int = paid(payment)[0] - await db.reserved_amount(conn, payment["id"])
        return refundable

    async def _insert(self, conn: asyncpg.Connection, payment: asyncpg.Record, amount: int,
                      request: RefundRequest) -> asyncpg.Record | None:
        refund_id = uuid.uuid4()
        return await db.insert_refund(
            conn, refund_id=refund_id, payment_id=payment["id"], amount=amount,
            status="requested", idempotency_key=request.idempotency_key
            or f"tourbook-refund-{refund_id}", stripe_refund_id=None, reason=request.reason,
            note=request.note, source=request.source, retry_after=self._lease)


def _metadata(refund: asyncpg.Record, payment: asyncpg.Record) -> dict[str, str]:
    """Names the refund at Stripe, so its webhook finds our row even if the answer was lost;
    the note keeps an administrator's free text (Stripe allows 500 characters per value)."""
    metadata = {"refundId": str(refund["id"]), "paymentId": str(payment["id"]),
                "bookingId": str(payment["booking_id"])}
    if refund["note"]:
        metadata["note"] = refund["note"][:500]
    return metadata
