"""Builds the stand-in's app: `create_app(config)` does no I/O; the webhook deliveries' HTTP
session opens in a cleanup context, and closing it drops the deliveries still waiting."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from common.http import service_app
from standins.stripe.app_keys import ACCOUNT, DELIVERIES, ENDPOINTS, IDEMPOTENCY
from standins.stripe.config import Config
from standins.stripe.deliveries import Deliveries, Policy
from standins.stripe.events import EventLog
from standins.stripe.idempotency import IdempotencyStore
from standins.stripe.middleware import stripe_api
from standins.stripe.routes import setup_routes
from standins.stripe.state import Account
from standins.stripe.webhook_endpoints import Endpoints


def create_app(config: Config) -> web.Application:
    app = service_app(config, title="Stripe stand-in", middlewares=[stripe_api],
                      description="A local emulator of the part of Stripe's API tourbook calls.")
    endpoints = Endpoints()
    for url in config.webhook_url:
        endpoints.add(url, ["*"], secret=config.webhook_secret,
                      description="from STRIPE_STANDIN_WEBHOOK_URL")
    deliveries = Deliveries(endpoints, Policy(
        attempts=config.webhook_attempts, backoff=config.webhook_backoff,
        backoff_max=config.webhook_backoff_max, timeout=config.webhook_timeout))
    app[ENDPOINTS] = endpoints
    app[DELIVERIES] = deliveries
    app[ACCOUNT] = Account(EventLog(config.api_version, deliver=deliveries.dispatch))
    app[IDEMPOTENCY] = IdempotencyStore(config.idempotency_ttl)
    app.cleanup_ctx.append(_deliveries_ctx)
    setup_routes(app)
    return app


async def _deliveries_ctx(app: web.Application) -> AsyncIterator[None]:
    await app[DELIVERIES].open()
    yield
    await app[DELIVERIES].close()
