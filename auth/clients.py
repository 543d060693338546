"""auth's calls to other services: a user's bookings, from booking's `/internal` list, for the
administrators' user page. A timeout on every call and a circuit breaker: when booking is down the
page answers without them, and fast."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp
import pydantic
import structlog

from auth.schemas import UserBookingOut
from common.auth import SERVICE_HEADER
from common.http.upstream import Upstream, UpstreamDown, upstream_breaker

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class UserBookings:
    items: list[UserBookingOut]
    total: int


class BookingClient(Upstream):
    def __init__(self, session: aiohttp.ClientSession, base_url: str, service_token: str, *,
                 timeout: float, reset_timeout: float) -> None:
        super().__init__(session, base_url, upstream_breaker("booking", timeout, reset_timeout),
                         headers={SERVICE_HEADER: service_token}, forward_correlation_id=True)

    async def of_user(self, user_id: str, limit: int) -> UserBookings | None:
        """The user's newest bookings and how many there are; None when booking gave no usable
        answer (down, slow, an open circuit, an error)."""
        try:
            status, body = await self.request(
                "GET", f"/internal/bookings?userId={user_id}&limit={limit}")
        except UpstreamDown as exc:
            log.warning("user_bookings_unavailable", error=str(exc))
            return None
        if status != 200 or body is None:
            log.warning("user_bookings_unavailable", error=f"booking answered {status}")
            return None
        return _parse(body)


def _parse(body: dict[str, Any]) -> UserBookings | None:
    items, total = body.get("items"), body.get("total")
    if not isinstance(items, list) or not isinstance(total, int):
        log.warning("user_bookings_unavailable", error="not a list answer")
        return None
    try:
        return UserBookings([UserBookingOut.model_validate(item) for item in items], total)
    except pydantic.ValidationError as exc:
        log.warning("user_bookings_unavailable", error=f"unexpected booking: {exc}")
        return None
