"""The client of booking's public API: payments reads the booking to pay (its owner, status,
amount, currency and expiry) through `GET /api/bookings/{id}`, forwarding the caller's own
Authorization header, so booking decides who may see it (the owner or an admin; anyone else gets
404, as for an unknown booking). A timeout on every call and a circuit breaker: booking being
down, slow or failing is 503 here, never a hung request."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp
import structlog

from common.errors import AppError, NotFound, Unavailable
from common.http.upstream import Upstream, UpstreamDown
from common.resilience import CircuitBreaker

log = structlog.get_logger(__name__)

_PASSED_THROUGH = frozenset({401, 403, 404})


class BookingNotFound(NotFound):
    code, message = "BOOKING_NOT_FOUND", "No such booking"


class BookingRefused(AppError):
    """booking's own 401/403 answer to the caller's token, passed on unchanged."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code = status, code


class BookingUnavailable(Unavailable):
    message = "The booking service cannot be reached right now; try again shortly"


@dataclass(frozen=True)
class Booking:
    """The facts of a booking payments relies on."""

    id: uuid.UUID
    user_id: uuid.UUID
    status: str
    payment_status: str
    total_amount: int
    currency: str
    expires_at: datetime

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Booking:
        return cls(id=uuid.UUID(body["id"]), user_id=uuid.UUID(body["userId"]),
                   status=str(body["status"]), payment_status=str(body["paymentStatus"]),
                   total_amount=int(body["totalAmount"]), currency=str(body["currency"]),
                   expires_at=datetime.fromisoformat(body["expiresAt"]))


class BookingClient:
    """booking's 4xx answers (someone else's booking) are healthy answers: they never open the
    circuit."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str,
                 breaker: CircuitBreaker) -> None:
        self._booking = Upstream(session, base_url, breaker, forward_correlation_id=True)

    async def get(self, booking_id: uuid.UUID, authorization: str) -> Booking:
        """The booking as the caller (whose Authorization header this is) may see it."""
        try:
            status, answer = await self._booking.request(
                "GET", f"/api/bookings/{booking_id}", headers={"Authorization": authorization})
        except UpstreamDown as exc:
            if exc.retry_after is None:
                log.warning("booking_unreachable", error=str(exc))
            raise BookingUnavailable(headers=exc.headers) from None
        body = answer or {}
        if status == 200:
            try:
                return Booking.from_json(body)
            except (KeyError, TypeError, ValueError) as exc:
                log.error("booking_answer_invalid", error=repr(exc))
                raise BookingUnavailable() from None
        if status == 404:
            raise BookingNotFound()
        if status in _PASSED_THROUGH and isinstance(body.get("error"), str):
            raise BookingRefused(status, body["error"], str(body.get("message") or ""))
        log.warning("booking_failed", status=status, error=body.get("error"))
        raise BookingUnavailable()

    async def check(self) -> None:
        """Health check: the circuit is not open."""
        await self._booking.check()
