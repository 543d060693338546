"""`POST /webhooks/stripe`: Stripe's signed events, each applied once.

The signature (HMAC-SHA256 of the raw body with the endpoint's secret, checked by the SDK) and its
timestamp (within `PAYMENTS_WEBHOOK_TOLERANCE` of our clock, behind or ahead) are checked on the
body exactly as received; anything else is 400 and changes nothing. The event's id is recorded in
the transaction of its effect (`stripe_events`), so a redelivery or a replayed request finds it
and changes nothing. Types we do not act on are acknowledged (200) and logged: answering an error
would only make Stripe retry them for days.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import asyncpg
import structlog

from common.errors import BadRequest
from payments import db
from payments.cancellations import Cancellations
from payments.metrics import PaymentMetrics
from payments.settlement import Settled, record_charge, record_refund, settle_intent
from payments.stripe_api import BadSignature, Charge, Intent, Refund, StripeApi

log = structlog.get_logger(__name__)

INTENT_EVENTS = frozenset({
    "payment_intent.succeeded", "payment_intent.payment_failed", "payment_intent.canceled",
    "payment_intent.processing", "payment_intent.requires_action"})
REFUND_EVENTS = frozenset({
    "refund.created", "refund.updated", "refund.failed", "charge.refund.updated"})
CHARGE_REFUNDED = "charge.refunded"


class InvalidSignature(BadRequest):
    code = "INVALID_SIGNATURE"
    message = "The Stripe-Signature header does not match this body, or it is too old"


class MalformedEvent(BadRequest):
    code = "MALFORMED_EVENT"
    message = "The body is not a Stripe event"


class Webhooks:
    def __init__(self, pool: asyncpg.Pool, stripe_api: StripeApi, cancellations: Cancellations,
                 metrics: PaymentMetrics) -> None:
        self._pool, self._stripe = pool, stripe_api
        self._cancellations, self._metrics = cancellations, metrics

    async def receive(self, payload: bytes, signature: str | None) -> str:
        """Verify and apply one delivery; the outcome (`applied`, `duplicate`, `ignored`)."""
        try:
            text = self._stripe.verify_webhook(payload, signature)
        except BadSignature as exc:
            self._metrics.webhooks.labels("rejected").inc()
            log.warning("stripe_webhook_rejected", error=str(exc))
            raise InvalidSignature() from None
        try:
            event = json.loads(text)
        except ValueError as exc:  # signed, yet not JSON
            self._metrics.webhooks.labels("rejected").inc()
            log.error("stripe_webhook_malformed", error=str(exc)[:200])
            raise MalformedEvent() from None
        try:
            event_id, event_type = str(event["id"]), str(event["type"])
            obj: Mapping[str, Any] = event["data"]["object"]
        except (KeyError, TypeError):
            self._metrics.webhooks.labels("rejected").inc()
            log.error("stripe_webhook_malformed", error="no id, type or data.object")
            raise MalformedEvent() from None
        with structlog.contextvars.bound_contextvars(stripeEventId=event_id,
                                                     stripeEventType=event_type):
            outcome = await self._apply(event_id, event_type, obj)
            self._metrics.webhooks.labels(outcome).inc()
            log.info("stripe_webhook", outcome=outcome)
            return outcome

    async def _apply(self, event_id: str, event_type: str, obj: Mapping[str, Any]) -> str:
        if event_type not in INTENT_EVENTS | REFUND_EVENTS | {CHARGE_REFUNDED}:
            async with self._pool.acquire() as conn:
                new = await db.record_stripe_event(conn, event_id, event_type)
            return "ignored" if new else "duplicate"
        fetched: list[Refund] = []
        if event_type == CHARGE_REFUNDED:
            fetched = await self._refunds_of_charge(event_id, Charge.from_json(obj))
        async with self._pool.acquire() as conn, conn.transaction():
            if not await db.record_stripe_event(conn, event_id, event_type):
                return "duplicate"
            settled = await self._settle(conn, event_type, obj, fetched)
        if settled is None:  # not about one of our payments (another integration's, say)
            return "ignored"
        if settled.refund_due:
            await self._cancellations.settle_soon(settled.booking_id)
        return "applied"

    async def _settle(self, conn: asyncpg.Connection, event_type: str, obj: Mapping[str, Any],
                      fetched: list[Refund]) -> Settled | None:
        if event_type in INTENT_EVENTS:
            return await settle_intent(conn, Intent.from_json(obj))
        if event_type in REFUND_EVENTS:
            return await record_refund(conn, Refund.from_json(obj))
        charge = Charge.from_json(obj)
        return await record_charge(conn, charge, list(charge.refunds) or fetched)

    async def _refunds_of_charge(self, event_id: str, charge: Charge) -> list[Refund]:
        """Newer API versions send `charge.refunded` without its refunds: they are read from
        Stripe, before the event's transaction (no transaction waits on Stripe). A duplicate
        delivery skips the call."""
        if charge.refunds or not charge.payment_intent or not charge.amount_refunded:
            return []
        async with self._pool.acquire() as conn:
            if await db.stripe_event_seen(conn, event_id):
                return []
        return await self._stripe.list_refunds(charge.payment_intent)
