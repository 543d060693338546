"""Builds the booking app: `create_app(config)` does no I/O; resources open in cleanup contexts.

Shutdown runs the contexts in reverse: the jobs stop, then the consumer drains, then the relay
finishes its batch, then the upstream sessions, the bus and the pool close.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from booking.app_keys import BOOKING_METRICS, BOOKINGS, CATALOG, CHANGES, JOBS, PAYMENTS
from booking.bookings import Bookings
from booking.catalog import CatalogClient, catalog_breaker
from booking.changes import Changes
from booking.config import Config
from booking.consumers import build_consumer
from booking.contacts import ContactBook
from booking.jobs import Jobs, jobs_ctx
from booking.metrics import BookingMetrics
from booking.payments import PaymentsClient, payments_breaker
from booking.routes import setup_routes
from common import db
from common.bus import bus_ctx, consumer_ctx, relay_ctx
from common.http import service_app, verifier_ctx
from common.http.health import add_check
from common.http.metrics import METRICS
from common.wiring import CleanupContext


def create_app(config: Config) -> web.Application:
    app = service_app(config, title="tourbook booking",
                      description="Bookings, their state machine, seat holds and jobs.",
                      middlewares=[db.database_unavailable])
    metrics = BookingMetrics(app[METRICS].registry)
    app[BOOKING_METRICS] = metrics
    app.cleanup_ctx.extend([
        db.pool_ctx(config.database_url),
        verifier_ctx(config),
        bus_ctx(config.amqp_url, name="booking", registry=app[METRICS].registry),
        relay_ctx(),
        _bookings_ctx(config),
        consumer_ctx(build_consumer),
        jobs_ctx(config, JOBS),
    ])
    setup_routes(app)
    return app


def _bookings_ctx(config: Config) -> CleanupContext:
    """One pooled session per upstream, with the catalog breaker, and the objects using them."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        token = config.internal_tokens[0]
        catalog_timeout = aiohttp.ClientTimeout(total=config.catalog_timeout)
        payments_timeout = aiohttp.ClientTimeout(total=config.payments_timeout)
        async with aiohttp.ClientSession(timeout=catalog_timeout) as catalog_session, \
                aiohttp.ClientSession(timeout=payments_timeout) as payments_session, \
                aiohttp.ClientSession() as auth_session:
            catalog = CatalogClient(catalog_session, config.catalog_url, token,
                                    catalog_breaker(config.catalog_timeout,
                                                    config.breaker_reset_timeout))
            payments = PaymentsClient(payments_session, config.payments_url, token,
                                      payments_breaker(config.payments_timeout,
                                                       config.breaker_reset_timeout))
            contacts = ContactBook(auth_session, config.auth_url, token, config.auth_timeout)
            pool, metrics = app[db.POOL], app[BOOKING_METRICS]
            app[CATALOG], app[PAYMENTS] = catalog, payments
            add_check(app, "catalog", catalog.check, critical=False)
            add_check(app, "payments", payments.check, critical=False)
            app[BOOKINGS] = Bookings(pool, catalog, contacts, metrics, config)
            app[CHANGES] = Changes(pool, catalog, payments, metrics, config)
            app[JOBS] = Jobs(pool, catalog, payments, metrics, config)
            yield

    return ctx

