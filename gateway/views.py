"""The gateway's own endpoints: circuit-breaker status, reset and health."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from prometheus_client import Gauge
from pydantic import Field

from common.auth import Identity
from common.errors import NotFound
from common.http import Schema, endpoint, json_response
from common.resilience import CircuitBreaker, State
from gateway.upstreams import UPSTREAMS, Upstream

TAGS = ("gateway",)
STATE_VALUE = {State.CLOSED: 0, State.HALF_OPEN: 1, State.OPEN: 2}


class BreakerStatus(Schema):
    timestamp: str
    circuit_breakers: dict[str, dict[str, Any]]
    summary: dict[str, int]


class BreakerReset(Schema):
    service: str
    state: str
    timestamp: str


class BreakersReset(Schema):
    services: dict[str, str] = Field(description="Each breaker's state after the reset")
    timestamp: str


class BreakerHealth(Schema):
    status: str
    open_circuits: list[str]
    timestamp: str


class UnknownService(NotFound):
    code, message = "UNKNOWN_SERVICE", "No circuit breaker has this name"


# The names the system this one replaces gave its services (and its gateway's keys for them),
# so that operators' scripts and habits keep working.
ORIGINAL_NAMES = {
    "auth-service": "auth", "tour-catalog-service": "catalog", "tours": "catalog",
    "booking-service": "booking", "booking-management-service": "booking", "bookings": "booking",
    "payment-service": "payments", "notification-service": "notify",
    "websocket-server": "realtime", "websocket": "realtime",
}


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


@endpoint(summary="Every upstream's circuit breaker: state and rolling counters", access="admin",
          response=BreakerStatus, tags=TAGS)
async def breaker_status(request: web.Request, identity: Identity) -> web.Response:
    upstreams = request.app[UPSTREAMS]
    snapshots = {name: u.breaker.snapshot() for name, u in upstreams.items()}
    states = [s["state"] for s in snapshots.values()]
    return json_response(BreakerStatus(
        timestamp=_now(), circuit_breakers=snapshots,
        summary={"total": len(states), "open": states.count(State.OPEN.value),
                 "halfOpen": states.count(State.HALF_OPEN.value),
                 "closed": states.count(State.CLOSED.value)}))


@endpoint(summary="Close one upstream's circuit breaker and clear its window", access="admin",
          response=BreakerReset, errors=(404,), tags=TAGS, description=(
              "`service` is an upstream's name (auth, catalog, booking, payments, notify, "
              "realtime) or the original system's name for it (auth-service, "
              "tour-catalog-service, booking-service, payment-service, notification-service, "
              "websocket-server...)."))
async def breaker_reset(request: web.Request, identity: Identity) -> web.Response:
    upstreams = request.app[UPSTREAMS]
    name = request.match_info["service"]
    upstream = upstreams.get(ORIGINAL_NAMES.get(name, name))
    if upstream is None:
        raise UnknownService(details={"known": sorted(upstreams.keys())})
    upstream.breaker.reset()
    return json_response(BreakerReset(service=upstream.name, state=upstream.breaker.state.value,
                                      timestamp=_now()))


@endpoint(summary="Close every upstream's circuit breaker and clear its window",
          access="admin", response=BreakersReset, tags=TAGS)
async def breakers_reset(request: web.Request, identity: Identity) -> web.Response:
    upstreams = request.app[UPSTREAMS]
    for upstream in upstreams.values():
        upstream.breaker.reset()
    return json_response(BreakersReset(
        services={name: upstreams[name].breaker.state.value for name in sorted(upstreams)},
        timestamp=_now()))


@endpoint(summary="200 when no circuit breaker is open, else 503", response=BreakerHealth,
          errors=(503,), tags=TAGS)
async def breaker_health(request: web.Request) -> web.Response:
    open_circuits = sorted(n for n, u in request.app[UPSTREAMS].items()
                           if u.breaker.state is State.OPEN)
    body = BreakerHealth(status="degraded" if open_circuits else "healthy",
                         open_circuits=open_circuits, timestamp=_now())
    return json_response(body, status=503 if open_circuits else 200)


def export_breaker_states(upstreams: dict[str, Upstream], gauge: Gauge) -> None:
    """`gateway_circuit_breaker_state` (0 closed, 1 half-open, 2 open), read at each scrape: an
    open breaker turns half-open lazily, when its state is read, so no event would report that."""
    for name, upstream in upstreams.items():
        gauge.labels(upstream=name).set_function(_state_of(upstream.breaker))


def _state_of(breaker: CircuitBreaker) -> Callable[[], float]:
    return lambda: STATE_VALUE[breaker.state]
