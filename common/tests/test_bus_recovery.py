"""Recovery by itself: consumers re-subscribe and publishers publish again after the broker drops
every connection, and after a broker restart (with an event committed during the outage)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable

import asyncpg
import pytest

from common.bus import (
    BUS_MIGRATIONS,
    BusConnection,
    Consumer,
    Event,
    HandlerContext,
    OutboxRelay,
    Publisher,
    QueueSpec,
    add_event,
)
from common.bus.backoff import Backoff
from common.db import create_pool, migrate
from common.testing import eventually
from ops import infra


@pytest.fixture
def topic() -> str:
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture
def spec(topic: str) -> QueueSpec:
    return QueueSpec(f"test.{topic}", (f"{topic}.*",), max_attempts=3, retry_delays_ms=(20, 40))


@pytest.fixture
async def bus(amqp_url: str, spec: QueueSpec) -> AsyncIterator[BusConnection]:
    # The test queue is part of the declared topology, as a service's queues are: it exists
    # again right after a reconnect, before the consumer has re-subscribed.
    bus = BusConnection(amqp_url, name="test-recovery", topology=(spec,), timeout=3,
                        backoff=Backoff(0.1, 0.5))
    await bus.start()
    await bus.wait_connected()
    yield bus
    await bus.close()


def connects(bus: BusConnection) -> float:
    return bus.metrics.registry.get_sample_value("bus_connects_total") or 0.0


async def rabbitmqctl(*args: str) -> str:
    return await asyncio.to_thread(infra.rabbitmqctl, *args)


async def test_consumers_and_publishers_resume_after_the_broker_closes_all_connections(
        *, bus: BusConnection, spec: QueueSpec, topic: str, amqp_vhost: str) -> None:
    consumer = Consumer(spec)
    seen: list[int] = []

    @consumer.handler(f"{topic}.ping")
    async def ping(event: Event, ctx: HandlerContext) -> None:
        seen.append(event.data["n"])

    await consumer.start(bus)
    publisher = Publisher(bus)
    try:
        await eventually(lambda: consumer.is_consuming)
        await publisher.publish(Event.new(f"{topic}.ping", {"n": 1}))
        await eventually(lambda: seen == [1])

        await rabbitmqctl("close_all_connections", "-p", amqp_vhost, "test")

        await eventually(lambda: connects(bus) == 2 and consumer.is_consuming,
                         message="reconnected and re-subscribed")
        await publisher.publish(Event.new(f"{topic}.ping", {"n": 2}))
        await eventually(lambda: seen == [1, 2])
    finally:
        await consumer.stop()


@pytest.fixture
def database_url(make_database: Callable[[str], str]) -> str:
    return make_database(f"bus_{uuid.uuid4().hex[:10]}")  # sync: it runs its own event loop


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    url = database_url
    await migrate(url, [BUS_MIGRATIONS])
    pool = await create_pool(url, max_size=4)
    yield pool
    await pool.close()


@pytest.mark.broker_restart
async def test_everything_resumes_after_a_broker_restart(
        *, bus: BusConnection, spec: QueueSpec, topic: str, pool: asyncpg.Pool) -> None:
    consumer = Consumer(spec)
    seen: list[int] = []

    @consumer.handler(f"{topic}.ping")
    async def ping(event: Event, ctx: HandlerContext) -> None:
        seen.append(event.data["n"])

    relay = OutboxRelay(pool, Publisher(bus), poll_interval=0.5, backoff=Backoff(0.1, 0.5))
    await consumer.start(bus)
    await relay.start()
    try:
        await eventually(lambda: consumer.is_consuming)
        await commit(pool, Event.new(f"{topic}.ping", {"n": 1}))
        await eventually(lambda: seen == [1])

        try:
            await rabbitmqctl("stop_app")
            await eventually(lambda: not bus.is_connected, message="broker gone")
            await commit(pool, Event.new(f"{topic}.ping", {"n": 2}))
        finally:
            await rabbitmqctl("start_app")
        deadline = time.monotonic() + 30
        await rabbitmqctl("await_startup")

        await eventually(lambda: seen == [1, 2], timeout=max(1.0, deadline - time.monotonic()),
                         message="the event committed during the outage, handled")
        assert consumer.is_consuming
    finally:
        await relay.stop()
        await consumer.stop()


async def commit(pool: asyncpg.Pool, event: Event) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await add_event(conn, event)
