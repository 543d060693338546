"""notify's calls to the `/internal` API of other services (auth's users, booking's bookings):
the service credential, a pooled session, a timeout on every call and a circuit breaker per
upstream. Whatever keeps an answer from coming (down, slow, 5xx, an open circuit) is
`UpstreamUnavailable`: the event's handler fails and the bus retries it later."""

from __future__ import annotations

from typing import Any

import aiohttp

from common.auth import SERVICE_HEADER
from common.http.upstream import Upstream, UpstreamDown, upstream_breaker


class UpstreamUnavailable(Exception):
    """An upstream gave no usable answer now; the event is to be retried."""


class InternalApi(Upstream):
    """GET JSON from one upstream's `/internal` paths."""

    def __init__(self, name: str, session: aiohttp.ClientSession, base_url: str,
                 service_token: str, *, timeout: float, reset_timeout: float) -> None:
        super().__init__(session, base_url, upstream_breaker(name, timeout, reset_timeout),
                         headers={SERVICE_HEADER: service_token}, forward_correlation_id=True)

    async def get(self, path: str) -> dict[str, Any] | None:
        """The JSON object at `path`, or None when the upstream answers 404."""
        try:
            status, body = await self.request("GET", path)
        except UpstreamDown as exc:
            raise UpstreamUnavailable(str(exc)) from None
        if status == 404:
            return None
        if status != 200 or body is None:
            raise UpstreamUnavailable(f"{self.name} answered {status} to GET {path}")
        return body
