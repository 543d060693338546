"""Calling another service's HTTP API: a pooled session opened with the app (`upstream_ctx`), a
timeout on every call and a circuit breaker that only faults and 5xx answers count against (a 4xx
is a healthy answer). What an answer means, and which error a fault becomes, is the caller's."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, TypeVar

import aiohttp
import structlog
from aiohttp import web

from common.http.health import add_check
from common.http.middleware import REQUEST_ID_HEADER
from common.resilience import BreakerOptions, CircuitBreaker, CircuitOpenError, State
from common.wiring import CleanupContext


class UpstreamDown(Exception):
    """No answer came: the upstream is unreachable or too slow, or its circuit is open."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        """Seconds until the open circuit admits a call again; None when a call was tried."""

    @property
    def headers(self) -> dict[str, str]:
        """The `Retry-After` of a 503, when the circuit says when to come back."""
        if self.retry_after is None:
            return {}
        return {"Retry-After": str(max(1, math.ceil(self.retry_after)))}


def _is_upstream_fault(exc: BaseException) -> bool:
    return isinstance(exc, aiohttp.ClientError | TimeoutError)


def _is_server_error(result: object) -> bool:
    return isinstance(result, tuple) and result[0] >= 500


def upstream_breaker(name: str, timeout: float, reset_timeout: float) -> CircuitBreaker:
    """After a run of failures, calls fail at once instead of each waiting for the timeout."""
    return CircuitBreaker(name, BreakerOptions(
        timeout=timeout, reset_timeout=reset_timeout, is_failure=_is_upstream_fault,
        is_failure_result=_is_server_error))


class Upstream:
    """One upstream service, named by its breaker."""

    def __init__(self, session: aiohttp.ClientSession, base_url: str, breaker: CircuitBreaker,
                 *, headers: Mapping[str, str] | None = None,
                 forward_correlation_id: bool = False) -> None:
        self._session = session
        self._base_url = base_url.rstrip("/")
        self._headers = dict(headers or {})
        # The upstream's log lines of the call then carry the id of our request or event.
        self._forward_correlation_id = forward_correlation_id
        self.breaker = breaker

    @property
    def name(self) -> str:
        return self.breaker.name

    async def request(self, method: str, path: str, *, json: dict[str, Any] | None = None,
                      headers: Mapping[str, str] | None = None,
                      ) -> tuple[int, dict[str, Any] | None]:
        """The status and the JSON object answered (None when the body is not one); 5xx answers
        are returned too. Raises `UpstreamDown` when no answer came."""
        try:
            return await self.breaker.call(self._request, method, path, json, headers)
        except CircuitOpenError as exc:
            raise UpstreamDown(str(exc), retry_after=exc.retry_after) from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise UpstreamDown(
                f"{self.name} unreachable: {str(exc) or type(exc).__name__}") from None

    async def check(self) -> None:
        """Health check: the circuit is not open."""
        if self.breaker.state is State.OPEN:
            raise RuntimeError(f"{self.name} circuit open, retry in "
                               f"{self.breaker.retry_after():.0f}s")

    async def _request(self, method: str, path: str, json: dict[str, Any] | None,
                       headers: Mapping[str, str] | None) -> tuple[int, dict[str, Any] | None]:
        sent = {**self._headers, **(headers or {})}
        if self._forward_correlation_id:
            correlation_id = structlog.contextvars.get_contextvars().get("correlationId")
            if correlation_id:
                sent[REQUEST_ID_HEADER] = str(correlation_id)
        async with self._session.request(method, self._base_url + path, json=json,
                                         headers=sent) as resp:
            try:
                body = await resp.json(content_type=None)
            except ValueError:
                body = None  # a proxy's HTML error page, say
            return resp.status, body if isinstance(body, dict) else None


U = TypeVar("U", bound=Upstream)


def upstream_ctx(key: web.AppKey[U], client: Callable[[aiohttp.ClientSession], U], *,
                 health: bool = True, critical: bool = False) -> CleanupContext:
    """One pooled session for one upstream, and `client(session)` on it under `key`; its circuit
    reported under its name in `/health` (not deciding readiness unless `critical`; not at all
    with `health=False`). The session closes on shutdown."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        async with aiohttp.ClientSession() as session:
            upstream = client(session)
            app[key] = upstream
            if health:
                add_check(app, upstream.name, upstream.check, critical=critical)
            yield

    return ctx
