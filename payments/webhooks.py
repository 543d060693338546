"""`POST /webhooks/stripe`: Stripe's signed events, each applied once; a signed event we cannot
read is refused (400) and recorded, never an error of ours. The steps and guarantees are in
docs/payments.md (Webhooks)."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import pydantic
import structlog

from common.errors import BadRequest
from common.http.validation import validation_details
from payments import db
from payments.cancellations import Cancellations
from payments.metrics import PaymentMetrics
from payments.settlement import Settled, Settlement
from payments.stripe_api import BadSignature, StripeApi
from payments.stripe_objects import Charge, Event, Intent, Refund, StripeObject, event_names

log = structlog.get_logger(__name__)

INTENT_EVENTS = frozenset({
    "payment_intent.succeeded", "payment_intent.payment_failed", "payment_intent.canceled",
    "payment_intent.processing", "payment_intent.requires_action"})
REFUND_EVENTS = frozenset({
    "refund.created", "refund.updated", "refund.failed", "charge.refund.updated"})
CHARGE_REFUNDED = "charge.refunded"
_OBJECTS: dict[str, type[StripeObject]] = {
    **dict.fromkeys(INTENT_EVENTS, Intent), **dict.fromkeys(REFUND_EVENTS, Refund),
    CHARGE_REFUNDED: Charge}


class InvalidSignature(BadRequest):
    code = "INVALID_SIGNATURE"
    message = "The Stripe-Signature header does not match this body, or it is out of date"


class MalformedEvent(BadRequest):
    """Signed, yet not an event we can read: `details` name each field at fault."""

    code = "MALFORMED_EVENT"
    message = "The body is not a Stripe event payments can read"

    def __init__(self, details: list[dict[str, str]], *, event_id: str | None = None,
                 event_type: str | None = None) -> None:
        super().__init__(details=details)
        self.event_id, self.event_type = event_id, event_type

    @property
    def reason(self) -> str:
        text = "; ".join(f"{d['field']}: {d['message']}" for d in self.details)
        return text.replace("\x00", "\\0")[:1000]


def parse_event(text: str) -> tuple[Event, StripeObject | None]:
    """The event and, for the types we act on, its object; raises MalformedEvent."""
    try:
        data: Any = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise MalformedEvent([{"field": "body", "message": f"not JSON: {exc}"[:200]}]) from None
    try:
        event = Event.model_validate(data)
    except pydantic.ValidationError as exc:
        event_id, event_type = event_names(data)
        raise MalformedEvent(validation_details(exc), event_id=event_id,
                             event_type=event_type) from None
    model = _OBJECTS.get(event.type)
    if model is None:
        return event, None
    try:
        return event, model.model_validate(event.data.object)
    except pydantic.ValidationError as exc:
        details = [{**d, "field": f"data.object.{d['field']}".removesuffix(".body")}
                   for d in validation_details(exc)]
        raise MalformedEvent(details, event_id=event.id, event_type=event.type) from None


class Webhooks:
    def __init__(self, pool: asyncpg.Pool, stripe_api: StripeApi, settlement: Settlement,
                 cancellations: Cancellations, metrics: PaymentMetrics) -> None:
        self._pool, self._stripe, self._settlement = pool, stripe_api, settlement
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
            event, obj = parse_event(text)
        except MalformedEvent as exc:
            await self._refuse(exc)
            raise
        with structlog.contextvars.bound_contextvars(stripeEventId=event.id,
                                                     stripeEventType=event.type):
            outcome = await self._apply(event, obj)
            self._metrics.webhooks.labels(outcome).inc()
            log.info("stripe_webhook", outcome=outcome)
            return outcome

    async def _refuse(self, refused: MalformedEvent) -> None:
        """Kept for an operator: Stripe retries it for days, and it never gets better."""
        self._metrics.webhooks.labels("malformed").inc()
        log.error("stripe_webhook_malformed", stripeEventId=refused.event_id,
                  stripeEventType=refused.event_type, reason=refused.reason)
        async with self._pool.acquire() as conn:
            await db.record_refused_event(conn, refused.event_id, refused.event_type,
                                          refused.reason)

    async def _apply(self, event: Event, obj: StripeObject | None) -> str:
        if obj is None:
            async with self._pool.acquire() as conn:
                new = await db.record_stripe_event(conn, event.id, event.type)
            return "ignored" if new else "duplicate"
        fetched: list[Refund] = []
        if isinstance(obj, Charge):
            fetched = await self._refunds_of_charge(event.id, obj)
        async with self._pool.acquire() as conn, conn.transaction():
            if not await db.record_stripe_event(conn, event.id, event.type):
                return "duplicate"
            settled = await self._settle(conn, event.id, obj, fetched)
        if settled is None:  # not about one of our payments (another integration's, say)
            return "ignored"
        if settled.refund_due:
            await self._cancellations.settle_soon(settled.booking_id)
        return "applied"

    async def _settle(self, conn: asyncpg.Connection, event_id: str, obj: StripeObject,
                      fetched: list[Refund]) -> Settled | None:
        settlement = self._settlement
        if isinstance(obj, Intent):
            return await settlement.settle_intent(conn, obj, event_id=event_id)
        if isinstance(obj, Refund):
            return await settlement.record_refund(conn, obj, event_id=event_id)
        if not isinstance(obj, Charge):
            raise TypeError(f"no settlement for {type(obj).__name__}")
        return await settlement.record_charge(conn, obj, list(obj.refunds) or fetched,
                                              event_id=event_id)

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
