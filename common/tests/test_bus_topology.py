"""The broker topology: the one table matches DESIGN §5, is declared on connect, and is
documented in docs/events.md."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from common.bus import BusConnection, Event, Publisher, QueueSpec, websocket_queue
from common.bus.testing import QueueReader
from common.bus.topology import (
    DEAD_LETTER_EXCHANGE,
    DEAD_LETTER_QUEUES,
    DURABLE_QUEUES,
    EXCHANGE,
    UNROUTED_QUEUE,
)
from common.tests.support import MakeBus, connected
from ops import infra

DOCS = Path(__file__).resolve().parents[2] / "docs" / "events.md"


def test_the_table_has_the_queues_and_bindings_of_the_design() -> None:
    assert {spec.name: set(spec.bindings) for spec in DURABLE_QUEUES} == {
        "tour_catalog_queue": {"booking.confirmed", "booking.cancelled"},
        "notification_queue": {"booking.*", "payment.*", "tour.availability.low"},
        "booking_payment_queue": {"payment.*"},
        "payment_booking_queue": {"booking.cancelled"},
    }
    assert all(spec.durable and not spec.exclusive for spec in DURABLE_QUEUES)


def test_each_realtime_process_gets_its_own_exclusive_broadcast_queue() -> None:
    one, two = websocket_queue("pod-a"), websocket_queue("pod-b")

    assert one.name == "websocket_availability_queue.pod-a"
    assert one.name != two.name
    assert one.bindings == ("tour.availability.*", "booking.*")
    assert one.exclusive and one.auto_delete and not one.durable
    assert one.dlq == two.dlq == "websocket_availability_queue.dlq"


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


def test_the_operator_documentation_names_every_queue_and_binding() -> None:
    text = DOCS.read_text()

    for spec in DURABLE_QUEUES:
        assert f"`{spec.name}`" in text
        for binding in spec.bindings:
            assert f"`{binding}`" in text
    for name in (*DEAD_LETTER_QUEUES, EXCHANGE, DEAD_LETTER_EXCHANGE, UNROUTED_QUEUE):
        assert f"`{name}`" in text


@pytest.fixture
async def bus(make_bus: MakeBus) -> BusConnection:
    """A bus that declares the whole topology, as every service's does."""
    return await connected(make_bus(topology=DURABLE_QUEUES))


async def test_connecting_declares_every_queue_with_its_bindings_and_dead_letters(
        *, bus: BusConnection, amqp_vhost: str) -> None:
    listed = infra.rabbitmqctl("list_bindings", "-p", amqp_vhost, "source_name",
                               "destination_name", "routing_key")
    bindings = {tuple(line.split("\t")) for line in listed.splitlines() if line}

    for spec in DURABLE_QUEUES:
        for binding in spec.bindings:
            assert (EXCHANGE, spec.name, binding) in bindings
        assert (DEAD_LETTER_EXCHANGE, spec.dlq, spec.name) in bindings
        for retry_queue in spec.retry_queues:
            assert ("", retry_queue, retry_queue) in bindings  # declared (default binding)


async def test_an_event_no_queue_is_bound_to_is_parked_not_lost(
        *, bus: BusConnection, reader: QueueReader) -> None:
    await reader.channel.queue_purge(UNROUTED_QUEUE, timeout=10)
    event = Event.new(f"nobody.listens.{uuid.uuid4().hex}", {"n": 1})

    await Publisher(bus).publish(event)  # confirmed, not returned

    parked = await reader.take_one(UNROUTED_QUEUE)
    assert parked.header.properties.message_id == event.event_id
