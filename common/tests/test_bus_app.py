"""The aiohttp wiring: a service adds the pool, the bus, the relay and its consumer as cleanup
contexts; each reports itself in /health; the consumer is built from the app (its handlers use
what earlier contexts made); an event written to the outbox in a request's transaction reaches it;
shutdown drains and closes everything."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import redis.asyncio as aioredis
from aiohttp import web
from prometheus_client import CollectorRegistry

from common.bus import (
    BUS,
    BUS_METRICS,
    BUS_MIGRATIONS,
    CONSUMERS,
    PUBLISHER,
    RELAY,
    Consumer,
    Event,
    HandlerContext,
    QueueSpec,
    add_event,
    bus_ctx,
    consumer_ctx,
    relay_ctx,
)
from common.db import POOL, migrate, pool_ctx
from common.http.health import HEALTH, Health
from common.testing import eventually

REDIS: web.AppKey[aioredis.Redis] = web.AppKey("redis", aioredis.Redis)
OUTBOX: web.AppKey[list[str]] = web.AppKey("outbox", list)


def redis_ctx(url: str) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        app[REDIS] = aioredis.from_url(url)
        yield
        await app[REDIS].aclose()

    return ctx


def mailbox_ctx() -> Callable[[web.Application], AsyncIterator[None]]:
    """What a service opens before its consumer: here, where the e-mails go."""
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        app[OUTBOX] = []
        yield

    return ctx


def build_consumer(spec: QueueSpec, topic: str) -> Callable[[web.Application], Consumer]:
    def build(app: web.Application) -> Consumer:
        consumer = Consumer(spec, name="svc")
        mails = app[OUTBOX]

        @consumer.handler(f"{topic}.booked", key=lambda e: e.data["departure"], idempotent="db")
        async def booked(event: Event, ctx: HandlerContext) -> None:
            await ctx.conn.execute("CREATE TABLE IF NOT EXISTS seen (id text)")
            await ctx.conn.execute("INSERT INTO seen VALUES ($1)", event.data["departure"])
            await add_event(ctx.conn, Event.new(f"{topic}.mail", {"to": "ana@example.com"}))

        @consumer.handler(f"{topic}.mail", idempotent="redis")
        async def mail(event: Event, ctx: HandlerContext) -> None:
            mails.append(event.data["to"])

        return consumer

    return build


async def test_an_app_publishes_through_its_outbox_and_consumes_with_both_guards(
        *, database_url: str, amqp_url: str, redis_url: str, redis_prefix: str, topic: str,
        spec: QueueSpec) -> None:
    await migrate(database_url, [BUS_MIGRATIONS])
    registry = CollectorRegistry()
    app = web.Application()
    app[HEALTH] = Health("svc")
    app.cleanup_ctx.extend([
        pool_ctx(database_url),
        redis_ctx(redis_url),
        bus_ctx(amqp_url, name="svc", registry=registry, require_broker=True),
        relay_ctx(poll_interval=60),
        mailbox_ctx(),
        consumer_ctx(build_consumer(spec, topic), redis=REDIS, redis_prefix=redis_prefix),
    ])
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        consumer = app[CONSUMERS]["svc"]
        assert consumer.metrics is app[BUS_METRICS]
        await eventually(lambda: consumer.is_consuming)
        # Each context reported what it opened; only the database decides readiness.
        assert {name: critical for name, (_, critical) in app[HEALTH].checks.items()} == {
            "database": True, "broker": False, "outbox": False, "consumer:svc": False}
        healthy, report = await app[HEALTH].report()
        assert healthy, report

        async with app[POOL].acquire() as conn, conn.transaction():
            await add_event(conn, Event.new(f"{topic}.booked", {"departure": "d-7"}))

        # booked (db guard) writes its effect and the next event in one transaction, the relay
        # publishes that one, and mail (redis guard) sends it.
        await eventually(lambda: app[OUTBOX] == ["ana@example.com"])
        assert await app[POOL].fetchval("SELECT count(*) FROM seen") == 1
        # Counters move just after the broker's confirm or the ack, which may trail the effect.
        await eventually(lambda: registry.get_sample_value(
            "events_published_total", {"routing_key": f"{topic}.mail"}) == 1)
        await eventually(lambda: registry.get_sample_value("events_consumed_total", {
            "consumer": "svc", "routing_key": f"{topic}.booked", "outcome": "handled"}) == 1)
        await eventually(lambda: registry.get_sample_value("outbox_backlog") == 0)
        assert app[PUBLISHER] is not None and app[RELAY] is not None
        bus = app[BUS]
    finally:
        await runner.cleanup()

    assert not consumer.is_consuming
    assert not bus.is_connected
