"""The connection and the publisher against the real broker: confirmed publishing, failures that
raise, and reconnection by itself when the broker goes away and comes back."""

from __future__ import annotations

import uuid

import pytest
from aiormq.abc import AbstractConnection

from common.bus import BrokerUnavailableError, Event, Publisher, PublishError
from common.bus.testing import QueueReader, TcpProxy
from common.bus.topology import EXCHANGE
from common.testing import eventually
from common.tests.support import MakeBus, connected


async def test_a_published_event_arrives_with_its_envelope_and_properties(
        *, make_bus: MakeBus, reader: QueueReader) -> None:
    routing_key = f"test.{uuid.uuid4().hex}.happened"
    probe = f"probe.{uuid.uuid4().hex}"
    bus = await connected(make_bus())  # declares the exchange the probe binds to
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


async def test_publishing_while_the_broker_is_unreachable_raises(
        *, amqp_url: str, proxy: TcpProxy, make_bus: MakeBus) -> None:
    bus = make_bus(proxy.url_for(amqp_url), timeout=0.5)
    await bus.start()
    await eventually(lambda: bus.is_connected, message="connected")
    await proxy.stop()
    await eventually(lambda: not bus.is_connected, message="connection loss noticed")

    with pytest.raises(PublishError, match="BrokerUnavailable"):
        await Publisher(bus).publish(Event.new("test.unreachable", {}))
    with pytest.raises(BrokerUnavailableError):
        await bus.ping()


async def test_the_connection_comes_back_by_itself_and_reruns_its_callbacks(
        *, amqp_url: str, proxy: TcpProxy, make_bus: MakeBus, reader: QueueReader) -> None:
    bus = make_bus(proxy.url_for(amqp_url))
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


async def test_the_publisher_reopens_a_channel_the_broker_closed(make_bus: MakeBus) -> None:
    bus = make_bus()
    await bus.start()
    publisher = Publisher(bus)
    with pytest.raises(PublishError, match="NOT_FOUND"):
        await publisher.publish(Event.new("x.y", {}), exchange="no-such-exchange")

    await publisher.publish(Event.new(f"test.{uuid.uuid4().hex}", {}))


async def test_a_message_no_queue_takes_is_returned_and_raises(make_bus: MakeBus) -> None:
    bus = make_bus()
    await bus.start()
    # The default exchange has no alternate exchange: an unknown queue name is a Return.
    with pytest.raises(PublishError):
        await Publisher(bus).publish(Event.new("x.y", {}), exchange="",
                                     routing_key=f"no-such-queue-{uuid.uuid4().hex}")
