"""Recovery by itself: consumers re-subscribe and publishers publish again after the broker drops
every connection, and after a broker restart (with an event committed during the outage)."""

from __future__ import annotations

import asyncio
import time

import asyncpg
import pytest

from common.bus import (
    BusConnection,
    Consumer,
    Event,
    HandlerContext,
    OutboxRelay,
    Publisher,
    QueueSpec,
)
from common.bus.backoff import Backoff
from common.testing import eventually
from common.tests.support import MakeBus, StartConsumer, commit_event, connected
from ops import infra


@pytest.fixture
async def bus(make_bus: MakeBus, spec: QueueSpec) -> BusConnection:
    # The test queue is part of the declared topology, as a service's queues are: it exists
    # again right after a reconnect, before the consumer has re-subscribed.
    return await connected(make_bus(topology=(spec,), timeout=3, backoff=Backoff(0.1, 0.5)))


@pytest.fixture
def pings(spec: QueueSpec, topic: str) -> tuple[Consumer, list[int]]:
    """A consumer of `<topic>.ping`, and the `n` of each ping it handled, in order."""
    consumer = Consumer(spec)
    seen: list[int] = []

    @consumer.handler(f"{topic}.ping")
    async def ping(event: Event, ctx: HandlerContext) -> None:
        seen.append(event.data["n"])

    return consumer, seen


def connects(bus: BusConnection) -> float:
    return bus.metrics.registry.get_sample_value("bus_connects_total") or 0.0


async def rabbitmqctl(*args: str) -> str:
    return await asyncio.to_thread(infra.rabbitmqctl, *args)


async def test_consumers_and_publishers_resume_after_the_broker_closes_all_connections(
        *, bus: BusConnection, topic: str, pings: tuple[Consumer, list[int]],
        start_consumer: StartConsumer, amqp_vhost: str) -> None:
    consumer, seen = pings
    await start_consumer(consumer)
    publisher = Publisher(bus)
    await publisher.publish(Event.new(f"{topic}.ping", {"n": 1}))
    await eventually(lambda: seen == [1])

    await rabbitmqctl("close_all_connections", "-p", amqp_vhost, "test")

    await eventually(lambda: connects(bus) == 2 and consumer.is_consuming,
                     message="reconnected and re-subscribed")
    await publisher.publish(Event.new(f"{topic}.ping", {"n": 2}))
    await eventually(lambda: seen == [1, 2])


@pytest.mark.broker_restart
async def test_everything_resumes_after_a_broker_restart(
        *, bus: BusConnection, topic: str, pool: asyncpg.Pool,
        pings: tuple[Consumer, list[int]], start_consumer: StartConsumer) -> None:
    consumer, seen = pings
    relay = OutboxRelay(pool, Publisher(bus), poll_interval=0.5, backoff=Backoff(0.1, 0.5))
    await start_consumer(consumer)
    await relay.start()
    try:
        await commit_event(pool, Event.new(f"{topic}.ping", {"n": 1}))
        await eventually(lambda: seen == [1])

        try:
            await rabbitmqctl("stop_app")
            await eventually(lambda: not bus.is_connected, message="broker gone")
            await commit_event(pool, Event.new(f"{topic}.ping", {"n": 2}))
        finally:
            await rabbitmqctl("start_app")
        deadline = time.monotonic() + 30
        await rabbitmqctl("await_startup")

        await eventually(lambda: seen == [1, 2], timeout=max(1.0, deadline - time.monotonic()),
                         message="the event committed during the outage, handled")
        assert consumer.is_consuming
    finally:
        await relay.stop()
