"""What Stripe says, applied to our records: an intent's state (from a webhook's snapshot, from
reconciliation's fetch, from checkout's or a cancellation's own call: one code path) and refunds
(ours, or made elsewhere). Each method runs in the caller's transaction, locks the payment row,
and writes the `payment.*` event of a change to the outbox in that same transaction.

What our records refuse is an anomaly (`payments.anomalies`), never applied: an intent that
succeeded at another amount or currency than its attempt's makes it `mismatched` (no
`payment.succeeded`: the booking stays unpaid), and a refund that would make the refunds add up
to more than was paid is left out of the ledger.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import asyncpg
import structlog

from common.bus import add_event
from payments import anomalies, db, states
from payments.anomalies import Anomaly
from payments.events import FAILED, REFUNDED, SUCCEEDED, payment_event
from payments.metrics import PaymentMetrics
from payments.states import (
    AMOUNT_MISMATCH,
    PAID,
    REFUND_EXCEEDS_PAYMENT,
    REFUND_REASONS,
    PaymentStatus,
    may_settle,
    refund_status,
    status_of_intent,
)
from payments.stripe_objects import Charge, Intent, Refund

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Settled:
    payment: asyncpg.Record
    changed: bool
    refund_due: bool = False
    """Money arrived for a booking that is already cancelled: settle the cancellation (refund)
    once this transaction committed."""
    anomaly: bool = False
    """What Stripe reported was refused and recorded as an anomaly."""

    @property
    def status(self) -> PaymentStatus:
        return PaymentStatus(self.payment["status"])

    @property
    def booking_id(self) -> uuid.UUID:
        booking_id: uuid.UUID = self.payment["booking_id"]
        return booking_id


def paid(payment: asyncpg.Record) -> tuple[int, str]:
    """What the payment took, as far as our records go (amount, currency): what Stripe said it
    received once it succeeded, else the attempt's own. Its refunds may add up to that."""
    if payment["received_amount"] is not None:
        return payment["received_amount"], payment["received_currency"]
    return payment["amount"], payment["currency"]


