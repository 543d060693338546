"""Builds the catalog app: `create_app(config)` does no I/O; resources open in cleanup contexts,
in the order they depend on each other (and close in reverse: the consumer drains and the sweeper
stops before the relay, the bus and the pool close). Only the database decides readiness."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from catalog.app_keys import CONFIG, SEAT_METRICS, SWEEPER
from catalog.config import Config
from catalog.consumers import build_consumer
from catalog.metrics import SeatMetrics
from catalog.routes import setup_routes
from catalog.sweeper import HoldSweeper
from common.bus import bus_ctx, consumer_ctx, relay_ctx
from common.db import POOL, pool_ctx
from common.http import service_app, verifier_ctx
from common.http.health import add_check
from common.http.metrics import METRICS
from common.wiring import CleanupContext


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
        consumer_ctx(build_consumer),
        _sweeper_ctx(config),
    ])
    setup_routes(app)
    return app


def _sweeper_ctx(config: Config) -> CleanupContext:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        sweeper = HoldSweeper(app[POOL], app[SEAT_METRICS], grace=config.hold_grace,
                              interval=config.sweep_interval)
        app[SWEEPER] = sweeper
        add_check(app, "sweeper", sweeper.check, critical=False)
        sweeper.start()
        yield
        await sweeper.stop()

    return ctx

