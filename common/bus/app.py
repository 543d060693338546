"""aiohttp wiring: cleanup contexts that open the bus, the outbox relay and consumers with the app
and drain them on shutdown, typed `AppKey`s for the objects, and the health checks of each."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import redis.asyncio as aioredis
import structlog
from aiohttp import web
from prometheus_client import CollectorRegistry

from common.bus.connection import BrokerUnavailableError, BusConnection
from common.bus.consumer import Consumer
from common.bus.metrics import BusMetrics
from common.bus.outbox import OutboxRelay
from common.bus.publisher import Publisher
from common.bus.topology import TopologyMismatch
from common.db import POOL

log = structlog.get_logger(__name__)

CleanupContext = Callable[[web.Application], AsyncIterator[None]]
HealthCheck = Callable[[], Awaitable[None]]

BUS: web.AppKey[BusConnection] = web.AppKey("bus", BusConnection)
PUBLISHER: web.AppKey[Publisher] = web.AppKey("bus_publisher", Publisher)
RELAY: web.AppKey[OutboxRelay] = web.AppKey("outbox_relay", OutboxRelay)
CONSUMERS: web.AppKey[dict[str, Consumer]] = web.AppKey("bus_consumers", dict)
BUS_METRICS: web.AppKey[BusMetrics] = web.AppKey("bus_metrics", BusMetrics)


def bus_ctx(url: str, *, name: str, registry: CollectorRegistry | None = None,
            timeout: float = 10.0, require_broker: bool = False) -> CleanupContext:
    """Open the broker connection (and its publisher) with the app; close it last.

    The service starts even when the broker is down (`require_broker=False`): the outbox keeps
    events, consumers subscribe once it is back, and /health reports it meanwhile. It does not
    start when the broker has an exchange with other arguments (`TopologyMismatch`).
    """

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        metrics = BusMetrics(registry)
        bus = BusConnection(url, name=name, timeout=timeout, metrics=metrics)
        await bus.start()
        try:
            await bus.wait_connected()
        except TopologyMismatch:
            await bus.close()
            raise
        except BrokerUnavailableError:
            if require_broker:
                await bus.close()
                raise
            log.warning("broker_unavailable_at_startup", bus=name)
        publisher = Publisher(bus)
        app[BUS_METRICS], app[BUS], app[PUBLISHER] = metrics, bus, publisher
        app[CONSUMERS] = {}
        yield
        await publisher.close()
        await bus.close()

    return ctx


def relay_ctx(*, batch_size: int = 100, poll_interval: float = 5.0,
              stall_after: float = 120.0) -> CleanupContext:
    """Run the outbox relay on the app's pool (`common.db.POOL`); add it after `bus_ctx`."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        relay = OutboxRelay(app[POOL], app[PUBLISHER], batch_size=batch_size,
                            poll_interval=poll_interval, stall_after=stall_after,
                            metrics=app[BUS_METRICS])
        app[RELAY] = relay
        await relay.start()
        yield
        await relay.stop()

    return ctx


def consumer_ctx(consumer: Consumer, *,
                 redis: web.AppKey[aioredis.Redis] | None = None,
                 redis_prefix: str = "") -> CleanupContext:
    """Start `consumer` with the app (after `bus_ctx`, the pool and Redis); drain it on shutdown.

    The app does not start when the consumer's handlers and bindings disagree (`TopologyError`)
    or the broker has its queue with other arguments (`TopologyMismatch`). It gets the app's pool
    when `common.db.POOL` is set, and the Redis client stored under `redis`. Shutdown runs
    cleanup contexts in reverse, so consumers drain before the relay, the bus and the pool close.
    """

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        consumer.metrics = app[BUS_METRICS]
        await consumer.start(app[BUS], pool=app.get(POOL),
                             redis=app[redis] if redis is not None else None,
                             redis_prefix=redis_prefix)
        app[CONSUMERS][consumer.name] = consumer
        yield
        await consumer.stop()

    return ctx


def health_checks(app: web.Application) -> dict[str, HealthCheck]:
    """Name → check (raises when unhealthy) for every bus object on the app, for /health."""
    checks: dict[str, HealthCheck] = {}
    if BUS in app:
        checks["broker"] = app[BUS].ping
    if RELAY in app:
        checks["outbox"] = app[RELAY].check
    for name, consumer in app.get(CONSUMERS, {}).items():
        checks[f"consumer:{name}"] = consumer.check
    return checks