class Settlement:
    def __init__(self, metrics: PaymentMetrics) -> None:
        self._metrics = metrics

    async def settle_intent(self, conn: asyncpg.Connection, intent: Intent, *,
                            event_id: str | None = None) -> Settled | None:
        """Move the intent's payment to what Stripe says; None when the intent is not ours."""
        payment = await _payment_of_intent(conn, intent)
        if payment is None:
            log.warning("intent_not_ours", paymentIntentId=intent.id)
            return None
        current = PaymentStatus(payment["status"])
        observed = status_of_intent(intent.status, has_error=intent.failure_message is not None)
        if not may_settle(current, observed):
            if current is not observed:
                log.info("intent_state_ignored", paymentId=str(payment["id"]),
                         status=current.value, observed=observed.value)
            return Settled(payment, changed=False)
        if (intent.amount, intent.currency) != (payment["amount"], payment["currency"]):
            if observed is PaymentStatus.SUCCEEDED:
                return await self._mismatched(conn, payment, intent, event_id)
            # Nothing taken yet; should it succeed like this, it is refused then.
            log.warning("intent_amount_differs", paymentId=str(payment["id"]),
                        paymentIntentId=intent.id, intentAmount=intent.amount,
                        intentCurrency=intent.currency, amount=payment["amount"])
        failure = intent.failure_message if observed is PaymentStatus.FAILED else None
        if observed is current and failure == payment["failure_message"]:
            return Settled(payment, changed=False)
        received = observed is PaymentStatus.SUCCEEDED
        updated = await db.update_status(
            conn, payment["id"], status=observed.value, failure_message=failure,
            payment_method_id=intent.payment_method, charge_id=intent.latest_charge,
            received_amount=intent.amount if received else None,
            received_currency=intent.currency if received else None)
        log.info("payment_settled", paymentId=str(payment["id"]),
                 bookingId=str(payment["booking_id"]), status=observed.value,
                 previous=current.value)
        if observed is not current and observed is PaymentStatus.FAILED:
            await add_event(conn, payment_event(FAILED, updated))
        if observed is current or observed is not PaymentStatus.SUCCEEDED:
            return Settled(updated, changed=True)
        return await self._succeeded(conn, updated)

    async def _succeeded(self, conn: asyncpg.Connection, payment: asyncpg.Record) -> Settled:
        await add_event(conn, payment_event(SUCCEEDED, payment))
        # Refunds Stripe reported before the success are counted now, after payment.succeeded:
        # booking records a refund only of a payment it knows.
        payment = (await self.recount(conn, payment)).payment
        if await db.cancelled_booking(conn, payment["booking_id"]) is None:
            return Settled(payment, changed=True)
        # The booking holds no seats: this money goes back. The cancellation is reopened in this
        # transaction, so reconciliation refunds it even if the refund cannot start now.
        await db.reopen_cancelled_booking(conn, payment["booking_id"])
        log.warning("payment_for_cancelled_booking", paymentId=str(payment["id"]),
                    bookingId=str(payment["booking_id"]))
        return Settled(payment, changed=True, refund_due=True)

    async def _mismatched(self, conn: asyncpg.Connection, payment: asyncpg.Record,
                          intent: Intent, event_id: str | None) -> Settled:
        """Money was taken, not what the attempt asks: recorded, never announced."""
        updated = await db.update_status(
            conn, payment["id"], status=PaymentStatus.MISMATCHED.value, failure_message=None,
            payment_method_id=intent.payment_method, charge_id=intent.latest_charge,
            received_amount=intent.amount, received_currency=intent.currency)
        await anomalies.record(conn, self._metrics, updated, Anomaly(
            AMOUNT_MISMATCH, expected_amount=payment["amount"],
            expected_currency=payment["currency"], observed_amount=intent.amount,
            observed_currency=intent.currency, stripe_object_id=intent.id,
            stripe_event_id=event_id))
        settled = await self.recount(conn, updated)  # refunds Stripe reported before
        return Settled(settled.payment, changed=True, anomaly=True)

    async def record_refund(self, conn: asyncpg.Connection, refund: Refund, *,
                            event_id: str | None = None) -> Settled | None:
        """Add or update a refund Stripe reports, then recount its payment; None when the
        refund is not of one of our payments."""
        known = await _known_refund(conn, refund)
        if known is not None:
            payment = await db.lock_payment(conn, known["payment_id"])
            if payment is None:  # a refund's payment is never deleted
                raise RuntimeError(f"refund {known['id']} without its payment")
            await db.lock_refund(conn, known["id"])
            await db.update_refund(conn, known["id"], stripe_refund_id=refund.id,
                                   status=refund.status, failure_message=refund.failure_reason)
        else:
            payment = (await db.lock_payment_by_intent(conn, refund.payment_intent)
                       if refund.payment_intent else None)
            if payment is None:
                log.warning("refund_not_ours", stripeRefundId=refund.id)
                return None
            if refund.status in states.REFUNDED:
                total = await db.refunded_amount(conn, payment["id"]) + refund.amount
                if await self._beyond_paid(conn, payment, total, refund.id, event_id):
                    return Settled(payment, changed=False, anomaly=True)
            # Made elsewhere (the Stripe dashboard): recorded so that the ledger adds up.
            await db.insert_refund(
                conn, refund_id=uuid.uuid4(), payment_id=payment["id"], amount=refund.amount,
                status=refund.status, idempotency_key=None, stripe_refund_id=refund.id,
                reason=refund.reason if refund.reason in REFUND_REASONS else None, note=None,
                source="stripe")
            log.info("refund_made_elsewhere", paymentId=str(payment["id"]),
                     stripeRefundId=refund.id, amount=refund.amount)
        if refund.status == "failed":
            log.error("refund_failed", paymentId=str(payment["id"]), stripeRefundId=refund.id,
                      reason=refund.failure_reason)
        return await self.recount(conn, payment)

    async def record_charge(self, conn: asyncpg.Connection, charge: Charge, refunds: list[Refund],
                            *, event_id: str | None = None) -> Settled | None:
        """`charge.refunded`: record its refunds (from the payload, or as fetched from Stripe),
        and refuse a total refunded beyond what was paid."""
        settled = None
        for refund in refunds:
            settled = await self.record_refund(conn, refund, event_id=event_id) or settled
        payment = settled.payment if settled is not None else (
            await db.lock_payment_by_intent(conn, charge.payment_intent)
            if charge.payment_intent else None)
        if payment is None:
            return None
        if settled is not None and settled.anomaly:  # one of its refunds said it already
            return settled
        if await self._beyond_paid(conn, payment, charge.amount_refunded, charge.id, event_id):
            return Settled(payment, changed=False, anomaly=True)
        if settled is not None and charge.amount_refunded > settled.payment["refunded_amount"]:
            log.error("refund_ledger_short", paymentId=str(payment["id"]),
                      stripeAmountRefunded=charge.amount_refunded,
                      refundedAmount=settled.payment["refunded_amount"])
        return settled

    async def _beyond_paid(self, conn: asyncpg.Connection, payment: asyncpg.Record, total: int,
                           stripe_object_id: str, event_id: str | None) -> bool:
        """Whether refunds adding up to `total` exceed what the payment took: then an anomaly."""
        amount, currency = paid(payment)
        if total <= amount:
            return False
        await anomalies.record(conn, self._metrics, payment, Anomaly(
            REFUND_EXCEEDS_PAYMENT, expected_amount=amount, expected_currency=currency,
            observed_amount=total, observed_currency=currency,
            stripe_object_id=stripe_object_id, stripe_event_id=event_id))
        return True

    async def recount(self, conn: asyncpg.Connection, payment: asyncpg.Record) -> Settled:
        """Sum the payment's refunds into `refundedAmount` and its status; `payment.refunded`
        when the total grew. A payment not (yet) known as paid keeps its refunds for later."""
        status = PaymentStatus(payment["status"])
        if status is PaymentStatus.MISMATCHED:
            return await self._recount_mismatched(conn, payment)
        if status not in PAID:
            return Settled(payment, changed=False)
        refunded = min(await db.refunded_amount(conn, payment["id"]), payment["amount"])
        new_status = refund_status(payment["amount"], refunded)
        if refunded == payment["refunded_amount"] and new_status is status:
            return Settled(payment, changed=False)
        updated = await db.update_refunded(conn, payment["id"], refunded_amount=refunded,
                                           status=new_status.value)
        if refunded > payment["refunded_amount"]:
            await add_event(conn, payment_event(REFUNDED, updated))
            log.info("payment_refunded", paymentId=str(payment["id"]), refundedAmount=refunded,
                     status=new_status.value)
        return Settled(updated, changed=True)

    async def _recount_mismatched(self, conn: asyncpg.Connection,
                                  payment: asyncpg.Record) -> Settled:
        """Refunds of a mismatched payment, announced to nobody (booking never knew it): once
        all Stripe took is given back, its anomaly is resolved."""
        received, _ = paid(payment)
        refunded = min(await db.refunded_amount(conn, payment["id"]), received)
        changed = refunded != payment["refunded_amount"]
        if changed:
            payment = await db.update_refunded(conn, payment["id"], refunded_amount=refunded,
                                               status=PaymentStatus.MISMATCHED.value)
            log.info("mismatched_payment_refunded", paymentId=str(payment["id"]),
                     refundedAmount=refunded)
        if refunded >= received:
            await anomalies.resolve(conn, self._metrics, payment, kind=AMOUNT_MISMATCH,
                                    resolution="refunded", resolved_by=None)
        return Settled(payment, changed=changed)


