"""The transactional outbox: events written with the state change, published by the relay with
confirms, woken by NOTIFY, surviving a broker outage and a lost LISTEN connection, and published
exactly once by several relays."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest

from common.bus import Event, OutboxRelay, OutboxStalledError, Publisher, add_event
from common.bus.backoff import Backoff
from common.bus.testing import QueueReader, TcpProxy
from common.bus.topology import EXCHANGE
from common.testing import eventually
from common.tests.support import MakeBus, commit_event, connected

NEVER = 3600.0  # a poll interval that cannot be what wakes the relay within a test


@pytest.fixture
async def probe(topic: str, reader: QueueReader, make_bus: MakeBus) -> AsyncIterator[str]:
    """A queue that receives every `<topic>.*` event."""
    await connected(make_bus())  # the exchange exists from here on
    name = f"probe.{topic}"
    await reader.declare_probe(name, EXCHANGE, f"{topic}.*")
    yield name
    await reader.delete(name)


@pytest.fixture
async def stop_after() -> AsyncIterator[list[OutboxRelay]]:
    relays: list[OutboxRelay] = []
    yield relays
    for relay in relays:
        await relay.stop()


async def published_at(pool: asyncpg.Pool, event: Event) -> Any:  # a datetime or None
    return await pool.fetchval("SELECT published_at FROM outbox WHERE event_id = $1",
                               uuid.UUID(event.event_id))


async def test_an_event_is_stored_only_with_the_transaction_that_wrote_it(
        *, pool: asyncpg.Pool, topic: str) -> None:
    kept, dropped = Event.new(f"{topic}.kept", {}), Event.new(f"{topic}.dropped", {})
    await commit_event(pool, kept)
    async with pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        await add_event(conn, dropped)
        await tx.rollback()
        with pytest.raises(RuntimeError, match="inside the transaction"):
            await add_event(conn, dropped)

    rows = await pool.fetch("SELECT event_id, routing_key, payload FROM outbox")
    assert [(str(r["event_id"]), r["routing_key"]) for r in rows] == [
        (kept.event_id, f"{topic}.kept")]
    assert rows[0]["payload"] == kept.to_dict()


async def test_the_relay_is_woken_by_the_commit_and_publishes_with_confirms(
        *, pool: asyncpg.Pool, topic: str, probe: str, reader: QueueReader, make_bus: MakeBus,
        stop_after: list[OutboxRelay]) -> None:
    bus = make_bus()
    await bus.start()
    relay = OutboxRelay(pool, Publisher(bus), poll_interval=NEVER, metrics=bus.metrics)
    stop_after.append(relay)
    await relay.start()
    await eventually(relay._listening, message="listening")

    event = Event.new(f"{topic}.confirmed", {"bookingId": "b-1"})
    await commit_event(pool, event)

    message = await reader.take_one(probe)
    assert Event.from_bytes(message.body) == event
    assert await eventually(lambda: published_at(pool, event))
    assert await relay.backlog() == (0, 0.0)
    assert bus.metrics.registry.get_sample_value("outbox_backlog") == 0


async def test_an_event_committed_while_the_broker_is_unreachable_is_published_once_it_is_back(
        *, pool: asyncpg.Pool, amqp_url: str, topic: str, probe: str, reader: QueueReader,
        proxy: TcpProxy, make_bus: MakeBus, stop_after: list[OutboxRelay]) -> None:
    bus = await connected(make_bus(proxy.url_for(amqp_url), timeout=1))
    relay = OutboxRelay(pool, Publisher(bus), poll_interval=NEVER, stall_after=0.05,
                        backoff=Backoff(0.05, 0.2))
    stop_after.append(relay)
    await relay.start()
    await proxy.stop()
    await eventually(lambda: not bus.is_connected, message="broker gone")

    event = Event.new(f"{topic}.confirmed", {"n": 1})
    await commit_event(pool, event)

    # The relay tried, failed, recorded why, and reports the stall to /health.
    error = await eventually(lambda: pool.fetchval("SELECT last_error FROM outbox"))
    assert "BrokerUnavailable" in error
    assert await published_at(pool, event) is None
    with pytest.raises(OutboxStalledError, match="1 events unpublished"):
        await relay.check()

    await proxy.start()

    message = await reader.take_one(probe)
    assert Event.from_bytes(message.body) == event
    assert await eventually(lambda: published_at(pool, event))
    await relay.check()
    assert await reader.get(probe) is None  # once


async def test_two_relays_on_one_outbox_publish_each_event_exactly_once(
        *, pool: asyncpg.Pool, topic: str, probe: str, reader: QueueReader, make_bus: MakeBus,
        stop_after: list[OutboxRelay]) -> None:
    events = [Event.new(f"{topic}.n", {"n": n}) for n in range(120)]
    async with pool.acquire() as conn, conn.transaction():
        for event in events:
            await add_event(conn, event)
    relays = []
    for _ in range(2):
        bus = make_bus()
        await bus.start()
        relays.append(OutboxRelay(pool, Publisher(bus), batch_size=7, poll_interval=NEVER))
    stop_after.extend(relays)

    await asyncio.gather(*(relay.start() for relay in relays))

    await eventually(lambda: pool.fetchval(
        "SELECT count(*) = 120 FROM outbox WHERE published_at IS NOT NULL"), timeout=20)
    received = [Event.from_bytes(m.body).event_id for m in await reader.get_all(probe)]
    assert sorted(received) == sorted(e.event_id for e in events), (
        f"split between relays: {[r.published for r in relays]}")
    await eventually(lambda: sum(relay.published for relay in relays) == 120)


async def test_the_relay_listens_again_after_its_connection_is_killed(
        *, pool: asyncpg.Pool, topic: str, probe: str, reader: QueueReader, make_bus: MakeBus,
        stop_after: list[OutboxRelay]) -> None:
    bus = make_bus()
    await bus.start()
    relay = OutboxRelay(pool, Publisher(bus), poll_interval=NEVER, backoff=Backoff(0.05, 0.2))
    stop_after.append(relay)
    await relay.start()
    await eventually(relay._listening, message="listening")
    listener = relay._listener

    await pool.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                       " WHERE query LIKE 'LISTEN%' AND datname = current_database()")
    await eventually(lambda: relay._listening() and relay._listener is not listener,
                     message="listening on a new connection")
    event = Event.new(f"{topic}.after", {})
    await commit_event(pool, event)

    message = await reader.take_one(probe)
    assert Event.from_bytes(message.body) == event
