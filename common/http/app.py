"""The base of every service's app (middlewares, health, metrics, OpenAPI) and its entry point."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, TypeVar

import aiohttp
import structlog
import uvloop
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from common import auth, revocation
from common.config import BaseConfig, ConfigError, load_config
from common.http import health, middleware, routing
from common.http.metrics import METRICS, HttpMetrics, metrics_view
from common.http.openapi import build_openapi
from common.http.server import ServiceRunner
from common.logging import configure_logging
from common.wiring import CleanupContext

log = structlog.get_logger("service")

OPENAPI_INFO: web.AppKey[dict[str, Any]] = web.AppKey("openapi_info", dict)


def service_app(config: BaseConfig, *, title: str, description: str = "",
                middlewares: Sequence[Middleware] = (),
                openapi: Handler | None = None) -> web.Application:
    """An app with the shared middlewares and the `/health*`, `/metrics`, `/openapi.json` routes.
    The service adds its routes, its cleanup contexts and its health checks; its own
    `middlewares` run inside the shared ones, so their errors leave in the envelope, and before
    the check of the path's methods (`routing`), so a CORS preflight is answered first. `openapi`
    replaces the generated `/openapi.json` (the gateway serves every service's, merged)."""
    app = web.Application(
        middlewares=[middleware.request_context, middleware.metrics, middleware.errors,
                     middleware.body_limit, *middlewares, routing.allowed_methods],
        client_max_size=config.max_body_bytes,
    )
    app[METRICS] = HttpMetrics(config.service)
    app[health.HEALTH] = health.Health(config.service)
    app[auth.INTERNAL_TOKENS] = config.internal_tokens
    app[middleware.MAX_BODY_BYTES] = config.max_body_bytes
    app[OPENAPI_INFO] = {"title": title, "description": description}
    app.router.add_get("/health", health.health_view)
    app.router.add_get("/health/live", health.live_view)
    app.router.add_get("/health/ready", health.ready_view)
    app.router.add_get("/metrics", metrics_view)
    app.router.add_get("/openapi.json", openapi or openapi_view)
    app.on_startup.append(routing.index_routes)
    app.on_response_prepare.append(middleware.add_request_id)
    app.on_shutdown.append(_start_draining)
    return app


async def _start_draining(app: web.Application) -> None:
    app[health.HEALTH].draining = True


async def openapi_view(request: web.Request) -> web.Response:
    info = request.app[OPENAPI_INFO]
    if "document" not in info:
        info["document"] = build_openapi(request.app, title=info["title"],
                                         description=info["description"])
    return web.json_response(info["document"])


def verifier_ctx(config: BaseConfig) -> CleanupContext:
    """Token verification from the public key file, or from the JWKS URL over a pooled session,
    with the revocation list mirrored from Redis (its health not critical: while Redis is away
    the entries known so far stay in force)."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        key = revocation.stream_key(config.redis_prefix)
        async with aiohttp.ClientSession() as session, \
                revocation.following(config.redis_url, key) as revoked:
            app[revocation.REVOCATIONS] = revoked
            app[health.HEALTH].add("revocations", revoked.check, critical=False)
            app[auth.VERIFIER] = auth.verifier_from_config(
                config.jwt_public_key_file, config.jwks_url, config.jwt_issuer,
                config.jwt_audience, session, jwks_min_refresh=config.jwks_min_refresh,
                revocations=revoked)
            yield

    return ctx


C = TypeVar("C", bound=BaseConfig)


def run_service(config_cls: type[C], create_app: Callable[[C], web.Application]) -> None:
    """`python -m <service>`: validated config (exit 2 naming the bad variable), logging, uvloop,
    and a graceful shutdown on SIGTERM or SIGINT."""
    try:
        config = load_config(config_cls)
    except ConfigError as exc:
        print(f"{config_cls.service}: {exc}", file=sys.stderr)  # noqa: T201 - logging is not set up yet
        raise SystemExit(2) from None
    configure_logging(config.service, level=config.log_level, fmt=config.log_format,
                      logstash_host=config.logstash_host, logstash_port=config.logstash_port)
    try:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(serve(create_app(config), config))
    except Exception:
        log.exception("service_failed")
        raise SystemExit(1) from None


async def serve(app: web.Application, config: BaseConfig) -> None:
    """Serve until SIGTERM/SIGINT, then: readiness turns 503 and, for `drain_delay` seconds (cut
    short by a second signal), new requests are still served while load balancers stop routing
    here; then the listener closes, in-flight requests get `shutdown_timeout` seconds to finish,
    and the cleanup contexts close the app's resources."""
    signals: asyncio.Queue[str] = asyncio.Queue()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, signals.put_nowait, sig.name)
    runner = ServiceRunner(app, access_log=None, shutdown_timeout=config.shutdown_timeout)
    try:
        await runner.setup()
        await web.TCPSite(runner, config.host, config.port).start()
        host, port = runner.addresses[0][:2]
        log.info("service_started", host=host, port=port)
        received = await signals.get()
        app[health.HEALTH].draining = True
        log.info("shutdown_started", signal=received, drainDelay=config.drain_delay)
        if config.drain_delay:
            try:
                async with asyncio.timeout(config.drain_delay):
                    await signals.get()
            except TimeoutError:
                pass
    finally:
        await runner.cleanup()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    log.info("service_stopped")
