"""aiohttp wiring: cleanup contexts that open the bus, the outbox relay and a consumer with the app,
report each in `/health` and drain them on shutdown, and typed `AppKey`s for the objects."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

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
from common.http.health import add_check
from common.wiring import CleanupContext

log = structlog.get_logger(__name__)

BUS: web.AppKey[BusConnection] = web.AppKey("bus", BusConnection)
PUBLISHER: web.AppKey[Publisher] = web.AppKey("bus_publisher", Publisher)
RELAY: web.AppKey[OutboxRelay] = web.AppKey("outbox_relay", OutboxRelay)
CONSUMERS: web.AppKey[dict[str, Consumer]] = web.AppKey("bus_consumers", dict)
BUS_METRICS: web.AppKey[BusMetrics] = web.AppKey("bus_metrics", BusMetrics)

ConsumerFactory = Callable[[web.Application], Consumer]


def bus_ctx(url: str, *, name: str, registry: CollectorRegistry | None = None,
            timeout: float = 10.0, require_broker: bool = False,
            critical: bool = False) -> CleanupContext:
    """Open the broker connection (and its publisher) with the app, report it as `broker` in
    `/health`; close it last.

    The service starts even when the broker is down (`require_broker=False`): the outbox keeps
    events, consumers subscribe once it is back, and /health reports it meanwhile (without
    deciding readiness, unless `critical`). It does not start when the broker has an exchange
    with other arguments (`TopologyMismatch`).
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
        add_check(app, "broker", bus.ping, critical=critical)
        yield
        await publisher.close()
        await bus.close()

    return ctx


def relay_ctx(*, batch_size: int = 100, poll_interval: float = 5.0, stall_after: float = 120.0,
              critical: bool = False) -> CleanupContext:
    """Run the outbox relay on the app's pool (`common.db.POOL`), reported as `outbox` in
    `/health`; add it after `bus_ctx`."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        relay = OutboxRelay(app[POOL], app[PUBLISHER], batch_size=batch_size,
                            poll_interval=poll_interval, stall_after=stall_after,
                            metrics=app[BUS_METRICS])
        app[RELAY] = relay
        add_check(app, "outbox", relay.check, critical=critical)
        await relay.start()
        yield
        await relay.stop()

    return ctx


def consumer_ctx(build: ConsumerFactory, *, redis: web.AppKey[aioredis.Redis] | None = None,
                 redis_prefix: str = "", critical: bool = False) -> CleanupContext:
    """Build the consumer with `build(app)` (its handlers may use what earlier contexts put on
    the app), start it, report it as `consumer:<name>` in `/health`; drain it on shutdown.

    Add it after `bus_ctx`, the pool, Redis and whatever its handlers use. The app does not
    start when the consumer's handlers and bindings disagree (`TopologyError`) or the broker has
    its queue with other arguments (`TopologyMismatch`). The consumer gets the app's pool when
    `common.db.POOL` is set, and the Redis client stored under `redis`. Shutdown runs cleanup
    contexts in reverse, so consumers drain before the relay, the bus and the pool close.
    """

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        consumer = build(app)
        consumer.metrics = app[BUS_METRICS]
        await consumer.start(app[BUS], pool=app.get(POOL),
                             redis=app[redis] if redis is not None else None,
                             redis_prefix=redis_prefix)
        app[CONSUMERS][consumer.name] = consumer
        add_check(app, f"consumer:{consumer.name}", consumer.check, critical=critical)
        yield
        await consumer.stop()

    return ctx
