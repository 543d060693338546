"""One upstream: its base URL, its pooled keep-alive session and its circuit breaker."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from common.errors import AppError
from common.resilience import BreakerOptions, CircuitBreaker
from gateway.config import Config


def counts_as_failure(exc: BaseException) -> bool:
    """Only the upstream's faults open a breaker: connection errors and timeouts."""
    return isinstance(exc, aiohttp.ClientError | TimeoutError)


def clients_fault(exc: BaseException) -> bool:
    """A request that failed on the client's side (a body too large, too slow, malformed or
    wrongly compressed, the client gone): the proxy raises its own error for it, possibly as the
    cause of aiohttp's. The upstream did nothing, so its breaker counts the call neither way."""
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, AppError):
            return True
        cause = cause.__cause__
    return False


def is_server_error(response: object) -> bool:
    return isinstance(response, aiohttp.ClientResponse) and response.status >= 500


@dataclass
class Upstream:
    name: str
    url: str
    session: aiohttp.ClientSession
    breaker: CircuitBreaker


@dataclass
class CachedResponse:
    status: int
    headers: CIMultiDict[str]
    body: bytes
    stored_at: float = field(default_factory=time.monotonic)


class StaleCache:
    """The last good answer to each public catalog GET, served while catalog is unreachable.
    Bounded in entries and in size per entry; least recently stored goes first."""

    KEPT_HEADERS = ("Content-Type", "ETag", "Last-Modified", "Content-Language")

    def __init__(self, max_entries: int, max_bytes: int) -> None:
        self.max_entries, self.max_bytes = max_entries, max_bytes
        self._entries: OrderedDict[str, CachedResponse] = OrderedDict()

    def get(self, key: str) -> CachedResponse | None:
        return self._entries.get(key)

    def put(self, key: str, status: int, headers: CIMultiDictProxy[str], body: bytes) -> None:
        if self.max_entries == 0 or len(body) > self.max_bytes:
            return
        kept = CIMultiDict((k, v) for k, v in headers.items() if k in self.KEPT_HEADERS)
        self._entries[key] = CachedResponse(status, kept, body)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)


async def fetch_openapi(upstream: Upstream,
                        timeout: float) -> dict[str, Any] | str:  # noqa: ASYNC109 - per service
    """A service's OpenAPI document, or why there is none (never an error: the caller leaves
    that service out). Not through the breaker: it says how the service is doing now."""
    try:
        async with (asyncio.timeout(timeout),
                    upstream.session.get(upstream.url + "/openapi.json", headers={
                        "Accept": "application/json", "Accept-Encoding": "identity",
                        # Asked for once in a while: no connection kept open for it.
                        "Connection": "close"}) as resp):
            if resp.status != 200:
                return f"HTTP {resp.status}"
            document = await resp.json(content_type=None)
    except TimeoutError:
        return f"no answer within {timeout:g}s"
    except (aiohttp.ClientError, OSError):
        return "unreachable"
    except ValueError:
        return "not JSON"
    if not (isinstance(document, dict) and str(document.get("openapi", "")).startswith("3.1")
            and isinstance(document.get("paths"), dict)):
        return "no OpenAPI 3.1 document"
    return document


UPSTREAMS: web.AppKey[dict[str, Upstream]] = web.AppKey("upstreams", dict)
STALE: web.AppKey[StaleCache] = web.AppKey("stale_cache", StaleCache)


def breaker_options(config: Config) -> BreakerOptions:
    return BreakerOptions(
        timeout=None,  # each route has its own timeout, applied around the upstream call
        error_threshold_percentage=config.breaker_error_threshold,
        volume_threshold=config.breaker_volume_threshold,
        rolling_count_timeout=config.breaker_window,
        reset_timeout=config.breaker_reset_timeout,
        is_failure=counts_as_failure,
        is_ignored=clients_fault,
        is_failure_result=is_server_error,
    )


def upstreams_ctx(config: Config) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        upstreams = {}
        for name, url in config.upstream_urls().items():
            session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=200, keepalive_timeout=30,
                                               enable_cleanup_closed=True),
                auto_decompress=False,  # bytes pass through as the upstream encoded them
                cookie_jar=aiohttp.DummyCookieJar(),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=config.default_timeout),
            )
            upstreams[name] = Upstream(name, url.rstrip("/"), session,
                                       CircuitBreaker(name, breaker_options(config)))
        app[UPSTREAMS] = upstreams
        app[STALE] = StaleCache(config.stale_cache_entries, config.stale_cache_max_bytes)
        yield
        for upstream in upstreams.values():
            await upstream.session.close()

    return ctx
