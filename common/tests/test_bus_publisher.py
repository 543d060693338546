"""The connection and the publisher against the real broker: confirmed publishing, failures that
raise, and reconnection by itself when the broker goes away and comes back."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from aiormq.abc import AbstractConnection
from yarl import URL

from common.bus import BrokerUnavailableError, BusConnection, Event, Publisher, PublishError
from common.bus.backoff import Backoff
from common.bus.testing import QueueReader, TcpProxy
from common.bus.topology import EXCHANGE
from common.testing import eventually


@pytest.fixture
async def proxy(amqp_url: str) -> AsyncIterator[TcpProxy]:
    url = URL(amqp_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5672)
    await proxy.start()
    yield proxy
    await proxy.stop()


@pytest.fixture
async def reader(amqp_url: str) -> AsyncIterator[QueueReader]:
    reader = await QueueReader.open(amqp_url)
    yield reader
    await reader.close()


def _bus(url: str, *, timeout: float = 2) -> BusConnection:
    return BusConnection(url, name="test-publisher", topology=(), timeout=timeout,
                         backoff=Backoff(0.05, 0.3))


async def test_a_published_event_arrives_with_its_envelope_and_properties(
        *, amqp_url: str, reader: QueueReader) -> None:
    routing_key = f"test.{uuid.uuid4().hex}.happened"
    probe = f"probe.{uuid.uuid4().hex}"
    bus = _bus(amqp_url)
    await bus.start()
    await bus.wait_connected()  # declares the exchange the probe binds to
    await reader.declare_probe(probe, EXCHANGE, routing_key)
    try:
        event = Event.new(routing_key, {"seats": 3}, correlation_id="corr-1")

        await Publisher(bus).publish(event)

        message = await reader.get(probe)
        assert message is not None
        assert Event.from_bytes(message.body) == event
        props = message.header.properties
        assert props.message_id == event.event_id
        assert props.message_type == routing_key
        assert props.correlation_id == "corr-1"
        assert props.delivery_mode == 2
        assert props.content_type == "application/json"
        assert bus.metrics.registry.get_sample_value(
            "events_published_total", {"routing_key": routing_key}) == 1
    finally:
        await reader.delete(probe)
        await bus.close()


async def test_publishing_while_the_broker_is_unreachable_raises(
        *, amqp_url: str, proxy: TcpProxy) -> None:
    bus = _bus(proxy.url_for(amqp_url), timeout=0.5)
    await bus.start()
    try:
        await eventually(lambda: bus.is_connected, message="connected")
        await proxy.stop()
        await eventually(lambda: not bus.is_connected, message="connection loss noticed")

        with pytest.raises(PublishError, match="BrokerUnavailable"):
            await Publisher(bus).publish(Event.new("test.unreachable", {}))
        with pytest.raises(BrokerUnavailableError):
            await bus.ping()
    finally:
        await bus.close()


async def test_the_connection_comes_back_by_itself_and_reruns_its_callbacks(
        *, amqp_url: str, proxy: TcpProxy, reader: QueueReader) -> None:
    bus = _bus(proxy.url_for(amqp_url))
    connects: list[AbstractConnection] = []

    async def on_connect(conn: AbstractConnection) -> None:
        connects.append(conn)

    bus.on_connect(on_connect)
    await bus.start()
    publisher = Publisher(bus)
    routing_key = f"test.{uuid.uuid4().hex}.back"
    probe = f"probe.{uuid.uuid4().hex}"
    await bus.wait_connected()
    await reader.declare_probe(probe, EXCHANGE, routing_key)
    try:
        await publisher.publish(Event.new(routing_key, {"n": 1}))
        await proxy.stop()
        await eventually(lambda: not bus.is_connected, message="connection loss noticed")

        await proxy.start()
        await eventually(lambda: bus.is_connected, message="reconnected")
        await bus.ping()
        await publisher.publish(Event.new(routing_key, {"n": 2}))

        assert len(connects) == 2
        received = [Event.from_bytes(m.body).data for m in await reader.get_all(probe)]
        assert received == [{"n": 1}, {"n": 2}]
        assert bus.metrics.registry.get_sample_value("bus_connects_total") == 2
    finally:
        await reader.delete(probe)
        await bus.close()


async def test_the_publisher_reopens_a_channel_the_broker_closed(amqp_url: str) -> None:
    bus = _bus(amqp_url)
    await bus.start()
    publisher = Publisher(bus)
    try:
        with pytest.raises(PublishError, match="NOT_FOUND"):
            await publisher.publish(Event.new("x.y", {}), exchange="no-such-exchange")

        await publisher.publish(Event.new(f"test.{uuid.uuid4().hex}", {}))
    finally:
        await bus.close()


async def test_a_message_no_queue_takes_is_returned_and_raises(amqp_url: str) -> None:
    bus = _bus(amqp_url)
    await bus.start()
    try:
        # The default exchange has no alternate exchange: an unknown queue name is a Return.
        with pytest.raises(PublishError):
            await Publisher(bus).publish(Event.new("x.y", {}), exchange="",
                                         routing_key=f"no-such-queue-{uuid.uuid4().hex}")
    finally:
        await bus.close()
