"""The base of every service's app (middlewares, health, metrics, OpenAPI) and its entry point."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import aiohttp
import uvloop
from aiohttp import web

from common import auth
from common.config import BaseConfig, ConfigError, load_config
from common.http import health, middleware
from common.http.metrics import METRICS, HttpMetrics, metrics_view
from common.http.openapi import build_openapi
from common.logging import configure_logging

OPENAPI_INFO: web.AppKey[dict[str, Any]] = web.AppKey("openapi_info", dict)


def service_app(config: BaseConfig, *, title: str, description: str = "") -> web.Application:
    """An app with the shared middlewares and the `/health*`, `/metrics`, `/openapi.json` routes.
    The service adds its routes, its cleanup contexts and its health checks."""
    app = web.Application(
        middlewares=[middleware.request_context, middleware.metrics, middleware.errors],
        client_max_size=config.max_body_bytes,
    )
    app[METRICS] = HttpMetrics(config.service)
    app[health.HEALTH] = health.Health(config.service)
    app[auth.INTERNAL_TOKENS] = config.internal_tokens
    app[OPENAPI_INFO] = {"title": title, "description": description}
    app.router.add_get("/health", health.health_view)
    app.router.add_get("/health/live", health.live_view)
    app.router.add_get("/health/ready", health.ready_view)
    app.router.add_get("/metrics", metrics_view)
    app.router.add_get("/openapi.json", openapi_view)
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


def verifier_ctx(config: BaseConfig) -> Callable[[web.Application], AsyncIterator[None]]:
    """Token verification from the public key file, or from the JWKS URL over a pooled session."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        async with aiohttp.ClientSession() as session:
            app[auth.VERIFIER] = auth.verifier_from_config(
                config.jwt_public_key_file, config.jwks_url, config.jwt_issuer,
                config.jwt_audience, session)
            yield

    return ctx


C = TypeVar("C", bound=BaseConfig)


def run_service(config_cls: type[C], create_app: Callable[[C], web.Application]) -> None:
    """`python -m <service>`: validated config, logging, uvloop, graceful shutdown on SIGTERM."""
    try:
        config = load_config(config_cls)
    except ConfigError as exc:
        print(f"{config_cls.service}: {exc}", file=sys.stderr)  # noqa: T201 - logging is not set up yet
        raise SystemExit(2) from None
    configure_logging(config.service, level=config.log_level, fmt=config.log_format,
                      logstash_host=config.logstash_host, logstash_port=config.logstash_port)
    web.run_app(create_app(config), host=config.host, port=config.port, access_log=None,
                shutdown_timeout=config.shutdown_timeout, print=None,
                loop=uvloop.new_event_loop())
