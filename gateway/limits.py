"""Rate limits: a token bucket per client (its user, or else its IP address) and policy, shared by
every gateway replica through Redis, with a local bucket standing in while Redis is unreachable."""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web
from prometheus_client import Counter

from common.errors import AppError
from common.http.health import HEALTH
from common.http.metrics import METRICS
from common.http.middleware import CLIENT_IP
from common.resilience import (
    Decision,
    FallbackLimiter,
    LocalTokenBucketLimiter,
    RateLimiter,
    RedisTokenBucketLimiter,
    limiter_client,
)
from gateway.access import identify
from gateway.config import Config
from gateway.proxy import CLIENT_PROTO
from gateway.table import Limits, Rules, prefix_matches

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class RateLimited(AppError):
    status, code, message = 429, "RATE_LIMITED", "Too many requests; slow down"


class Limiter:
    """Who pays for a request, and whether their bucket for its policy still has a token.

    A route that needs a token is charged to the caller's user, so people behind one address (an
    office, a mobile carrier) do not share a budget, and one user cannot escape theirs by changing
    address. Everything else is charged to the client's IP address: public routes (a token there
    must not buy a login brute-forcer a fresh bucket), requests without a valid token, and the
    prefixes in `user_exempt` (the Stripe webhook)."""

    def __init__(self, limiter: RateLimiter, limits: Limits, public: Rules, config: Config,
                 rejected: Counter) -> None:
        self.limiter, self.limits, self.public, self.rejected = limiter, limits, public, rejected
        self.exempt, self.user_exempt = config.rate_limit_exempt, config.user_limit_exempt
        self.page_clients: Networks = [ipaddress.ip_network(n, strict=False)
                                       for n in config.page_clients]

    async def client(self, request: web.Request) -> tuple[str, str]:
        """("user", id) or ("ip", address)."""
        path = request.path
        method = "GET" if request.method == "HEAD" else request.method
        if (not any(prefix_matches(p, path) for p in self.user_exempt)
                and not self.public.any(method, path)):
            identity = await identify(request)
            if identity is not None:
                return "user", identity.user_id
        return "ip", request[CLIENT_IP]

    async def check(self, request: web.Request) -> Decision | None:
        """The decision for this request, or None when its path is not limited."""
        path = request.path
        matched = self.limits.match(path)
        if matched is None or any(prefix_matches(p, path) for p in self.exempt):
            return None
        if request.method in ("GET", "HEAD") and _trusted(request.remote or "",
                                                          self.page_clients):
            return None  # a page's reads: the visitor's page request paid for them

        name, policy = matched
        scope, client = await self.client(request)
        decision = await self.limiter.take(f"{name}:{scope}:{client}", policy)
        if not decision.allowed:
            self.rejected.labels(policy=name, scope=scope).inc()
        return decision


LIMITER: web.AppKey[Limiter] = web.AppKey("limiter", Limiter)
DECISION: web.RequestKey[Decision] = web.RequestKey("rate_limit_decision", Decision)


@web.middleware
async def rate_limit(request: web.Request, handler: Handler) -> web.StreamResponse:
    decision = await request.app[LIMITER].check(request)
    if decision is not None:
        request[DECISION] = decision
        if not decision.allowed:
            raise RateLimited(headers=decision.headers())
    return await handler(request)


async def add_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: `RateLimit-*` on every limited response, including the proxy's, which
    are prepared (and their headers sent) before the middleware sees them."""
    decision = request.get(DECISION)
    if decision is not None:
        response.headers.update(decision.headers())


Networks = list[ipaddress.IPv4Network | ipaddress.IPv6Network]


@functools.lru_cache(maxsize=4096)  # a connection's peer, asked about on each of its requests
def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(peer: str, trusted: Networks) -> bool:
    address = _address(peer)
    return address is not None and any(address in net for net in trusted)


def client_proto(request: web.Request, trusted: Networks) -> str:
    """`http` or `https` as the client used it: a trusted proxy's `X-Forwarded-Proto` (the value
    the nearest proxy appended), else the scheme of the connection to the gateway."""
    if _trusted(request.remote or "", trusted):
        said = [p.strip().lower() for v in request.headers.getall("X-Forwarded-Proto", [])
                for p in v.split(",")]
        if said and said[-1] in ("http", "https"):
            return said[-1]
    return request.scheme


def client_ip(request: web.Request, trusted: Networks) -> str:
    """The peer's address; when the peer is a trusted proxy, the nearest address in
    `X-Forwarded-For` that is not one (each proxy appends the address it saw, so what lies to the
    left of the first untrusted hop is the client's say-so)."""
    peer = request.remote or "unknown"
    nearest = _address(peer)
    if nearest is None:
        return peer
    if not any(nearest in net for net in trusted):
        return str(nearest)
    chain = [a.strip() for v in request.headers.getall("X-Forwarded-For", []) for a in v.split(",")]
    for text in reversed(chain):
        address = _address(text)
        if address is None:
            break  # not an address: believe nothing further left
        nearest = address
        if not any(address in net for net in trusted):
            break
    return str(nearest)


@web.middleware
async def client_address(request: web.Request, handler: Handler) -> web.StreamResponse:
    trusted = request.app[TRUSTED]
    request[CLIENT_IP] = client_ip(request, trusted)
    request[CLIENT_PROTO] = client_proto(request, trusted)
    return await handler(request)


TRUSTED: web.AppKey[Networks] = web.AppKey("trusted", list)


def limiter_ctx(config: Config, limits: Limits,
                public: Rules) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        registry = app[METRICS].registry
        fallbacks = Counter("gateway_rate_limit_fallback_total",
                            "Rate-limit decisions made locally because Redis was unreachable",
                            registry=registry)
        rejected = Counter("gateway_rate_limit_rejections_total", "Requests refused with 429",
                           ["policy", "scope"], registry=registry)
        client = limiter_client(config.redis_url, timeout=config.rate_limit_timeout)
        limiter = FallbackLimiter(
            RedisTokenBucketLimiter(client, prefix=f"{config.redis_prefix}ratelimit:",
                                    timeout=config.rate_limit_timeout),
            LocalTokenBucketLimiter(), counter=fallbacks)
        app[LIMITER] = Limiter(limiter, limits, public, config, rejected)
        # Not critical: without Redis the gateway limits per replica and keeps serving.
        async def ping() -> None:
            await client.ping()

        app[HEALTH].add("redis", ping, critical=False)
        yield
        await client.aclose()

    return ctx
