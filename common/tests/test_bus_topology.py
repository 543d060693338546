"""The topology mechanism: retry and dead-letter queues of a declared queue, broadcast queues, the
check that a consumer's handlers and its queue's bindings agree, and a clear refusal when the
broker has a queue with other arguments. The services' own queues are checked in `ops/tests`."""

from __future__ import annotations

import re
import uuid

import pytest
from aiohttp import web

from common.bus import (
    BroadcastQueue,
    BrokerUnavailableError,
    BusConnection,
    Consumer,
    Event,
    HandlerContext,
    Publisher,
    QueueSpec,
    TopologyError,
    TopologyMismatch,
    bus_ctx,
    consumer_ctx,
)
from common.bus.handlers import topic_covers, topics_overlap
from common.bus.testing import QueueReader
from common.bus.topology import DEAD_LETTER_EXCHANGE, EXCHANGE, UNROUTED_QUEUE
from common.tests.support import MakeBus
from ops import infra


def test_each_process_gets_its_own_exclusive_queue_of_a_broadcast_queue() -> None:
    broadcast = BroadcastQueue("live", ("tour.*",))
    one, two = broadcast.for_process("pod-a"), broadcast.for_process("pod-b")

    assert one.name == "live.pod-a"
    assert one.name != two.name
    assert one.bindings == ("tour.*",)
    assert one.exclusive and one.auto_delete and not one.durable
    assert one.max_attempts == 1
    assert one.dlq == two.dlq == broadcast.dlq == "live.dlq"


def test_retry_delays_back_off_and_repeat_the_last_one() -> None:
    spec = QueueSpec("q", ("a.b",), max_attempts=5, retry_delays_ms=(100, 1000))

    assert [spec.retry_delay_ms(n) for n in range(1, 5)] == [100, 1000, 1000, 1000]
    assert spec.retry_queues == {"q.retry.100": 100, "q.retry.1000": 1000}
    assert QueueSpec("q", (), max_attempts=1, retry_delays_ms=()).retry_queues == {}
    with pytest.raises(ValueError, match="at least one delay"):
        QueueSpec("q", (), max_attempts=2, retry_delays_ms=())


def test_a_retry_asked_to_wait_takes_the_first_retry_queue_long_enough_or_the_longest() -> None:
    spec = QueueSpec("q", ("a.b",), max_attempts=5, retry_delays_ms=(100, 1000, 30_000))

    assert spec.retry_delay_ms(1, at_least_ms=0) == 100
    assert spec.retry_delay_ms(1, at_least_ms=300) == 1000
    assert spec.retry_delay_ms(2, at_least_ms=1000) == 1000
    assert spec.retry_delay_ms(3, at_least_ms=10) == 30_000  # never shorter than its turn
    assert spec.retry_delay_ms(1, at_least_ms=86_400_000) == 30_000  # capped at the longest


@pytest.mark.parametrize(("binding", "pattern", "covered"), [
    ("payment.*", "payment.succeeded", True),
    ("payment.*", "payment.*", True),
    ("payment.succeeded", "payment.*", False),
    ("payment.*", "booking.confirmed", False),
    ("payment.*", "payment.refund.partial", False),
    ("payment.#", "payment.refund.partial", True),
    ("payment.#", "payment.*", True),
    ("payment.*", "payment.#", False),  # `#` may be no word, or two
    ("#", "anything.at.#", True),
    ("*.#", "#.done", True),  # both take every key of one word or more
    ("*.*", "#", False),
])
def test_a_binding_covers_a_pattern_when_it_takes_every_key_the_pattern_takes(
        binding: str, pattern: str, covered: bool) -> None:
    assert topic_covers(binding, pattern) is covered


@pytest.mark.parametrize(("one", "other", "overlap"), [
    ("payment.*", "payment.succeeded", True),
    ("payment.*", "booking.*", False),
    ("payment.#", "*.refund.*", True),
    ("a.*.c", "a.b.*", True),
    ("a.*", "a.b.c", False),
    ("#", "x.y", True),
])
def test_two_patterns_overlap_when_some_key_matches_both(
        one: str, other: str, overlap: bool) -> None:
    assert topics_overlap(one, other) is overlap
    assert topics_overlap(other, one) is overlap


def _consumer(bindings: tuple[str, ...], *handled: str) -> Consumer:
    consumer = Consumer(QueueSpec("shop_queue", bindings), name="shop")

    async def handle(event: Event, ctx: HandlerContext) -> None:
        return None

    for routing_key in handled:
        consumer.handler(routing_key)(handle)
    return consumer


def test_handlers_and_ignores_that_account_for_every_binding_agree() -> None:
    consumer = _consumer(("order.*", "stock.low"), "order.placed", "stock.low")
    consumer.ignore("order.*")

    consumer.check_topology()


def test_a_handler_no_binding_brings_is_a_topology_error_naming_the_queue() -> None:
    consumer = _consumer(("order.*",), "order.placed", "stock.low")

    with pytest.raises(TopologyError) as refused:
        consumer.check_topology()

    assert str(refused.value) == (
        "consumer shop of queue 'shop_queue': no binding brings 'stock.low', which it declares "
        "handled or ignored; its bindings: 'order.*'")


