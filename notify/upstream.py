"""notify's calls to the `/internal` API of other services (auth's users, booking's bookings):
the service credential, a pooled session, a timeout on every call and a circuit breaker per
upstream. Whatever keeps an answer from coming (down, slow, 5xx, an open circuit) is
`UpstreamUnavailable`: the event's handler fails and the bus retries it later."""

from __future__ import annotations

from typing import Any

import aiohttp
import structlog

from common.auth import SERVICE_HEADER
from common.http.middleware import REQUEST_ID_HEADER
from common.resilience import BreakerOptions, CircuitBreaker, CircuitOpenError, State

log = structlog.get_logger(__name__)


class UpstreamUnavailable(Exception):
    """An upstream gave no usable answer now; the event is to be retried."""


def _is_upstream_fault(exc: BaseException) -> bool:
    return isinstance(exc, aiohttp.ClientError | TimeoutError)


def _is_server_error(result: object) -> bool:
    return isinstance(result, tuple) and result[0] >= 500


class InternalApi:
    """GET JSON from one upstream's `/internal` paths."""

    def __init__(self, name: str, session: aiohttp.ClientSession, base_url: str,
                 service_token: str, *, timeout: float, reset_timeout: float) -> None:
        self.name = name
        self._session = session
        self._base_url = base_url.rstrip("/")
        self._headers = {SERVICE_HEADER: service_token}
        # 4xx answers are healthy answers; only faults and 5xx count against the circuit.
        self.breaker = CircuitBreaker(name, BreakerOptions(
            timeout=timeout, reset_timeout=reset_timeout, is_failure=_is_upstream_fault,
            is_failure_result=_is_server_error))

    async def get(self, path: str) -> dict[str, Any] | None:
        """The JSON object at `path`, or None when the upstream answers 404."""
        try:
            status, body = await self.breaker.call(self._request, path)
        except CircuitOpenError as exc:
            raise UpstreamUnavailable(str(exc)) from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise UpstreamUnavailable(
                f"{self.name} unreachable: {str(exc) or type(exc).__name__}") from None
        if status == 404:
            return None
        if status != 200 or body is None:
            raise UpstreamUnavailable(f"{self.name} answered {status} to GET {path}")
        return body

    async def check(self) -> None:
        """Health check: the circuit is not open."""
        if self.breaker.state is State.OPEN:
            raise RuntimeError(f"{self.name} circuit open, retry in "
                               f"{self.breaker.retry_after():.0f}s")

    async def _request(self, path: str) -> tuple[int, dict[str, Any] | None]:
        headers = dict(self._headers)
        correlation_id = structlog.contextvars.get_contextvars().get("correlationId")
        if correlation_id:  # the upstream's log lines of this call carry the event's id
            headers[REQUEST_ID_HEADER] = str(correlation_id)
        async with self._session.get(self._base_url + path, headers=headers) as resp:
            try:
                body = await resp.json(content_type=None)
            except ValueError:
                body = None
            return resp.status, body if isinstance(body, dict) else None
