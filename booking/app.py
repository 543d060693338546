"""Builds the booking app: `create_app(config)` does no I/O; resources open in cleanup contexts
and close in reverse (the jobs, the consumer, the upstream sessions, the relay, the bus, the pool).
Only the database decides readiness: without the broker, bookings wait in the outbox."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from booking import consumers
from booking.app_keys import AUTH, BOOKING_METRICS, BOOKINGS, CATALOG, CHANGES, JOBS, PAYMENTS
from booking.bookings import Bookings
from booking.changes import Changes
from booking.clients import AuthClient, CatalogClient, PaymentsClient
from booking.config import Config
from booking.jobs import Jobs, jobs_ctx
from booking.metrics import BookingMetrics
from booking.routes import setup_routes
from common import db
from common.bus import bus_ctx, consumer_ctx, relay_ctx
from common.http import service_app, verifier_ctx
from common.http.metrics import METRICS
from common.http.upstream import upstream_ctx
from common.wiring import CleanupContext


def create_app(config: Config) -> web.Application:
    app = service_app(config, title="tourbook booking",
                      description="Bookings, their state machine, seat holds and jobs.",
                      middlewares=[db.database_unavailable])
    app[BOOKING_METRICS] = BookingMetrics(app[METRICS].registry)
    app.cleanup_ctx.extend([
        db.pool_ctx(config.database_url),
        verifier_ctx(config),
        bus_ctx(config.amqp_url, name="booking", registry=app[METRICS].registry),
        relay_ctx(),
        upstream_ctx(CATALOG, lambda session: CatalogClient(session, config)),
        upstream_ctx(PAYMENTS, lambda session: PaymentsClient(session, config)),
        # The contact lookup never refuses a booking: its failures are logged, not reported.
        upstream_ctx(AUTH, lambda session: AuthClient(session, config), health=False),
        _bookings_ctx(config),
        consumer_ctx(consumers.build_consumer),
        jobs_ctx(config, JOBS),
    ])
    setup_routes(app)
    return app


def _bookings_ctx(config: Config) -> CleanupContext:
    """The booking rules, on the pool and the upstream clients."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        pool, metrics = app[db.POOL], app[BOOKING_METRICS]
        catalog, payments = app[CATALOG], app[PAYMENTS]
        app[BOOKINGS] = Bookings(pool, catalog, app[AUTH], metrics, config)
        app[CHANGES] = Changes(pool, catalog, payments, metrics, config)
        app[JOBS] = Jobs(pool, catalog, payments, metrics, config)
        yield

    return ctx
