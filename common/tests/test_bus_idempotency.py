"""Effects happen once: a duplicate delivery changes nothing, under the database guard
(processed_events in the handler's transaction) and under the Redis guard (processed:<eventId>)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis

from common.bus import BUS_MIGRATIONS, BusConnection, Consumer, Event, HandlerContext, Publisher
from common.bus.backoff import Backoff
from common.bus.topology import QueueSpec
from common.db import create_pool, migrate
from common.testing import eventually


@pytest.fixture
def database_url(make_database: Callable[[str], str]) -> str:
    return make_database(f"bus_{uuid.uuid4().hex[:10]}")


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    await migrate(database_url, [BUS_MIGRATIONS])
    pool = await create_pool(database_url, max_size=4)
    await pool.execute("CREATE TABLE seats (event_id uuid, departure text, seats int)")
    yield pool
    await pool.close()


@pytest.fixture
async def bus(amqp_url: str) -> AsyncIterator[BusConnection]:
    bus = BusConnection(amqp_url, name="test-idempotency", topology=(), timeout=5,
                        backoff=Backoff(0.05, 0.3))
    await bus.start()
    await bus.wait_connected()
    yield bus
    await bus.close()


@pytest.fixture
def topic() -> str:
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture
def spec(topic: str) -> QueueSpec:
    return QueueSpec(f"test.{topic}", (f"{topic}.*",), max_attempts=3, retry_delays_ms=(20, 40))


@pytest.fixture
async def stop_after() -> AsyncIterator[list[Consumer]]:
    consumers: list[Consumer] = []
    yield consumers
    for consumer in consumers:
        await consumer.stop()


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
        stop_after: list[Consumer]) -> None:
    consumer = Consumer(spec, name="catalog")
    stop_after.append(consumer)

    @consumer.handler(f"{topic}.booked", key=lambda e: e.data["departure"], idempotent="db")
    async def booked(event: Event, ctx: HandlerContext) -> None:
        await ctx.conn.execute("INSERT INTO seats VALUES ($1, $2, $3)", uuid.UUID(event.event_id),
                               event.data["departure"], event.data["seats"])

    await consumer.start(bus, pool=pool)
    await eventually(lambda: consumer.is_consuming)
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
        stop_after: list[Consumer]) -> None:
    consumer = Consumer(spec, name="catalog")
    stop_after.append(consumer)

    @consumer.handler(f"{topic}.booked", idempotent="db")
    async def booked(event: Event, ctx: HandlerContext) -> None:
        await ctx.conn.execute("INSERT INTO seats VALUES ($1, 'd', 1)", uuid.UUID(event.event_id))
        if ctx.attempt == 1:
            raise RuntimeError("crash after the write, before the commit")

    await consumer.start(bus, pool=pool)
    await eventually(lambda: consumer.is_consuming)
    await Publisher(bus).publish(Event.new(f"{topic}.booked", {}))

    await eventually(lambda: outcomes(consumer, f"{topic}.booked")["handled"] == 1)
    assert await pool.fetchval("SELECT count(*) FROM seats") == 1


async def test_a_duplicate_delivery_sends_one_email_under_the_redis_guard(
        *, bus: BusConnection, redis: aioredis.Redis, redis_prefix: str, spec: QueueSpec,
        topic: str, stop_after: list[Consumer]) -> None:
    consumer = Consumer(spec, name="notify")
    stop_after.append(consumer)
    sent: list[Any] = []

    @consumer.handler(f"{topic}.confirmed", idempotent="redis")
    async def confirmed(event: Event, ctx: HandlerContext) -> None:
        sent.append(event.data["to"])

    await consumer.start(bus, redis=redis, redis_prefix=redis_prefix)
    await eventually(lambda: consumer.is_consuming)
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
        *, bus: BusConnection, redis: aioredis.Redis, redis_prefix: str, spec: QueueSpec,
        topic: str, stop_after: list[Consumer]) -> None:
    consumer = Consumer(spec, name="notify")
    stop_after.append(consumer)
    sent: list[int] = []

    @consumer.handler(f"{topic}.confirmed", idempotent="redis")
    async def confirmed(event: Event, ctx: HandlerContext) -> None:
        if ctx.attempt == 1:
            raise ConnectionError("SMTP unreachable")
        sent.append(ctx.attempt)

    await consumer.start(bus, redis=redis, redis_prefix=redis_prefix)
    await eventually(lambda: consumer.is_consuming)
    await Publisher(bus).publish(Event.new(f"{topic}.confirmed", {}))

    await eventually(lambda: outcomes(consumer, f"{topic}.confirmed") ==
                     {"handled": 1, "duplicate": 0})
    assert sent == [2]


async def test_a_guard_without_its_store_is_refused_at_start(
        *, bus: BusConnection, spec: QueueSpec) -> None:
    consumer = Consumer(spec)

    @consumer.handler("a.b", idempotent="db")
    async def needs_db(event: Event, ctx: HandlerContext) -> None:
        raise AssertionError("never runs")

    with pytest.raises(ValueError, match="database pool"):
        await consumer.start(bus)


async def test_a_claim_left_by_a_crashed_delivery_delays_the_effect_until_its_lease_expires(
        *, bus: BusConnection, redis: aioredis.Redis, redis_prefix: str, spec: QueueSpec,
        topic: str, stop_after: list[Consumer]) -> None:
    consumer = Consumer(spec, name="notify")
    stop_after.append(consumer)
    sent: list[int] = []

    @consumer.handler(f"{topic}.confirmed", idempotent="redis")
    async def confirmed(event: Event, ctx: HandlerContext) -> None:
        sent.append(ctx.attempt)

    await consumer.start(bus, redis=redis, redis_prefix=redis_prefix)
    await eventually(lambda: consumer.is_consuming)
    event = Event.new(f"{topic}.confirmed", {})
    # What a process that died mid-e-mail leaves behind: its lease, not "done".
    await redis.set(f"{redis_prefix}notify:processed:{event.event_id}", "pending:dead", px=400)

    await Publisher(bus).publish(event)

    await eventually(lambda: outcomes(consumer, f"{topic}.confirmed")["handled"] == 1)
    assert sent == [1]  # waiting for the lease spent no attempt, and nothing was dead-lettered
