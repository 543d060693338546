"""The consumer runtime against the real broker: ack after the effect, retries then the DLQ with the
failure in headers, malformed messages, per-key order with parallel keys, bounded prefetch and
concurrency, graceful drain, and a log line per message.

Each test has its own queue and routing keys (the `spec` and `topic` fixtures), with retry delays
of a few milliseconds.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import structlog
from pamqp.commands import Basic

from common.bus import (
    BroadcastQueue,
    BusConnection,
    Consumer,
    Event,
    HandlerContext,
    MalformedEventError,
    Publisher,
    QueueSpec,
    RetryLater,
)
from common.bus.testing import QueueReader, headers
from common.bus.topology import EXCHANGE
from common.testing import eventually
from common.tests.support import StartConsumer


def sample(consumer: Consumer, metric: str, **labels: str) -> float:
    value = consumer.metrics.registry.get_sample_value(metric, {"consumer": consumer.name,
                                                                **labels})
    return value or 0.0


async def test_a_handled_message_is_acked_once_its_handler_is_done(
        *, bus: BusConnection, spec: QueueSpec, topic: str, reader: QueueReader,
        start_consumer: StartConsumer) -> None:
    consumer = Consumer(spec)
    seen: list[tuple[dict[str, object], int]] = []

    @consumer.handler(f"{topic}.created")
    async def created(event: Event, ctx: HandlerContext) -> None:
        seen.append((event.data, ctx.attempt))

    await start_consumer(consumer)
    await Publisher(bus).publish(Event.new(f"{topic}.created", {"n": 1}))

    await eventually(lambda: sample(consumer, "events_consumed_total",
                                    routing_key=f"{topic}.created", outcome="handled") == 1)
    assert seen == [({"n": 1}, 1)]
    await consumer.stop()
    assert await reader.depth(spec.name) == 0  # acked, so nothing came back on close


async def test_a_handler_that_always_fails_ends_in_the_dlq_with_the_failure_in_headers(
        *, bus: BusConnection, spec: QueueSpec, topic: str, reader: QueueReader,
        start_consumer: StartConsumer) -> None:
    other = f"other.{topic}"
    await reader.declare_probe(other, EXCHANGE, f"{topic}.*")
    consumer = Consumer(spec, name=f"svc-{topic}")
    attempts: list[int] = []

    @consumer.handler(f"{topic}.paid")
    async def paid(event: Event, ctx: HandlerContext) -> None:
        attempts.append(ctx.attempt)
        raise ValueError(f"cannot apply {event.data['n']}")

    await start_consumer(consumer)
    event = Event.new(f"{topic}.paid", {"n": 7})
    await Publisher(bus).publish(event)

    dead = await reader.take_one(spec.dlq)
    assert attempts == [1, 2, 3]
    assert Event.from_bytes(dead.body) == event
    found = headers(dead)
    assert found["x-dead-letter-reason"] == "handler-failed"
    assert found["x-attempts"] == 3
    assert found["x-error-type"] == "builtins.ValueError"
    assert found["x-error-message"] == "cannot apply 7"
    assert found["x-original-routing-key"] == f"{topic}.paid"
    assert found["x-consumer"] == f"svc-{topic}"
    assert dead.header.properties.message_id == event.event_id
    assert sample(consumer, "events_failed_total", routing_key=f"{topic}.paid") == 3
    # The copy is in the DLQ (confirmed) just before the original is acked and counted.
    await eventually(lambda: sample(consumer, "events_dead_lettered_total",
                                    routing_key=f"{topic}.paid", reason="handler-failed") == 1)
    # Retries went back to this queue only: the other queue bound to the key got one copy.
    assert len(await reader.get_all(other)) == 1
    await reader.delete(other)


async def test_a_transient_failure_is_retried_and_then_succeeds(
        *, bus: BusConnection, spec: QueueSpec, topic: str, reader: QueueReader,
        start_consumer: StartConsumer) -> None:
    consumer = Consumer(spec)
    attempts: list[int] = []

    @consumer.handler(f"{topic}.flaky")
    async def flaky(event: Event, ctx: HandlerContext) -> None:
        attempts.append(ctx.attempt)
        if ctx.attempt == 1:
            raise ConnectionError("smtp down")

    await start_consumer(consumer)
    await Publisher(bus).publish(Event.new(f"{topic}.flaky", {}))

    await eventually(lambda: attempts == [1, 2], message="retried once")
    await eventually(lambda: sample(consumer, "events_consumed_total",
                                    routing_key=f"{topic}.flaky", outcome="handled") == 1)
    assert await reader.depth(spec.dlq) == 0


async def test_a_handler_that_says_when_to_retry_is_not_retried_sooner(
        *, bus: BusConnection, topic: str, reader: QueueReader,
        start_consumer: StartConsumer) -> None:
    spec = QueueSpec(f"test.{topic}", (f"{topic}.*",), max_attempts=3, retry_delays_ms=(20, 700))
    consumer = Consumer(spec)
    tried: list[float] = []

    @consumer.handler(f"{topic}.limited")
    async def limited(event: Event, ctx: HandlerContext) -> None:
        tried.append(time.monotonic())
        if ctx.attempt == 1:
            raise RetryLater("rate limited", after=0.5)

    await start_consumer(consumer)
    await Publisher(bus).publish(Event.new(f"{topic}.limited", {}))

    await eventually(lambda: len(tried) == 2, timeout=15, message="retried once")
    assert tried[1] - tried[0] >= 0.5
    assert await reader.depth(spec.dlq) == 0


async def test_malformed_or_unhandled_messages_go_straight_to_the_dlq_and_the_consumer_goes_on(
        *, bus: BusConnection, spec: QueueSpec, topic: str, reader: QueueReader,
        start_consumer: StartConsumer) -> None:
    consumer = Consumer(spec)
    handled: list[str] = []

    @consumer.handler(f"{topic}.keyed", key=lambda event: event.data["tourId"])
    async def keyed(event: Event, ctx: HandlerContext) -> None:
        handled.append(event.data["tourId"])

    await start_consumer(consumer)
    await reader.publish_raw(b"{not json", exchange=EXCHANGE, routing_key=f"{topic}.keyed",
                             properties=Basic.Properties(message_id="m-1"))
    await Publisher(bus).publish(Event.new(f"{topic}.unknown", {}))
    await Publisher(bus).publish(Event.new(f"{topic}.keyed", {"noTourId": 1}))
    await Publisher(bus).publish(Event.new(f"{topic}.keyed", {"tourId": "t-1"}))

    await eventually(lambda: handled == ["t-1"])
    dead = [headers(message) for message in await reader.take(spec.dlq, 3)]
    reasons = sorted((h["x-dead-letter-reason"], h["x-original-routing-key"]) for h in dead)
    assert reasons == [("bad-key", f"{topic}.keyed"), ("malformed", f"{topic}.keyed"),
                       ("no-handler", f"{topic}.unknown")]
    errors = [h["x-error-message"] for h in dead]
    assert any("not JSON" in error for error in errors)
    assert any("KeyError" in error for error in errors)


async def test_a_handler_refusing_the_data_as_malformed_dead_letters_it_without_retries(
        *, bus: BusConnection, spec: QueueSpec, topic: str, reader: QueueReader,
        start_consumer: StartConsumer) -> None:
    consumer = Consumer(spec)
    attempts: list[int] = []

    @consumer.handler(f"{topic}.checked")
    async def checked(event: Event, ctx: HandlerContext) -> None:
        attempts.append(ctx.attempt)
        if "bookingId" not in event.data:
            raise MalformedEventError("data.bookingId is required")

    await start_consumer(consumer)
    await Publisher(bus).publish(Event.new(f"{topic}.checked", {"nothing": 1}))

    [dead] = await reader.take(spec.dlq, 1)
    assert headers(dead)["x-dead-letter-reason"] == "malformed"
    assert "data.bookingId is required" in headers(dead)["x-error-message"]
    # The counter moves once the broker confirmed the copy, just after the copy is readable.
    await eventually(lambda: sample(consumer, "events_dead_lettered_total",
                                    routing_key=f"{topic}.checked", reason="malformed") == 1)
    assert attempts == [1]


async def test_ignored_routing_keys_are_acked_without_a_handler(
        *, bus: BusConnection, spec: QueueSpec, topic: str, reader: QueueReader,
        start_consumer: StartConsumer) -> None:
    consumer = Consumer(spec)
    consumer.ignore(f"{topic}.noise")
    await start_consumer(consumer)

    await Publisher(bus).publish(Event.new(f"{topic}.noise", {}))

    await eventually(lambda: sample(consumer, "events_consumed_total",
                                    routing_key=f"{topic}.noise", outcome="ignored") == 1)
    assert await reader.depth(spec.dlq) == 0


async def test_one_key_runs_in_order_while_other_keys_proceed(
        *, bus: BusConnection, spec: QueueSpec, topic: str,
        start_consumer: StartConsumer) -> None:
    consumer = Consumer(spec, concurrency=4)
    gate = asyncio.Event()
    log: list[str] = []

    @consumer.handler(f"{topic}.seat", key=lambda event: event.data["departure"])
    async def seat(event: Event, ctx: HandlerContext) -> None:
        label = f"{event.data['departure']}{event.data['n']}"
        log.append(f"start {label}")
        if label == "A1":
            await gate.wait()
        log.append(f"end {label}")

    await start_consumer(consumer)
    publisher = Publisher(bus)
    for departure, n in (("A", 1), ("A", 2), ("B", 1), ("B", 2)):
        await publisher.publish(Event.new(f"{topic}.seat", {"departure": departure, "n": n}))

    # B finishes while A1 is still blocked (parallel keys), and A2 has not started (order).
    await eventually(lambda: "end B2" in log, message="key B done while A blocked")
    assert "start A1" in log
    assert "start A2" not in log
    assert log.index("end B1") < log.index("start B2")

    gate.set()
    await eventually(lambda: "end A2" in log)
    assert log.index("end A1") < log.index("start A2")


async def test_prefetch_and_concurrency_bound_the_work_in_flight(
        *, bus: BusConnection, spec: QueueSpec, topic: str, reader: QueueReader,
        start_consumer: StartConsumer) -> None:
    consumer = Consumer(spec, prefetch=3, concurrency=2)
    gate = asyncio.Event()
    active: list[int] = []
    peak = 0

    @consumer.handler(f"{topic}.job")
    async def job(event: Event, ctx: HandlerContext) -> None:
        nonlocal peak
        active.append(event.data["n"])
        peak = max(peak, len(active))
        await gate.wait()
        active.remove(event.data["n"])

    await start_consumer(consumer)
    for n in range(6):
        await Publisher(bus).publish(Event.new(f"{topic}.job", {"n": n}))

    await eventually(lambda: len(active) == 2)
    await reader.wait_depth(spec.name, 3)  # 6 published, only 3 handed out (prefetch)
    assert peak == 2
    gate.set()
    await eventually(lambda: sample(consumer, "events_consumed_total",
                                    routing_key=f"{topic}.job", outcome="handled") == 6)
    assert peak == 2


async def test_stop_drains_running_handlers_and_hands_back_the_rest(
        *, bus: BusConnection, spec: QueueSpec, topic: str, reader: QueueReader,
        start_consumer: StartConsumer) -> None:
    consumer = Consumer(spec, drain_timeout=5)
    gate = asyncio.Event()
    finished: list[int] = []

    @consumer.handler(f"{topic}.step", key=lambda event: "one-key")
    async def step(event: Event, ctx: HandlerContext) -> None:
        if event.data["n"] == 1:
            await gate.wait()
        finished.append(event.data["n"])

    await start_consumer(consumer)
    await Publisher(bus).publish(Event.new(f"{topic}.step", {"n": 1}))
    await Publisher(bus).publish(Event.new(f"{topic}.step", {"n": 2}))
    await eventually(lambda: consumer._mailboxes.active == 1 and not finished)

    stopping = asyncio.create_task(consumer.stop())
    await eventually(consumer._stopping.is_set)
    await Publisher(bus).publish(Event.new(f"{topic}.step", {"n": 3}))
    assert not stopping.done()  # waits for the running handler

    gate.set()
    await asyncio.wait_for(stopping, 10)

    assert finished == [1]  # the running one finished (and was acked) ...
    remaining = [json.loads(m.body)["data"]["n"] for m in await reader.take(spec.name, 2)]
    assert sorted(remaining) == [2, 3]  # ... the others went back to the queue


async def test_every_message_has_one_log_line_with_its_ids_outcome_and_duration(
        *, bus: BusConnection, spec: QueueSpec, topic: str,
        start_consumer: StartConsumer) -> None:
    consumer = Consumer(spec)
    inner: list[dict[str, object]] = []

    @consumer.handler(f"{topic}.logged")
    async def logged(event: Event, ctx: HandlerContext) -> None:
        inner.append(dict(structlog.contextvars.get_contextvars()))

    await start_consumer(consumer)
    event = Event.new(f"{topic}.logged", {}, correlation_id="corr-42")
    with structlog.testing.capture_logs([structlog.contextvars.merge_contextvars]) as logs:
        await Publisher(bus).publish(event)
        await eventually(lambda: any(e["event"] == "event_consumed" for e in logs))

    [line] = [e for e in logs if e["event"] == "event_consumed"]
    assert line["eventId"] == event.event_id
    assert line["eventType"] == f"{topic}.logged"
    assert line["correlationId"] == "corr-42"
    assert line["outcome"] == "handled"
    assert isinstance(line["durationMs"], float)
    # The handler's own log lines carry the same ids, and an event it creates the correlation.
    assert inner[0]["eventId"] == event.event_id
    assert inner[0]["correlationId"] == "corr-42"


async def test_every_replica_on_a_broadcast_queue_gets_every_event(
        *, bus: BusConnection, topic: str, start_consumer: StartConsumer) -> None:
    broadcast = BroadcastQueue(f"test.{topic}", (f"{topic}.*",))
    replicas = [broadcast.for_process(f"pod-{uuid.uuid4().hex[:8]}") for _ in range(2)]
    pushed: dict[str, list[object]] = {spec.name: [] for spec in replicas}
    for spec in replicas:
        consumer = Consumer(spec, name="replica")

        @consumer.handler(f"{topic}.changed")
        async def push(event: Event, ctx: HandlerContext, queue: str = spec.name) -> None:
            pushed[queue].append(event.data["availableSeats"])

        await start_consumer(consumer)

    await Publisher(bus).publish(Event.new(f"{topic}.changed", {"availableSeats": 2}))

    await eventually(lambda: all(seats == [2] for seats in pushed.values()))
