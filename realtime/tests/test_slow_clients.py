"""A client that stops reading never holds the others back: frames to it wait in its own bounded
queue while everyone else gets every event, and it is disconnected (1008) once its queue is full
or one send to it has waited longer than the send timeout, however it behaves meanwhile. A client
that leaves while frames stream to it is not taken for a slow one."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import time

import pytest

from common.bus import Event
from common.testing import eventually
from realtime import frames
from realtime.app_keys import HUB
from realtime.connection import Connection
from realtime.hub import Hub
from realtime.tests.conftest import Bus, Client, Connect, MakeServer, masked_ping, metric

PADDING = "x" * 32 * 1024  # large frames fill the stalled client's socket buffers in a few events


async def publish_until_dropped(server, bus: Bus, reader: Client, reason: str, *,
                                most: int = 300) -> list[float]:
    """Publish large `tour.availability.low` events one by one, each read by `reader`, until the
    server has dropped a client for `reason`; each event's latency as `reader` saw it."""
    latencies = []
    for _ in range(most):
        started = time.monotonic()
        event: Event = await bus.low(padding=PADDING)
        assert (await reader.next())["eventId"] == event.event_id
        latencies.append(time.monotonic() - started)
        if await metric(server, "realtime_clients_dropped_total", reason=reason):
            return latencies
    raise AssertionError(f"no client dropped for {reason} after {most} events")


async def test_a_client_that_stops_reading_is_dropped_when_its_queue_is_full(
        make_server: MakeServer, connect: Connect, stalled, bus: Bus) -> None:
    server = await make_server(REALTIME_SEND_QUEUE_SIZE="4", REALTIME_SEND_TIMEOUT="3600")
    reader = await connect(server)
    stuck = await stalled(server)

    latencies = await publish_until_dropped(server, bus, reader, "queue_full")

    assert await stuck.cut_off(), "the stalled client is disconnected"
    assert await metric(server, "realtime_clients_dropped_total", reason="send_timeout") == 0
    # The reader got every event, none of them held back by the stalled client (the bound is
    # loose: other suites share this machine; the benchmark measures the real figure).
    assert max(latencies) < 5, latencies
    await eventually(lambda: _connections(server, 1), message="only the reader left")
    after = await bus.low()
    assert (await reader.next())["eventId"] == after.event_id


async def test_a_send_waiting_longer_than_the_send_timeout_drops_the_client(
        make_server: MakeServer, connect: Connect, stalled, bus: Bus) -> None:
    server = await make_server(REALTIME_SEND_QUEUE_SIZE="10000", REALTIME_SEND_TIMEOUT="0.5")
    reader = await connect(server)
    stuck = await stalled(server)

    await publish_until_dropped(server, bus, reader, "send_timeout")

    assert await stuck.cut_off(), "the stalled client is disconnected"
    assert await metric(server, "realtime_clients_dropped_total", reason="queue_full") == 0
    await eventually(lambda: _connections(server, 1), message="only the reader left")


async def _connections(server, count: int) -> bool:
    return (await (await server.get("/health")).json())["connections"] == count


async def test_a_backed_up_client_that_keeps_pinging_is_still_dropped_and_cut_off(
        make_server: MakeServer, stalled) -> None:
    server = await make_server(REALTIME_SEND_QUEUE_SIZE="10000", REALTIME_SEND_TIMEOUT="1")
    hub: Hub = server.app[HUB]
    stuck = await stalled(server)
    await eventually(lambda: _hub_size(hub, 1), message="the client connected")
    (conn,) = hub._all
    large = frames.encode({"type": "tour.availability.low", "padding": PADDING})

    async def backed_up() -> bool:
        hub.broadcast(large)
        return conn.sending_since is not None

    await eventually(backed_up, message="a send waiting on the stalled socket")
    # Pings it will never read the answers of, as long as it keeps its socket open.
    await asyncio.get_running_loop().sock_sendall(stuck.sock, masked_ping(b"p" * 125) * 4000)

    await eventually(lambda: _dropped(server, "send_timeout"), message="dropped")
    # Its connection is reset while it still reads nothing (reading would free what waits).
    await eventually(lambda: _handler_ended(conn), message="its handler ended")
    assert conn.transport is not None and conn.transport.is_closing()
    assert await stuck.cut_off(), "the stalled client is disconnected"


async def _dropped(server, reason: str) -> bool:
    return await metric(server, "realtime_clients_dropped_total", reason=reason) == 1


async def _handler_ended(conn: Connection) -> bool:
    return conn.handler is not None and conn.handler.done()


@pytest.mark.parametrize("leaving", ["closes", "resets", "half_closes"])
async def test_a_client_that_goes_away_while_frames_stream_to_it_is_not_counted_as_dropped(
        server, stalled, leaving: str) -> None:
    # Frames handed to the hub on every turn of the loop (events through the broker come too
    # slowly to land between the client leaving and its handler cleaning up).
    hub: Hub = server.app[HUB]
    client = await stalled(server)
    reading = asyncio.create_task(_read_all(client.sock))
    streaming = asyncio.create_task(_stream(hub))
    try:
        await eventually(lambda: _hub_size(hub, 1), message="the client connected")
        if leaving == "half_closes":
            client.sock.shutdown(socket.SHUT_WR)
        else:
            reading.cancel()
            if leaving == "resets":
                client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            client.sock.close()
        await eventually(lambda: _hub_size(hub, 0), message="the client gone")
    finally:
        streaming.cancel()
        reading.cancel()
    for reason in ("queue_full", "send_timeout", "heartbeat_timeout"):
        assert await metric(server, "realtime_clients_dropped_total", reason=reason) == 0


async def test_stopping_a_backed_up_clients_writer_lets_the_callers_cancellation_through(
        make_server: MakeServer, stalled) -> None:
    server = await make_server(REALTIME_SEND_QUEUE_SIZE="10000", REALTIME_SEND_TIMEOUT="3600")
    hub: Hub = server.app[HUB]
    await stalled(server)
    await eventually(lambda: _hub_size(hub, 1), message="the client connected")
    (conn,) = hub._all
    large = frames.encode({"type": "tour.availability.low", "padding": PADDING})

    async def writer_waiting() -> bool:
        hub.broadcast(large)
        return conn.writer is not None and conn.sending_since is not None

    await eventually(writer_waiting, message="a send waiting on the stalled socket")

    stopping = asyncio.create_task(conn.stop_writing())
    await asyncio.sleep(0)  # one turn: it has cancelled the writer and waits for it to end
    stopping.cancel()

    with pytest.raises(asyncio.CancelledError):
        await stopping


async def _read_all(sock: socket.socket) -> None:
    loop = asyncio.get_running_loop()
    with contextlib.suppress(OSError):
        while await loop.sock_recv(sock, 65536):
            pass


async def _stream(hub: Hub) -> None:
    while True:
        hub.broadcast(frames.ping())
        await asyncio.sleep(0)


async def _hub_size(hub: Hub, count: int) -> bool:
    return len(hub) == count
