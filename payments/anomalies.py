"""Anomalies: what Stripe reported that our records refuse to apply, kept on the payment, counted
and gauged for an alert (`payments_anomalies_total`, `payments_anomalies_unresolved`), and
resolved by a refund of what a mismatched intent took or by an administrator's note."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import asyncpg
import structlog

from common.errors import Conflict
from payments import db
from payments.errors import PaymentNotFound
from payments.metrics import PaymentMetrics

log = structlog.get_logger(__name__)


class NoUnresolvedAnomaly(Conflict):
    code = "NO_UNRESOLVED_ANOMALY"
    message = "This payment has no unresolved anomaly"


@dataclass(frozen=True)
class Anomaly:
    """One refusal: what our record expected and what Stripe reported, on which object."""

    kind: str
    expected_amount: int
    expected_currency: str
    observed_amount: int
    observed_currency: str
    stripe_object_id: str
    stripe_event_id: str | None = None


async def record(conn: asyncpg.Connection, metrics: PaymentMetrics, payment: asyncpg.Record,
                 anomaly: Anomaly) -> bool:
    """In the caller's transaction; False when it was recorded before (a redelivery, a second
    look), which is neither logged nor counted again."""
    new = await db.insert_anomaly(
        conn, payment_id=payment["id"], kind=anomaly.kind,
        expected_amount=anomaly.expected_amount, expected_currency=anomaly.expected_currency,
        observed_amount=anomaly.observed_amount, observed_currency=anomaly.observed_currency,
        stripe_object_id=anomaly.stripe_object_id, stripe_event_id=anomaly.stripe_event_id)
    if not new:
        return False
    log.error("payment_anomaly", kind=anomaly.kind, paymentId=str(payment["id"]),
              bookingId=str(payment["booking_id"]), userId=str(payment["user_id"]),
              paymentIntentId=payment["stripe_payment_intent_id"],
              stripeObjectId=anomaly.stripe_object_id, stripeEventId=anomaly.stripe_event_id,
              expectedAmount=anomaly.expected_amount, expectedCurrency=anomaly.expected_currency,
              observedAmount=anomaly.observed_amount, observedCurrency=anomaly.observed_currency)
    metrics.anomalies.labels(anomaly.kind).inc()
    await refresh(conn, metrics)
    return True


async def resolve(conn: asyncpg.Connection, metrics: PaymentMetrics, payment: asyncpg.Record, *,
                  kind: str | None, resolution: str, resolved_by: uuid.UUID | None) -> int:
    """Resolve the payment's unresolved anomalies (of `kind`, or all); how many."""
    resolved = await db.resolve_anomalies(conn, payment["id"], kind=kind, resolution=resolution,
                                          resolved_by=resolved_by)
    if resolved:
        log.info("payment_anomaly_resolved", paymentId=str(payment["id"]), kind=kind,
                 count=resolved, resolvedBy=str(resolved_by) if resolved_by else None)
        await refresh(conn, metrics)
    return resolved


async def refresh(conn: asyncpg.Connection, metrics: PaymentMetrics) -> None:
    """The unresolved gauge from the database, which every replica shares."""
    metrics.set_unresolved(await db.count_unresolved_anomalies(conn))


class Anomalies:
    """An administrator's side: resolve a payment's anomalies once they are dealt with."""

    def __init__(self, pool: asyncpg.Pool, metrics: PaymentMetrics) -> None:
        self._pool, self._metrics = pool, metrics

    async def resolve(self, payment_id: uuid.UUID, *, note: str, by: uuid.UUID) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            payment = await db.lock_payment(conn, payment_id)
            if payment is None:
                raise PaymentNotFound()
            if not await resolve(conn, self._metrics, payment, kind=None, resolution=note,
                                 resolved_by=by):
                raise NoUnresolvedAnomaly()

    async def refresh(self) -> None:
        async with self._pool.acquire() as conn:
            await refresh(conn, self._metrics)
