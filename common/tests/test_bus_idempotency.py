"""Effects happen once: a duplicate delivery changes nothing, under the database guard
(processed_events in the handler's transaction) and under the Redis guard (processed:<eventId>)."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis

from common.bus import BusConnection, Consumer, Event, HandlerContext, Publisher
from common.bus.handlers import Handler
from common.bus.topology import QueueSpec
from common.testing import eventually
from common.tests.support import StartConsumer

StartNotify = Callable[[Handler], Awaitable[Consumer]]


@pytest.fixture
async def pool(pool: asyncpg.Pool) -> asyncpg.Pool:
    """The bus tables, and the `seats` table the catalog's handlers write to."""
    await pool.execute("CREATE TABLE seats (event_id uuid, departure text, seats int)")
    return pool


@pytest.fixture
def start_notify(*, spec: QueueSpec, topic: str, redis: aioredis.Redis, redis_prefix: str,
                 start_consumer: StartConsumer) -> StartNotify:
    """`await start_notify(handler)`: the consumer "notify" runs `handler` for `<topic>.confirmed`
    under the Redis guard."""

    async def start(handler: Handler) -> Consumer:
        consumer = Consumer(spec, name="notify")
        consumer.handler(f"{topic}.confirmed", idempotent="redis")(handler)
        await start_consumer(consumer, redis=redis, redis_prefix=redis_prefix)
        return consumer

    return start


def outcomes(consumer: Consumer, routing_key: str) -> dict[str, float]:
    found = {}
    for outcome in ("handled", "duplicate"):
        value = consumer.metrics.registry.get_sample_value(
            "events_consumed_total",
            {"consumer": consumer.name, "routing_key": routing_key, "outcome": outcome})
        found[outcome] = value or 0.0
    return found


async def test_a_duplicate_delivery_changes_the_database_once(
        *, bus: BusConnection, pool: asyncpg.Pool, spec: QueueSpec, topic: str,
        start_consumer: StartConsumer) -> None:
    consumer = Consumer(spec, name="catalog")

    @consumer.handler(f"{topic}.booked", key=lambda e: e.data["departure"], idempotent="db")
    async def booked(event: Event, ctx: HandlerContext) -> None:
        await ctx.conn.execute("INSERT INTO seats VALUES ($1, $2, $3)", uuid.UUID(event.event_id),
                               event.data["departure"], event.data["seats"])

    await start_consumer(consumer, pool=pool)
    event = Event.new(f"{topic}.booked", {"departure": "d-1", "seats": 2})
    await Publisher(bus).publish(event)
    await Publisher(bus).publish(event)  # the same event id again: a redelivery

    await eventually(lambda: outcomes(consumer, f"{topic}.booked") ==
                     {"handled": 1, "duplicate": 1})
    assert await pool.fetchval("SELECT count(*) FROM seats") == 1
    assert await pool.fetchval(
        "SELECT count(*) FROM processed_events WHERE consumer = 'catalog' AND event_id = $1",
        uuid.UUID(event.event_id)) == 1


async def test_a_failed_attempt_leaves_no_trace_so_the_retry_applies_the_effect_once(
        *, bus: BusConnection, pool: asyncpg.Pool, spec: QueueSpec, topic: str,
        start_consumer: StartConsumer) -> None:
    consumer = Consumer(spec, name="catalog")

    @consumer.handler(f"{topic}.booked", idempotent="db")
    async def booked(event: Event, ctx: HandlerContext) -> None:
        await ctx.conn.execute("INSERT INTO seats VALUES ($1, 'd', 1)", uuid.UUID(event.event_id))
        if ctx.attempt == 1:
            raise RuntimeError("crash after the write, before the commit")

    await start_consumer(consumer, pool=pool)
    await Publisher(bus).publish(Event.new(f"{topic}.booked", {}))

    await eventually(lambda: outcomes(consumer, f"{topic}.booked")["handled"] == 1)
    assert await pool.fetchval("SELECT count(*) FROM seats") == 1


async def test_a_duplicate_delivery_sends_one_email_under_the_redis_guard(
        *, bus: BusConnection, redis: aioredis.Redis, redis_prefix: str, topic: str,
        start_notify: StartNotify) -> None:
    sent: list[Any] = []

    async def confirmed(event: Event, ctx: HandlerContext) -> None:
        sent.append(event.data["to"])

    consumer = await start_notify(confirmed)
    event = Event.new(f"{topic}.confirmed", {"to": "ana@example.com"})
    await Publisher(bus).publish(event)
    await Publisher(bus).publish(event)

    await eventually(lambda: outcomes(consumer, f"{topic}.confirmed") ==
                     {"handled": 1, "duplicate": 1})
    assert sent == ["ana@example.com"]
    key = f"{redis_prefix}notify:processed:{event.event_id}"
    assert await redis.get(key) == b"done"
    assert 86_000 < await redis.ttl(key) <= 86_400


async def test_a_failed_side_effect_releases_its_claim_so_the_retry_runs(
        *, bus: BusConnection, topic: str, start_notify: StartNotify) -> None:
    sent: list[int] = []

    async def confirmed(event: Event, ctx: HandlerContext) -> None:
        if ctx.attempt == 1:
            raise ConnectionError("SMTP unreachable")
        sent.append(ctx.attempt)

    consumer = await start_notify(confirmed)
    await Publisher(bus).publish(Event.new(f"{topic}.confirmed", {}))

    await eventually(lambda: outcomes(consumer, f"{topic}.confirmed") ==
                     {"handled": 1, "duplicate": 0})
    assert sent == [2]


async def test_a_guard_without_its_store_is_refused_at_start(
        *, bus: BusConnection, spec: QueueSpec, topic: str) -> None:
    consumer = Consumer(spec)

    @consumer.handler(f"{topic}.b", idempotent="db")
    async def needs_db(event: Event, ctx: HandlerContext) -> None:
        raise AssertionError("never runs")

    with pytest.raises(ValueError, match="database pool"):
        await consumer.start(bus)


async def test_a_claim_left_by_a_crashed_delivery_delays_the_effect_until_its_lease_expires(
        *, bus: BusConnection, redis: aioredis.Redis, redis_prefix: str, topic: str,
        start_notify: StartNotify) -> None:
    sent: list[int] = []

    async def confirmed(event: Event, ctx: HandlerContext) -> None:
        sent.append(ctx.attempt)

    consumer = await start_notify(confirmed)
    event = Event.new(f"{topic}.confirmed", {})
    # What a process that died mid-e-mail leaves behind: its lease, not "done".
    await redis.set(f"{redis_prefix}notify:processed:{event.event_id}", "pending:dead", px=400)

    await Publisher(bus).publish(event)

    await eventually(lambda: outcomes(consumer, f"{topic}.confirmed")["handled"] == 1)
    assert sent == [1]  # waiting for the lease spent no attempt, and nothing was dead-lettered
