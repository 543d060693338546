"""The operator's dead-letter tools: show why messages failed, and replay them once fixed."""

from __future__ import annotations

from common.bus import BusConnection, Consumer, Event, HandlerContext, Publisher, QueueSpec
from common.bus.dlq import replay, show
from common.bus.testing import QueueReader
from common.testing import eventually
from common.tests.support import StartConsumer


async def test_a_dead_letter_is_shown_with_its_cause_and_replayed_once_fixed(
        *, bus: BusConnection, reader: QueueReader, topic: str,
        start_consumer: StartConsumer) -> None:
    spec = QueueSpec(f"test.{topic}", (f"{topic}.*",), max_attempts=2, retry_delays_ms=(20,))
    consumer = Consumer(spec)
    broken = True
    handled: list[tuple[str, int]] = []

    @consumer.handler(f"{topic}.mail")
    async def mail(event: Event, ctx: HandlerContext) -> None:
        if broken:
            raise LookupError("template missing")
        handled.append((event.event_id, ctx.attempt))

    await start_consumer(consumer)
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
