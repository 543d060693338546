"""The operator's dead-letter tools: show why messages failed, and replay them once fixed."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from common.bus import BusConnection, Consumer, Event, HandlerContext, Publisher, QueueSpec
from common.bus.dlq import replay, show
from common.bus.testing import QueueReader
from common.testing import eventually


@pytest.fixture
async def bus(amqp_url: str) -> AsyncIterator[BusConnection]:
    bus = BusConnection(amqp_url, name="test-dlq", topology=(), timeout=5)
    await bus.start()
    await bus.wait_connected()
    yield bus
    await bus.close()


@pytest.fixture
async def reader(amqp_url: str) -> AsyncIterator[QueueReader]:
    reader = await QueueReader.open(amqp_url)
    yield reader
    await reader.close()


async def test_a_dead_letter_is_shown_with_its_cause_and_replayed_once_fixed(
        *, bus: BusConnection, reader: QueueReader) -> None:
    topic = f"t{uuid.uuid4().hex[:12]}"
    spec = QueueSpec(f"test.{topic}", (f"{topic}.*",), max_attempts=2, retry_delays_ms=(20,))
    consumer = Consumer(spec)
    broken = True
    handled: list[tuple[str, int]] = []

    @consumer.handler(f"{topic}.mail")
    async def mail(event: Event, ctx: HandlerContext) -> None:
        if broken:
            raise LookupError("template missing")
        handled.append((event.event_id, ctx.attempt))

    await consumer.start(bus)
    try:
        await eventually(lambda: consumer.is_consuming)
        event = Event.new(f"{topic}.mail", {})
        await Publisher(bus).publish(event)

        await reader.wait_depth(spec.dlq, 1)
        [letter] = await show(reader.channel, spec.name, limit=10)
        assert (letter.event_id, letter.routing_key, letter.reason, letter.attempts) == (
            event.event_id, f"{topic}.mail", "handler-failed", 2)
        assert letter.error == "builtins.LookupError: template missing"
        await reader.wait_depth(spec.dlq, 1)  # show leaves it there (requeued, asynchronously)

        broken = False
        assert await replay(reader.channel, spec.name, limit=10) == 1

        await eventually(lambda: handled == [(event.event_id, 1)])
        assert await reader.depth(spec.dlq) == 0
    finally:
        await consumer.stop()
