"""Reconciliation: what webhooks should have told us, asked of Stripe instead, so that a lost or
late webhook cannot strand a booking or keep a cancelled booking's money.

- open payments (pending, processing, failed) older than `PAYMENTS_RECONCILE_AFTER` seconds: their
  intent is fetched and settled through the webhook's own code path;
- cancelled bookings not yet settled (Stripe was down, or a payment was still processing): settled
  again (intents canceled, refunds made);
- refunds left `requested` (Stripe's answer was lost): sent again with their idempotency key;
- Stripe event ids (applied or refused), booking totals and create-intent keys past their
  useful life are forgotten.

Any number of processes may run it: each step claims its rows with `FOR UPDATE SKIP LOCKED` and
pushes them ahead by a lease in the same statement, then talks to Stripe outside any transaction.
Each step is also callable on its own (`now=` lets a test be "later").
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import structlog
from aiohttp import web

from common.periodic import periodic_ctx
from common.wiring import CleanupContext
from payments import anomalies, db
from payments.cancellations import Cancellations
from payments.config import Config
from payments.metrics import PaymentMetrics
from payments.refunds import Refunds
from payments.settlement import Settlement
from payments.stripe_api import StripeApi, StripeRefused, StripeUnavailable

log = structlog.get_logger(__name__)

# Stripe retries a webhook for up to three days; its ids (and refusals) are kept well beyond.
STRIPE_EVENT_RETENTION = timedelta(days=30)


class Reconciler:
    def __init__(self, pool: asyncpg.Pool, stripe: StripeApi, settlement: Settlement,
                 refunds: Refunds, cancellations: Cancellations, *, metrics: PaymentMetrics,
                 config: Config, lease: float) -> None:
        self._pool, self._stripe, self._refunds = pool, stripe, refunds
        self._settlement = settlement
        self._cancellations, self._metrics = cancellations, metrics
        self._recheck_after = float(config.reconcile_after)
        self._batch = config.jobs_batch_size
        self._idempotency_ttl = timedelta(seconds=config.idempotency_ttl)
        self._lease = lease

    async def run_once(self, now: datetime | None = None) -> dict[str, int]:
        """One pass of every step; how many rows each handled."""
        moment = now or datetime.now(UTC)
        async with self._pool.acquire() as conn:  # the alert's gauge, as every replica sees it
            await anomalies.refresh(conn, self._metrics)
        return {
            "intentsSettled": await self.settle_open_payments(moment),
            "refundsSent": await self.resend_refunds(moment),
            "cancellationsSettled": await self.settle_cancellations(moment),
            "forgotten": await self.forget_old(moment),
        }

    async def settle_open_payments(self, now: datetime | None = None) -> int:
        """Open payments not heard of for a while: their intent, fetched and settled."""
        changed = 0
        async with self._pool.acquire() as conn:
            claimed = await db.claim_open_payments(conn, now=now or datetime.now(UTC),
                                                   recheck_after=self._recheck_after,
                                                   limit=self._batch)
        for row in claimed:
            try:
                intent = await self._stripe.retrieve_intent(row["stripe_payment_intent_id"])
            except StripeRefused as exc:  # Stripe does not know it: for an operator to look at
                log.error("reconcile_intent_unknown", paymentId=str(row["id"]),
                          paymentIntentId=row["stripe_payment_intent_id"], error=exc.message)
                continue
            async with self._pool.acquire() as conn, conn.transaction():
                settled = await self._settlement.settle_intent(conn, intent)
            if settled is None or not settled.changed:
                continue
            changed += 1
            self._metrics.reconciled.inc()
            log.warning("payment_reconciled", paymentId=str(row["id"]),
                        status=settled.status.value)
            if settled.refund_due:
                await self._cancellations.settle_soon(settled.booking_id)
        return changed

    async def resend_refunds(self, now: datetime | None = None) -> int:
        sent = 0
        async with self._pool.acquire() as conn:
            claimed = await db.claim_requested_refunds(conn, now=now or datetime.now(UTC),
                                                       lease=self._lease, limit=self._batch)
        for refund in claimed:
            try:
                await self._refunds.retry(refund)
            except StripeRefused:
                continue  # recorded as failed and logged by Refunds
            sent += 1
        return sent

    async def settle_cancellations(self, now: datetime | None = None) -> int:
        settled = 0
        async with self._pool.acquire() as conn:
            claimed = await db.claim_unsettled_cancellations(
                conn, now=now or datetime.now(UTC), lease=self._lease, limit=self._batch)
        for booking_id in claimed:
            try:
                done = await self._cancellations.settle(booking_id)
            except StripeRefused as exc:  # e.g. an intent Stripe does not know: for an operator
                log.error("cancellation_not_settled", bookingId=str(booking_id),
                          error=exc.message)
                continue
            settled += done
        return settled

    async def forget_old(self, now: datetime | None = None) -> int:
        moment = now or datetime.now(UTC)
        async with self._pool.acquire() as conn:
            return (await db.forget_stripe_events(conn, moment - STRIPE_EVENT_RETENTION)
                    + await db.forget_refused_events(conn, moment - STRIPE_EVENT_RETENTION)
                    + await db.forget_booking_amounts(conn, moment - STRIPE_EVENT_RETENTION)
                    + await db.forget_intent_requests(conn, moment - self._idempotency_ttl))


def jobs_ctx(config: Config, reconciler: web.AppKey[Reconciler]) -> CleanupContext:
    """Runs reconciliation every `jobs_interval` seconds in the background (not at all when 0);
    a pass that finds Stripe away is logged as deferred."""
    return periodic_ctx("reconciliation", config.jobs_interval,
                        lambda app: app[reconciler].run_once,
                        task_name="payments-reconciliation", correlation_prefix="reconcile",
                        deferred=(StripeUnavailable,))
