"""The only place that calls the public API: through the gateway, one circuit per area of the API,
with the visitor's address passed on so that every limit applies to the visitor, not to us."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import aiohttp
from aiohttp import web

from common.http.health import HEALTH
from common.http.upstream import Upstream, UpstreamDown, upstream_breaker
from web.config import Config
from web.errors import ApiError, ApiUnavailable

AREAS = ("auth", "catalog", "booking", "payments", "notify", "gateway")
MAX_KEPT = 2048
Json = dict[str, Any]


@dataclass(frozen=True)
class Caller:
    """On whose behalf a call is made: the visitor's address and scheme, and their access token."""

    address: str
    proto: str = "http"
    token: str | None = None

    def headers(self) -> dict[str, str]:
        sent = {"X-Forwarded-For": self.address, "X-Forwarded-Proto": self.proto}
        if self.token:
            sent["Authorization"] = f"Bearer {self.token}"
        return sent


def _q(value: str) -> str:
    return quote(value, safe="")


def query(params: Mapping[str, Any]) -> str:
    """`?a=1&b=x` of the parameters that are set, or an empty string."""
    kept = {k: v for k, v in params.items() if v not in (None, "")}
    return "?" + urlencode(kept) if kept else ""


class Api:
    """The public API as the pages use it. Every method raises `ApiError` for a refusal (4xx)
    and `ApiUnavailable` when no usable answer came."""

    def __init__(self, upstreams: dict[str, Upstream], reference_ttl: float,
                 catalog_ttl: float = 0.0) -> None:
        self.upstreams = upstreams
        self.reference_ttl, self.catalog_ttl = reference_ttl, catalog_ttl
        self._kept: dict[str, tuple[float, Json]] = {}

    async def call(self, area: str, method: str, path: str, caller: Caller, *,
                   json: Json | None = None, headers: Mapping[str, str] | None = None) -> Json:
        upstream = self.upstreams[area]
        try:
            status, body = await upstream.request(
                method, path, json=json, headers={**caller.headers(), **(headers or {})})
        except UpstreamDown as exc:
            raise ApiUnavailable(f"{area} is unavailable", headers=exc.headers) from None
        if status >= 500:
            raise ApiUnavailable(f"{area} answered {status}")
        if status >= 400:
            raise ApiError(status, body)
        return body or {}

    async def _reference(self, key: str, load: Callable[[], Awaitable[Json]],
                         ttl: float | None = None) -> Json:
        """Public data kept `ttl` seconds (reference data by default) for every visitor."""
        ttl = self.reference_ttl if ttl is None else ttl
        kept = self._kept.get(key)
        if kept and time.monotonic() - kept[0] < ttl:
            return kept[1]
        value = await load()
        if len(self._kept) >= MAX_KEPT:
            self._kept.clear()
        self._kept[key] = (time.monotonic(), value)
        return value

    # -- catalog ---------------------------------------------------------------------------------

    async def tours(self, caller: Caller, **params: Any) -> Json:
        return await self.call("catalog", "GET", "/api/tours" + query(params), caller)

    async def tour(self, caller: Caller, key: str) -> Json:
        return await self.call("catalog", "GET", f"/api/tours/{_q(key)}", caller)

    async def tours_kept(self, caller: Caller, **params: Any) -> Json:
        """A search as catalog lets anyone cache it (`max-age`): for the cards of a page."""
        path = "/api/tours" + query(params)
        return await self._reference(path, lambda: self.call("catalog", "GET", path, caller),
                                     self.catalog_ttl)

    async def tour_kept(self, caller: Caller, key: str) -> Json:
        """A tour as catalog lets anyone cache it, for a card's seat badge; the tour's own page
        reads it afresh, and live updates correct a card within seconds."""
        path = f"/api/tours/{_q(key)}"
        return await self._reference(path, lambda: self.call("catalog", "GET", path, caller),
                                     self.catalog_ttl)

    async def categories(self, caller: Caller) -> list[Json]:
        found = await self._reference("categories", lambda: self.call(
            "catalog", "GET", "/api/categories?limit=100", caller))
        return list(found.get("items", []))

    async def destinations(self, caller: Caller) -> list[Json]:
        found = await self._reference("destinations", lambda: self.call(
            "catalog", "GET", "/api/destinations?limit=100", caller))
        return list(found.get("items", []))

    # -- auth ------------------------------------------------------------------------------------

    async def register(self, caller: Caller, body: Json) -> Json:
        return await self.call("auth", "POST", "/api/auth/register", caller, json=body)

    async def login(self, caller: Caller, email: str, password: str) -> Json:
        return await self.call("auth", "POST", "/api/auth/login", caller,
                               json={"email": email, "password": password})

    async def refresh(self, caller: Caller, refresh_token: str) -> Json:
        return await self.call("auth", "POST", "/api/auth/refresh", caller,
                               json={"refreshToken": refresh_token})

    async def logout(self, caller: Caller) -> None:
        """Revokes the refresh tokens of the session the access token belongs to."""
        await self.call("auth", "POST", "/api/auth/logout", caller)

    async def profile(self, caller: Caller) -> Json:
        return await self.call("auth", "GET", "/api/auth/profile", caller)

    async def update_profile(self, caller: Caller, changes: Json) -> Json:
        return await self.call("auth", "PATCH", "/api/auth/profile", caller, json=changes)

    # -- booking ---------------------------------------------------------------------------------

    async def bookings(self, caller: Caller, **params: Any) -> Json:
        return await self.call("booking", "GET", "/api/bookings" + query(params), caller)

    async def booking(self, caller: Caller, booking_id: str) -> Json:
        return await self.call("booking", "GET", f"/api/bookings/{_q(booking_id)}", caller)

    async def book(self, caller: Caller, body: Json, idempotency_key: str) -> Json:
        return await self.call("booking", "POST", "/api/bookings", caller, json=body,
                               headers={"Idempotency-Key": idempotency_key})

    async def cancel(self, caller: Caller, booking_id: str) -> Json:
        return await self.call("booking", "POST", f"/api/bookings/{_q(booking_id)}/cancel",
                               caller, json={})

    async def change_booking(self, caller: Caller, booking_id: str, version: str,
                             changes: Json) -> Json:
        """A pending booking changed on the version the visitor saw (`412` when it moved on)."""
        return await self.call("booking", "PATCH", f"/api/bookings/{_q(booking_id)}", caller,
                               json=changes, headers={"If-Match": f'"{version}"'})

    # -- payments --------------------------------------------------------------------------------

    async def payment_config(self, caller: Caller) -> Json:
        return await self._reference("payments-config", lambda: self.call(
            "payments", "GET", "/api/payments/config", caller))

    async def create_intent(self, caller: Caller, booking_id: str, idempotency_key: str) -> Json:
        return await self.call("payments", "POST", "/api/payments/create-intent", caller,
                               json={"bookingId": booking_id},
                               headers={"Idempotency-Key": idempotency_key})

    async def booking_payments(self, caller: Caller, booking_id: str) -> list[Json]:
        try:
            found = await self.call("payments", "GET",
                                    f"/api/payments/booking/{_q(booking_id)}", caller)
        except ApiError as exc:
            if exc.status == 404:
                return []
            raise
        return list(found.get("items", []))

    # -- operators -------------------------------------------------------------------------------

    async def write(self, caller: Caller, method: str, path: str,
                    body: Json | None = None) -> Json:
        """A change made by an operator: the area is the path's (`/api/tours...` is catalog)."""
        return await self.call(_area(path), method, path, caller, json=body)

    async def read(self, caller: Caller, path: str, **params: Any) -> Json:
        return await self.call(_area(path), "GET", path + query(params), caller)

    async def refund(self, caller: Caller, payment_id: str, amount: int | None,
                     reason: str | None) -> Json:
        body: Json = {}
        if amount is not None:
            body["amount"] = amount
        if reason:
            body["reason"] = reason
        return await self.call("payments", "POST", f"/api/payments/{_q(payment_id)}/refund",
                               caller, json=body)

    async def payments(self, caller: Caller, **params: Any) -> Json:
        return await self.call("payments", "GET", "/api/payments" + query(params), caller)

    async def resolve_anomalies(self, caller: Caller, payment_id: str, note: str) -> Json:
        return await self.call("payments", "POST",
                               f"/api/payments/{_q(payment_id)}/anomalies/resolve", caller,
                               json={"note": note})

    # -- users (admins) --------------------------------------------------------------------------

    async def users(self, caller: Caller, **params: Any) -> Json:
        return await self.call("auth", "GET", "/api/admin/users" + query(params), caller)

    async def user(self, caller: Caller, user_id: str) -> Json:
        return await self.call("auth", "GET", f"/api/admin/users/{_q(user_id)}", caller)

    async def change_user(self, caller: Caller, user_id: str, changes: Json) -> Json:
        return await self.call("auth", "PATCH", f"/api/admin/users/{_q(user_id)}", caller,
                               json=changes)

    # -- notify ----------------------------------------------------------------------------------

    async def notifications(self, caller: Caller, **params: Any) -> Json:
        return await self.call("notify", "GET", "/api/notifications" + query(params), caller)


def _area(path: str) -> str:
    areas = {"/api/auth": "auth", "/api/admin/users": "auth", "/api/tours": "catalog",
             "/api/categories": "catalog", "/api/destinations": "catalog",
             "/api/bookings": "booking", "/api/payments": "payments",
             "/api/notifications": "notify"}
    for prefix, area in areas.items():
        if path == prefix or path.startswith((prefix + "/", prefix + "?")):
            return area
    return "gateway"  # /health, /circuit-breaker/...


API: web.AppKey[Api] = web.AppKey("api", Api)


def api_ctx(config: Config) -> Callable[[web.Application], AsyncIterator[None]]:
    """One pooled session to the gateway; a circuit per area, so that one sick service does not
    close the whole site."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        timeout = aiohttp.ClientTimeout(total=config.api_timeout)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            upstreams = {area: Upstream(
                session, config.api_url,
                upstream_breaker(f"api.{area}", config.api_timeout, config.breaker_reset_timeout),
                forward_correlation_id=True) for area in AREAS}
            app[API] = Api(upstreams, config.reference_ttl, config.catalog_ttl)
            for upstream in upstreams.values():
                app[HEALTH].add(upstream.name, upstream.check, critical=False)
            yield

    return ctx
