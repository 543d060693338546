"""A client that stops reading never holds the others back: frames to it wait in its own bounded
queue while everyone else gets every event, and it is disconnected (1008) once its queue is full
or one send to it has waited longer than the send timeout."""

from __future__ import annotations

import time

from common.bus import Event
from common.testing import eventually
from realtime.tests.conftest import Bus, Client, Connect, MakeServer, metric

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