async def _payment_of_intent(conn: asyncpg.Connection, intent: Intent) -> asyncpg.Record | None:
    payment = await db.lock_payment_by_intent(conn, intent.id)
    if payment is not None:
        return payment
    # An attempt whose creation answer was lost (a crash between Stripe and our commit): the
    # intent's metadata names it, and the attempt adopts the intent.
    payment_id = _uuid(intent.metadata.get("paymentId"))
    if payment_id is None:
        return None
    payment = await db.lock_payment(conn, payment_id)
    if payment is None or payment["stripe_payment_intent_id"] is not None:
        return None
    log.info("intent_adopted", paymentId=str(payment_id), paymentIntentId=intent.id)
    adopted: asyncpg.Record | None = await db.set_intent(conn, payment_id, intent.id)
    return adopted


async def _known_refund(conn: asyncpg.Connection, refund: Refund) -> asyncpg.Record | None:
    known = await db.refund_by_stripe_id(conn, refund.id)
    if known is not None:
        return known
    # Ours, whose answer from Stripe we never read: its metadata names it.
    refund_id = _uuid(refund.metadata.get("refundId"))
    known = await db.refund_by_id(conn, refund_id) if refund_id else None
    if known is not None and known["stripe_refund_id"] in (None, refund.id):
        return known
    return None


def _uuid(value: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(value) if value else None
    except ValueError:
        return None
