"""The client of payments' `PUT /internal/payments/booking/{bookingId}/amount`: a pending booking's
new total reaches its open PaymentIntent before it can be paid. A timeout on every call and a
circuit breaker; payments' answers become booking's errors."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import aiohttp
import structlog

from booking.errors import PaymentInProgress, PaymentsUnanswered, PaymentsUnavailable
from common.auth import SERVICE_HEADER
from common.http.upstream import Upstream, UpstreamDown, upstream_breaker
from common.resilience import CircuitBreaker

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class AmountSet:
    """What payments did: `none` (no open intent), `updated` or `replaced` (the open intent now
    asks the new amount)."""

    booking_id: uuid.UUID
    amount: int
    currency: str
    payment_intent_id: str | None
    action: str

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> AmountSet:
        intent = body.get("paymentIntentId")
        return cls(booking_id=uuid.UUID(body["bookingId"]), amount=int(body["amount"]),
                   currency=str(body["currency"]),
                   payment_intent_id=None if intent is None else str(intent),
                   action=str(body["action"]))


def payments_breaker(timeout: float, reset_timeout: float) -> CircuitBreaker:
    """Payments' 4xx answers (409 PAYMENT_IN_PROGRESS) are healthy answers and never open it."""
    return upstream_breaker("payments", timeout, reset_timeout)


class PaymentsClient:
    def __init__(self, session: aiohttp.ClientSession, base_url: str, service_token: str,
                 breaker: CircuitBreaker) -> None:
        self._payments = Upstream(session, base_url, breaker,
                                  headers={SERVICE_HEADER: service_token},
                                  forward_correlation_id=True)
        self.breaker = breaker

    async def set_amount(self, booking_id: uuid.UUID, amount: int, currency: str) -> AmountSet:
        """The booking's open intent, if any, asks `amount` from now on; the same amount again
        changes nothing. Raises PaymentInProgress when an intent of the booking is processing
        or has succeeded, PaymentsUnavailable when payments (or Stripe behind it) cannot say."""
        path = f"/internal/payments/booking/{booking_id}/amount"
        try:
            status, answer = await self._payments.request(
                "PUT", path, json={"amount": amount, "currency": currency})
        except UpstreamDown as exc:
            if exc.retry_after is not None:  # the open circuit let no call through
                raise PaymentsUnavailable(headers=exc.headers) from None
            log.warning("payments_unreachable", bookingId=str(booking_id), error=str(exc))
            raise PaymentsUnanswered() from None
        answer = answer or {}
        if status == 200:
            try:
                return AmountSet.from_json(answer)
            except (KeyError, TypeError, ValueError) as exc:
                log.error("payments_answer_invalid", bookingId=str(booking_id), error=repr(exc))
                raise PaymentsUnanswered() from None
        if status == 409 and answer.get("error") == PaymentInProgress.code:
            raise PaymentInProgress()
        # 503: Stripe cannot be reached; anything else (our credential refused, a 5xx) is ours
        # to fix, not the traveller's.
        (log.warning if status == 503 else log.error)(
            "payments_refused_amount", bookingId=str(booking_id), status=status,
            error=answer.get("error"))
        raise PaymentsUnavailable()

    async def check(self) -> None:
        """Health check: the payments circuit is not open."""
        await self._payments.check()