def test_a_binding_nothing_handles_or_ignores_is_a_topology_error_naming_the_queue() -> None:
    consumer = _consumer(("order.*", "stock.low"), "order.placed")

    with pytest.raises(TopologyError, match=re.escape(
            "queue 'shop_queue': nothing handles or ignores what 'stock.low' brings")):
        consumer.check_topology()
    consumer.ignore("stock.low")
    consumer.check_topology()


async def test_a_consumer_whose_handlers_disagree_with_its_bindings_does_not_start(
        *, bus: BusConnection, reader: QueueReader, topic: str) -> None:
    consumer = Consumer(QueueSpec(f"test.{topic}", (f"{topic}.a",)))

    @consumer.handler(f"{topic}.b")
    async def b(event: Event, ctx: HandlerContext) -> None:
        return None

    with pytest.raises(TopologyError, match=re.escape(f"test.{topic}")):
        await consumer.start(bus)

    assert not consumer.is_consuming
    with pytest.raises(Exception, match="NOT_FOUND"):
        await reader.depth(f"test.{topic}")  # nothing was declared


async def test_a_started_consumer_has_declared_its_queue_with_bindings_and_dead_letters(
        *, bus: BusConnection, spec: QueueSpec, topic: str, amqp_vhost: str) -> None:
    consumer = Consumer(spec)

    @consumer.handler(f"{topic}.done")
    async def done(event: Event, ctx: HandlerContext) -> None:
        return None

    await consumer.start(bus)  # declared before it returns, while the broker is there
    try:
        listed = infra.rabbitmqctl("list_bindings", "-p", amqp_vhost, "source_name",
                                   "destination_name", "routing_key")
    finally:
        await consumer.stop()
    bindings = {tuple(line.split("\t")) for line in listed.splitlines() if line}
    assert (EXCHANGE, spec.name, f"{topic}.*") in bindings
    assert (DEAD_LETTER_EXCHANGE, spec.dlq, spec.name) in bindings
    for retry_queue in spec.retry_queues:
        assert ("", retry_queue, retry_queue) in bindings  # declared (default binding)


async def _existing(reader: QueueReader, spec: QueueSpec, **arguments: object) -> None:
    """`spec`'s queue as another declaration left it on the broker."""
    await reader.channel.queue_declare(spec.name, durable=True, arguments={
        "x-dead-letter-exchange": DEAD_LETTER_EXCHANGE,
        "x-dead-letter-routing-key": spec.name, **arguments}, timeout=10)


async def test_a_queue_the_broker_has_with_other_arguments_stops_the_start_saying_how(
        *, bus: BusConnection, reader: QueueReader, spec: QueueSpec, topic: str) -> None:
    await _existing(reader, spec, **{"x-dead-letter-routing-key": "elsewhere"})
    consumer = Consumer(spec)

    @consumer.handler(f"{topic}.done")
    async def done(event: Event, ctx: HandlerContext) -> None:
        return None

    with pytest.raises(TopologyMismatch) as refused:
        await consumer.start(bus)

    assert str(refused.value).startswith(
        f"queue '{spec.name}' exists on the broker with other arguments: "
        f"x-dead-letter-routing-key is elsewhere there, {spec.name} in this declaration.")
    assert "Changing the topology" in str(refused.value)
    assert not consumer.is_consuming


async def test_an_app_whose_queue_the_broker_has_otherwise_does_not_start(
        *, amqp_url: str, reader: QueueReader, spec: QueueSpec, topic: str) -> None:
    await _existing(reader, spec, **{"x-max-length": 10})
    consumer = Consumer(spec)
    consumer.ignore(f"{topic}.*")
    app = web.Application()
    app.cleanup_ctx.extend([bus_ctx(amqp_url, name="svc", require_broker=True),
                            consumer_ctx(lambda app: consumer)])
    runner = web.AppRunner(app)

    with pytest.raises(TopologyMismatch, match=re.escape(
            f"queue '{spec.name}' exists on the broker with other arguments: x-max-length is 10 "
            "there, not set in this declaration")):
        await runner.setup()
    await runner.cleanup()


async def test_a_bus_told_to_declare_a_queue_the_broker_has_otherwise_says_so(
        *, make_bus: MakeBus, reader: QueueReader, spec: QueueSpec) -> None:
    await _existing(reader, spec, **{"x-max-length": 10})
    bus = make_bus(topology=(spec,), timeout=1)
    await bus.start()

    with pytest.raises(TopologyMismatch, match=re.escape(f"queue '{spec.name}' exists on the")):
        await bus.wait_connected()
    with pytest.raises(BrokerUnavailableError,
                       match=re.escape(f"not connected to the broker: queue '{spec.name}'")):
        await bus.ping()


async def test_an_event_no_queue_is_bound_to_is_parked_not_lost(
        *, bus: BusConnection, reader: QueueReader) -> None:
    await reader.channel.queue_purge(UNROUTED_QUEUE, timeout=10)
    event = Event.new(f"nobody.listens.{uuid.uuid4().hex}", {"n": 1})

    await Publisher(bus).publish(event)  # confirmed, not returned

    parked = await reader.take_one(UNROUTED_QUEUE)
    assert parked.header.properties.message_id == event.event_id
