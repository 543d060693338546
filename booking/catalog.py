"""The client of catalog's `/internal` seat-hold API (hold, resize, release): a pooled session, a
timeout on every call, a circuit breaker, and catalog's answers turned into booking's errors.

Catalog's refusals (400, 404, 409) are the client's business and pass through unchanged; catalog
being down, slow, failing or refusing our credential is booking's problem and becomes 503.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import aiohttp
import structlog

from booking.errors import CatalogRefused, CatalogUnavailable
from common.auth import SERVICE_HEADER
from common.errors import AppError
from common.http.upstream import Upstream, UpstreamDown, upstream_breaker
from common.resilience import CircuitBreaker

log = structlog.get_logger(__name__)

# Catalog says `seats`; booking's clients sent `participants`. Their error details use our names.
_FIELD_NAMES = {"seats": "participants"}
_PASSED_THROUGH = frozenset({400, 404, 409, 422})


@dataclass(frozen=True)
class Hold:
    """Seats catalog holds for one booking, and the tour facts booking keeps from it."""

    booking_id: uuid.UUID
    tour_id: uuid.UUID
    departure_id: uuid.UUID
    tour_date: date
    seats: int
    state: str
    expires_at: datetime
    tour_title: str
    unit_price: int
    currency: str

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Hold:
        return cls(
            booking_id=uuid.UUID(body["bookingId"]), tour_id=uuid.UUID(body["tourId"]),
            departure_id=uuid.UUID(body["departureId"]),
            tour_date=date.fromisoformat(body["tourDate"]), seats=int(body["seats"]),
            state=str(body["state"]),
            expires_at=datetime.fromisoformat(body["expiresAt"]),
            tour_title=str(body["tourTitle"]), unit_price=int(body["unitPrice"]),
            currency=str(body["currency"]))


def catalog_breaker(timeout: float, reset_timeout: float) -> CircuitBreaker:
    """Catalog's 4xx answers are healthy answers and never open it."""
    return upstream_breaker("catalog", timeout, reset_timeout)


class CatalogClient:
    def __init__(self, session: aiohttp.ClientSession, base_url: str, service_token: str,
                 breaker: CircuitBreaker) -> None:
        self._catalog = Upstream(session, base_url, breaker,
                                 headers={SERVICE_HEADER: service_token})
        self.breaker = breaker

    async def hold(self, *, booking_id: uuid.UUID, tour_id: uuid.UUID, tour_date: date,
                   seats: int, expires_at: datetime) -> Hold:
        """Hold `seats` for the booking; the same booking id again returns the same hold."""
        body = {"bookingId": str(booking_id), "tourId": str(tour_id),
                "tourDate": tour_date.isoformat(), "seats": seats,
                "expiresAt": expires_at.isoformat().replace("+00:00", "Z")}
        status, answer = await self._call("POST", "/internal/holds", body)
        if status in (200, 201):
            return self._hold(answer)
        raise self._refusal(status, answer)

    async def resize(self, booking_id: uuid.UUID, seats: int) -> Hold:
        """The booking holds `seats` from now on (held, or booked once paid); the same size
        again changes nothing. Refusals (not enough seats, a released hold) pass through."""
        status, answer = await self._call("POST", f"/internal/holds/{booking_id}/resize",
                                          {"seats": seats})
        if status == 200:
            return self._hold(answer)
        raise self._refusal(status, answer)

    async def check(self) -> None:
        """Health check: the catalog circuit is not open."""
        await self._catalog.check()

    async def release(self, booking_id: uuid.UUID) -> Hold | None:
        """Give the booking's seats back; None when catalog never held any for it."""
        status, answer = await self._call("POST", f"/internal/holds/{booking_id}/release")
        if status == 200:
            return self._hold(answer)
        if status == 404:
            return None
        raise self._refusal(status, answer)

    async def _call(self, method: str, path: str,
                    body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        try:
            status, answer = await self._catalog.request(method, path, json=body)
        except UpstreamDown as exc:
            if exc.retry_after is None:
                log.warning("catalog_unreachable", method=method, path=path, error=str(exc))
            raise CatalogUnavailable(headers=exc.headers) from None
        answer = answer or {}
        if status >= 500:
            log.warning("catalog_failed", method=method, path=path, status=status,
                        error=answer.get("error"))
            raise CatalogUnavailable()
        return status, answer

    def _hold(self, answer: dict[str, Any]) -> Hold:
        try:
            return Hold.from_json(answer)
        except (KeyError, TypeError, ValueError) as exc:
            log.error("catalog_answer_invalid", error=repr(exc))
            raise CatalogUnavailable() from None

    def _refusal(self, status: int, answer: dict[str, Any]) -> AppError:
        if status not in _PASSED_THROUGH or not isinstance(answer.get("error"), str):
            # 401/403: our service credential is wrong; the client can do nothing about it.
            log.error("catalog_refused_booking", status=status, error=answer.get("error"))
            return CatalogUnavailable()
        return CatalogRefused(status, answer["error"], str(answer.get("message") or ""),
                              _rename_fields(answer.get("details")))


def _rename_fields(details: Any) -> Any:
    if not isinstance(details, list):
        return details
    return [{**item, "field": _FIELD_NAMES.get(item["field"], item["field"])}
            if isinstance(item, dict) and isinstance(item.get("field"), str) else item
            for item in details]
