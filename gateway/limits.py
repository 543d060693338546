"""Rate limits: a token bucket per client IP and per user, a policy per path prefix, shared by
every gateway replica through Redis (a local bucket stands in while Redis is unreachable)."""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web
from prometheus_client import Counter

from common.errors import AppError
from common.http.metrics import METRICS
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
from gateway.proxy import CLIENT_IP
from gateway.table import Limits, prefix_matches

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class RateLimited(AppError):
    status, code, message = 429, "RATE_LIMITED", "Too many requests; slow down"


class Limiter:
    def __init__(self, limiter: RateLimiter, limits: Limits, config: Config,
                 rejected: Counter) -> None:
        self.limiter, self.limits, self.rejected = limiter, limits, rejected
        self.exempt, self.user_exempt = config.rate_limit_exempt, config.user_limit_exempt

    async def check(self, request: web.Request) -> Decision | None:
        """The tightest decision that applies, or None when the path is not limited."""
        path = request.path
        matched = self.limits.match(path)
        if matched is None or any(prefix_matches(p, path) for p in self.exempt):
            return None
        name, policy = matched
        decisions = [await self.limiter.take(f"{name}:ip:{request[CLIENT_IP]}", policy)]
        if decisions[0].allowed and not any(prefix_matches(p, path) for p in self.user_exempt):
            identity = await identify(request)
            if identity is not None:
                decisions.append(await self.limiter.take(f"{name}:user:{identity.user_id}", policy))
        denied = [d for d in decisions if not d.allowed]
        if denied:
            self.rejected.labels(policy=name, scope="ip" if len(decisions) == 1 else "user").inc()
            return denied[0]
        return min(decisions, key=lambda d: d.remaining)


LIMITER: web.AppKey[Limiter] = web.AppKey("limiter", Limiter)


@web.middleware
async def rate_limit(request: web.Request, handler: Handler) -> web.StreamResponse:
    decision = await request.app[LIMITER].check(request)
    if decision is None:
        return await handler(request)
    if not decision.allowed:
        raise RateLimited(headers=decision.headers())
    try:
        response = await handler(request)
    except AppError as exc:
        exc.headers = {**decision.headers(), **exc.headers}
        raise
    if not response.prepared:
        response.headers.update(decision.headers())
    return response


Networks = list[ipaddress.IPv4Network | ipaddress.IPv6Network]


def client_ip(request: web.Request, trusted: Networks) -> str:
    """The peer address, or, when the peer is a trusted proxy, the last untrusted address it saw."""
    peer = request.remote or "unknown"
    chain = [a.strip() for v in request.headers.getall("X-Forwarded-For", []) for a in v.split(",")]
    for address in reversed([*chain, peer]):
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return address if address == peer else peer
        if not any(ip in net for net in trusted):
            return address
    return peer


@web.middleware
async def client_address(request: web.Request, handler: Handler) -> web.StreamResponse:
    request[CLIENT_IP] = client_ip(request, request.app[TRUSTED])
    return await handler(request)


TRUSTED: web.AppKey[Networks] = web.AppKey("trusted", list)


def limiter_ctx(config: Config) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        registry = app[METRICS].registry
        fallbacks = Counter("gateway_rate_limit_fallback_total",
                            "Rate-limit decisions made locally because Redis was unreachable",
                            registry=registry)
        rejected = Counter("gateway_rate_limit_rejections_total", "Requests refused with 429",
                           ["policy", "scope"], registry=registry)
        client = limiter_client(config.redis_url)
        limiter = FallbackLimiter(
            RedisTokenBucketLimiter(client, prefix=f"{config.redis_prefix}ratelimit:"),
            LocalTokenBucketLimiter(), counter=fallbacks)
        app[LIMITER] = Limiter(limiter, Limits.parse(config.rate_limits), config, rejected)
        yield
        await client.aclose()

    return ctx
