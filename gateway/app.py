"""Builds the gateway: `create_app(config)` does no I/O; sessions and Redis open in cleanup
contexts."""

from __future__ import annotations

import ipaddress
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web
from prometheus_client import Gauge

from common.http import service_app, verifier_ctx
from common.http.health import HEALTH, Health
from common.http.metrics import METRICS
from common.http.middleware import MAX_BODY_BYTES
from common.http.server import AUTO_DECOMPRESS
from gateway import cors, docs, limits, websocket
from gateway.access import ACCESS, Access
from gateway.config import Config
from gateway.methods import METHODS, UpstreamMethods, methods_ctx
from gateway.routes import setup_routes
from gateway.table import ROUTES, Limits, RouteTable, Rules
from gateway.upstreams import UPSTREAMS, Upstream, upstreams_ctx
from gateway.views import export_breaker_states


def create_app(config: Config) -> web.Application:
    app = service_app(config, title="tourbook gateway",
                      description="The single entry point of tourbook.",
                      middlewares=[limits.client_address, cors.preflight, limits.rate_limit],
                      openapi=docs.openapi_view)
    public = Rules.parse(config.public_routes)
    app[MAX_BODY_BYTES] = config.max_upload_bytes
    app[AUTO_DECOMPRESS] = False  # the proxy decodes request bodies itself (gateway.bodies)
    app[HEALTH] = Health(config.service, timeout=config.health_timeout, section="services")
    app[ROUTES] = RouteTable.parse(config.routes, config.upstream_urls(), config.default_timeout)
    app[ACCESS] = Access(public, Rules.parse(config.manager_routes),
                         Rules.parse(config.admin_routes))
    app[cors.ORIGINS] = frozenset(config.cors_origins)
    app[limits.TRUSTED] = [ipaddress.ip_network(n, strict=False) for n in config.trusted_proxies]
    app[METHODS] = UpstreamMethods()
    app.cleanup_ctx.extend([verifier_ctx(config), upstreams_ctx(config),
                            limits.limiter_ctx(config, Limits.parse(config.rate_limits), public),
                            _observe_ctx(), methods_ctx()])
    app.on_response_prepare.extend([cors.add_headers, limits.add_headers])
    websocket.setup(app)
    setup_routes(app)
    return app


def _observe_ctx() -> Callable[[web.Application], AsyncIterator[None]]:
    """Each upstream's `/health` in the gateway's, and breaker states as a metric."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        upstreams = app[UPSTREAMS]
        for upstream in upstreams.values():
            app[HEALTH].add(upstream.name, _health_check(upstream), critical=False)
        gauge = Gauge("gateway_circuit_breaker_state", "0 closed, 1 half-open, 2 open",
                      ["upstream"], registry=app[METRICS].registry)
        export_breaker_states(upstreams, gauge)
        yield

    return ctx


def _health_check(upstream: Upstream) -> Callable[[], Awaitable[None]]:
    async def check() -> None:
        async with upstream.session.get(upstream.url + "/health") as resp:
            if resp.status != 200:
                raise RuntimeError(f"HTTP {resp.status}")

    return check
