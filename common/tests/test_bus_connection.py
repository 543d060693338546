"""The connection's lifecycle: `close()` ends a bus promptly and leaves nothing of it running,
wherever it lands in a reconnect attempt while the broker is out of reach, and may be repeated."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from yarl import URL

from common.bus import BrokerUnavailableError, BusConnection
from common.bus.backoff import Backoff
from common.bus.testing import TcpProxy
from common.tests.support import MakeBus, connected

# Without backoff, a bus that cannot reach the broker goes round its reconnect loop every dozen or
# so turns of the event loop (connect, fail, throw the connection away). Closing it after 0, 1,
# 2, ... turns therefore lands once on every await of an attempt, several attempts over: each
# point where a cancellation could be lost is hit on every run, not by luck.
TURNS = 48
NO_BACKOFF = Backoff(0.0, 0.0)
PROMPTLY = 2.0  # seconds; well below the bus timeout, which bounds one attempt


async def turns(count: int) -> None:
    """Let the event loop go round `count` times."""
    for _ in range(count):
        await asyncio.sleep(0)


async def close_leaves_running(bus: BusConnection, before: set[asyncio.Task[object]]) -> list[str]:
    """Close `bus`; the tasks started since `before`, the close included, that still run
    `PROMPTLY` seconds later (so: none).

    Bounded by `asyncio.wait` rather than `asyncio.timeout`: a close stuck on a bus that lost one
    cancellation can lose the timeout's too, and hang the test instead of failing it.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + PROMPTLY
    closing = asyncio.create_task(bus.close())
    await asyncio.wait([closing], timeout=PROMPTLY)
    # aiormq retires a dropped connection's tasks a few loop turns after the bus saw it close.
    started = {closing, *asyncio.all_tasks()} - before - {asyncio.current_task()}
    await asyncio.wait(started, timeout=max(0.0, deadline - loop.time()))
    left = {task for task in started if not task.done()}
    names = sorted(f"{task.get_name()}: {task.get_coro().__qualname__}" for task in left)
    await cancel_for_good(left)  # so that a failing test fails, rather than hang in its teardown
    return names


async def cancel_for_good(tasks: set[asyncio.Task[object]]) -> None:
    for _ in range(100):
        tasks = {task for task in tasks if not task.done()}
        if not tasks:
            return
        for task in tasks:
            task.cancel()
        await asyncio.wait(tasks, timeout=0.05)


class _HangUp(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.close()


@pytest.fixture
async def dead_end(amqp_url: str) -> AsyncIterator[str]:
    """`amqp_url` on a port that accepts connections and drops them at once, as a load balancer
    with no broker behind it does: every attempt gets as far as the AMQP handshake, and fails."""
    server = await asyncio.get_running_loop().create_server(_HangUp, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield str(URL(amqp_url).with_host("127.0.0.1").with_port(port))
    server.close()
    await server.wait_closed()


async def test_close_ends_a_bus_cut_off_from_the_broker_at_any_point_of_its_reconnect_loop(
        *, amqp_url: str, proxy: TcpProxy, make_bus: MakeBus) -> None:
    still_running: dict[int, list[str]] = {}
    for turn in range(TURNS):
        before = asyncio.all_tasks()
        bus = await connected(make_bus(proxy.url_for(amqp_url), backoff=NO_BACKOFF))
        await proxy.stop()  # connections refused from now on
        await turns(turn)

        if left := await close_leaves_running(bus, before):
            still_running[turn] = left
        await proxy.start()  # for the next bus

    assert not still_running, f"running after close(), by loop turns after the cut: {still_running}"


async def test_close_ends_a_bus_whose_broker_drops_every_handshake_at_any_point_of_its_attempts(
        *, dead_end: str, make_bus: MakeBus) -> None:
    still_running: dict[int, list[str]] = {}
    for turn in range(TURNS):
        before = asyncio.all_tasks()
        bus = make_bus(dead_end, backoff=NO_BACKOFF)
        await bus.start()
        await turns(turn)

        if left := await close_leaves_running(bus, before):
            still_running[turn] = left

    assert not still_running, f"running after close(), by loop turns after start: {still_running}"


async def test_close_may_be_called_again_and_concurrently(make_bus: MakeBus) -> None:
    bus = await connected(make_bus())

    await asyncio.gather(bus.close(), bus.close())
    await bus.close()

    assert not bus.is_connected
    assert bus.metrics.registry.get_sample_value("bus_connected") == 0
    with pytest.raises(BrokerUnavailableError, match="closed"):
        await bus.wait_connected()
