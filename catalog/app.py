"""Builds the catalog app: `create_app(config)` does no I/O; resources open in cleanup contexts,
in the order they depend on each other (and close in reverse: the consumer drains and the sweeper
stops before the relay, the bus and the pool close)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from aiohttp import web

from catalog.app_keys import CONFIG, SEAT_METRICS, SWEEPER
from catalog.config import Config
from catalog.consumers import build_consumer
from catalog.metrics import SeatMetrics
from catalog.routes import setup_routes
from catalog.sweeper import HoldSweeper
from common.bus import bus_ctx, consumer_ctx, health_checks, relay_ctx
from common.db import POOL, ping, pool_ctx
from common.http import service_app, verifier_ctx
from common.http.health import HEALTH
from common.http.metrics import METRICS

CleanupContext = Callable[[web.Application], AsyncIterator[None]]


def create_app(config: Config) -> web.Application:
    app = service_app(config, title="tourbook catalog",
                      description="Tours, departures, categories, destinations and search; the "
                                  "authority on seats.")
    registry = app[METRICS].registry
    metrics = SeatMetrics(registry)
    app[CONFIG], app[SEAT_METRICS] = config, metrics
    app.cleanup_ctx.extend([
        pool_ctx(config.database_url, max_size=config.db_pool_size),
        verifier_ctx(config),
        bus_ctx(config.amqp_url, name="catalog", registry=registry),
        relay_ctx(),
        consumer_ctx(build_consumer(metrics)),
        _sweeper_ctx(config),
        _health_ctx(),
    ])
    # Only the database decides readiness: without the broker, holds and reads still work and
    # their events wait in the outbox.
    app[HEALTH].add("database", lambda: ping(app[POOL]))
    setup_routes(app)
    return app


def _sweeper_ctx(config: Config) -> CleanupContext:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        sweeper = HoldSweeper(app[POOL], app[SEAT_METRICS], grace=config.hold_grace,
                              interval=config.sweep_interval)
        app[SWEEPER] = sweeper
        sweeper.start()
        yield
        await sweeper.stop()

    return ctx


def _health_ctx() -> CleanupContext:
    """The broker, outbox, consumer and sweeper in /health, once they exist."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        for name, check in health_checks(app).items():
            app[HEALTH].add(name, check, critical=False)
        app[HEALTH].add("sweeper", app[SWEEPER].check, critical=False)
        yield

    return ctx
