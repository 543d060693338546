"""A pending booking's new total, told by booking before it commits the change (`PUT
/internal/payments/booking/{bookingId}/amount`): the booking's open intent asks the new amount
before it can be paid, or the change is refused while a payment is on its way."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Literal

import asyncpg
import structlog

from common.errors import Conflict
from payments import db
from payments.settlement import Settlement
from payments.states import OPEN, PAID, PaymentStatus
from payments.stripe_api import StripeApi, StripeRefused, StripeUnavailable

log = structlog.get_logger(__name__)

# A payment that took money, or is taking it: the amount it is for can no longer change.
_IN_PROGRESS = PAID | {PaymentStatus.PROCESSING}
# Seconds booking is told to wait before asking again when Stripe cannot be reached.
_RETRY_AFTER = "5"


class PaymentInProgress(Conflict):
    code = "PAYMENT_IN_PROGRESS"
    message = "A payment of this booking is being processed or has succeeded"


Action = Literal["none", "updated"]


@dataclass(frozen=True)
class AmountChanged:
    booking_id: uuid.UUID
    amount: int
    currency: str
    payment_intent_id: str | None
    action: Action


@dataclass(frozen=True)
class _Refused:
    """The change met a payment on its way: refused once the transaction (and whatever Stripe's
    answer settled in it) is committed."""

    payment: asyncpg.Record


class Amounts:
    def __init__(self, pool: asyncpg.Pool, stripe: StripeApi, settlement: Settlement) -> None:
        self._pool, self._stripe, self._settlement = pool, stripe, settlement

    async def change(self, booking_id: uuid.UUID, amount: int, currency: str) -> AmountChanged:
        """Idempotent: the same amount again changes nothing (action `none`)."""
        try:
            async with self._pool.acquire() as conn, conn.transaction():
                outcome = await self._change(conn, booking_id, amount, currency)
        except StripeUnavailable as exc:
            raise StripeUnavailable(headers={
                "Retry-After": exc.headers.get("Retry-After", _RETRY_AFTER)}) from None
        if isinstance(outcome, _Refused):
            payment = outcome.payment
            log.info("amount_change_refused", bookingId=str(booking_id),
                     paymentId=str(payment["id"]), status=payment["status"])
            raise PaymentInProgress(details={"paymentId": str(payment["id"]),
                                             "status": payment["status"]})
        if outcome.action != "none":
            log.info("payment_amount_changed", bookingId=str(booking_id), amount=amount,
                     currency=currency, paymentIntentId=outcome.payment_intent_id)
        return outcome

    async def _change(self, conn: asyncpg.Connection, booking_id: uuid.UUID, amount: int,
                      currency: str) -> AmountChanged | _Refused:
        # The lock create-intent takes to start an attempt: an attempt made before is changed
        # here, one made after reads the amount recorded here (see checkout).
        await db.lock_booking(conn, booking_id)
        payment = await self._open_payment(conn, booking_id)
        if isinstance(payment, _Refused):
            return payment
        # Without an open attempt, the next intent is made at the booking's (new) total.
        changed = AmountChanged(booking_id, amount, currency, None, "none")
        if payment is not None:
            asked = await self._ask(conn, payment, amount, currency)
            if isinstance(asked, _Refused):
                return asked
            changed = AmountChanged(booking_id, amount, currency, *asked)
        await db.record_booking_amount(conn, booking_id, amount=amount, currency=currency)
        return changed

    async def _open_payment(self, conn: asyncpg.Connection,
                            booking_id: uuid.UUID) -> asyncpg.Record | _Refused | None:
        """The booking's open attempt, locked until commit, also while Stripe is asked: the
        webhook settling it waits, so it never compares an intent with a half-changed amount."""
        payments = await db.payments_of_booking(conn, booking_id)
        busy = next((p for p in payments if PaymentStatus(p["status"]) in _IN_PROGRESS), None)
        found = next((p for p in payments if PaymentStatus(p["status"]) in OPEN), None)
        if busy is not None or found is None:
            return _Refused(busy) if busy is not None else None
        payment: asyncpg.Record | None = await db.lock_payment(conn, found["id"])
        if payment is None:  # payments are never deleted
            raise RuntimeError(f"payment {found['id']} vanished")
        status = PaymentStatus(payment["status"])
        if status in _IN_PROGRESS:  # settled by a webhook since it was read
            return _Refused(payment)
        return payment if status in OPEN else None

    async def _ask(self, conn: asyncpg.Connection, payment: asyncpg.Record, amount: int,
                   currency: str) -> tuple[str | None, Action] | _Refused:
        """The attempt (and its intent) asks the amount: (its intent, the action)."""
        intent_id: str | None = payment["stripe_payment_intent_id"]
        if (payment["amount"], payment["currency"]) == (amount, currency):
            return intent_id, "none"
        if intent_id is not None:
            try:
                await self._stripe.update_intent_amount(intent_id, amount=amount,
                                                        currency=currency)
            except StripeRefused as exc:
                if exc.stripe_code != "payment_intent_unexpected_state":
                    raise
                current = await self._moved_on(conn, payment)
                if PaymentStatus(current["status"]) in _IN_PROGRESS:
                    return _Refused(current)
                if PaymentStatus(current["status"]) in OPEN:  # Stripe's refusal stands
                    raise
                # Canceled, or mismatched: it pays nothing; the next intent asks the new total.
                return None, "none"
        # Without an intent yet, the creation on its way finds this amount and asks it.
        await db.set_payment_amount(conn, payment["id"], amount=amount, currency=currency)
        return intent_id, "updated"

    async def _moved_on(self, conn: asyncpg.Connection,
                        payment: asyncpg.Record) -> asyncpg.Record:
        """Stripe refused to change the intent: it moved on before we heard of it. What it says
        is settled now, through the webhook's own path; the payment as it stands then."""
        intent = await self._stripe.retrieve_intent(payment["stripe_payment_intent_id"])
        settled = await self._settlement.settle_intent(conn, intent)
        current: asyncpg.Record = settled.payment if settled is not None else payment
        return current
