"""realtime as it runs in production: `python -m realtime` processes. Each has a broadcast queue of
its own, so with several replicas every client gets every event; on SIGTERM every client is told
1001 GOING_AWAY at once, a stalled one included."""

from __future__ import annotations

import asyncio
import time
import uuid

from common.testing import eventually
from ops import infra
from ops.stack import Stack
from realtime.tests.conftest import Bus, Connect, metric


async def test_with_two_processes_one_event_reaches_the_clients_of_both(
        stack: Stack, connect: Connect, bus: Bus, run_id: str) -> None:
    names = [f"pod-{n}-{uuid.uuid4().hex[:6]}" for n in (1, 2)]
    one, two = (stack.start("realtime", REALTIME_INSTANCE=name) for name in names)
    clients = [await connect(one), await connect(two)]
    await eventually(lambda: _consuming(one, two), message="both consumers subscribed")

    event = await bus.low()

    for client in clients:
        frame = await client.next()
        assert frame["type"] == "tour.availability.low" and frame["eventId"] == event.event_id
    # One exclusive, auto-deleted queue per process, each bound to the events realtime pushes.
    vhost = f"tourbook-{run_id}-realtime"
    queues = {tuple(line.split("\t")) for line in infra.rabbitmqctl(
        "list_queues", "-p", vhost, "name", "exclusive", "auto_delete").splitlines()}
    bindings = {tuple(line.split("\t")) for line in infra.rabbitmqctl(
        "list_bindings", "-p", vhost, "destination_name", "routing_key").splitlines()}
    for name in names:
        queue = f"websocket_availability_queue.{name}"
        assert (queue, "true", "true") in queues
        assert {(queue, "tour.availability.*"), (queue, "booking.*")} <= bindings


async def _consuming(*urls: str) -> bool:
    for url in urls:
        if await metric(url, "bus_connected") != 1:
            return False
    return True


async def test_on_sigterm_every_client_gets_going_away_promptly_a_stalled_one_included(
        stack: Stack, connect: Connect, stalled, bus: Bus) -> None:
    url = stack.start("realtime", REALTIME_CLOSE_TIMEOUT="1", SHUTDOWN_TIMEOUT="30")
    clients = [await connect(url) for _ in range(2)]
    stuck = await stalled(url)
    for _ in range(80):  # fill the stalled client's socket buffers, as far as they go
        await bus.low(padding="x" * 32 * 1024)
    for client in clients:
        for _ in range(80):
            await client.next()

    closing = [asyncio.create_task(client.closed()) for client in clients]  # as browsers read

    started = time.monotonic()
    await asyncio.to_thread(stack.stop_one, url)
    took = time.monotonic() - started

    assert await asyncio.gather(*closing) == [1001, 1001]
    assert await stuck.cut_off()
    assert took < 10, f"shutdown took {took:.1f}s"
    log = stack.logs / "realtime-1.log"
    lines = [line for line in log.read_text().splitlines() if "client_disconnected" in line]
    assert sum('"reason": "shutdown"' in line and '"code": 1001' in line
               for line in lines) == 3, lines
