"""The queues each service declares in its `consumers.py`: the original's names and bindings,
documented for operators, and declared by `migrate` (and `up`) before any service starts."""

from __future__ import annotations

import asyncio

from common.bus import EXCHANGE, BroadcastQueue, Event, QueueSpec
from common.bus.testing import QueueReader
from ops import services
from ops.paths import ROOT
from ops.tests.conftest import ops


def declared() -> dict[str, QueueSpec | BroadcastQueue]:
    return {service.name: queue for service in services.REGISTRY
            if services.exists(service.name) and (queue := services.queue(service)) is not None}


def test_each_consuming_service_declares_the_original_queue_and_bindings() -> None:
    queues = declared()

    assert {name: (queue.name, set(queue.bindings)) for name, queue in queues.items()
            if isinstance(queue, QueueSpec)} == {
        "catalog": ("tour_catalog_queue", {"booking.confirmed", "booking.cancelled"}),
        "booking": ("booking_payment_queue", {"payment.*"}),
        "payments": ("payment_booking_queue", {"booking.cancelled"}),
        "notify": ("notification_queue", {"booking.*", "payment.*", "tour.availability.low"}),
    }
    assert all(queue.durable and not queue.exclusive for queue in queues.values()
               if isinstance(queue, QueueSpec))
    # realtime: one queue per process, `websocket_availability_queue.<instance>`.
    assert queues["realtime"] == BroadcastQueue("websocket_availability_queue",
                                                ("tour.availability.*", "booking.*"))


def test_the_operator_documentation_names_every_queue_binding_and_dead_letter_queue() -> None:
    text = (ROOT / "docs" / "events.md").read_text()

    for queue in declared().values():
        name = queue.base if isinstance(queue, BroadcastQueue) else queue.name
        assert f"`{name}" in text
        assert f"`{queue.dlq}`" in text
        for binding in queue.bindings:
            assert f"`{binding}`" in text


def test_migrate_declares_the_queue_a_service_consumes_before_it_runs(
        ops_env: dict[str, str]) -> None:
    result = ops(ops_env, "migrate")

    assert result.returncode == 0, result.stdout
    assert ("tbdummy: queue tbdummy_queue (tbdummy.noted); dead letters in tbdummy_queue.dlq"
            in result.stdout)

    async def collects_events() -> None:
        reader = await QueueReader.open(ops_env["AMQP_URL"])
        try:
            await reader.channel.queue_purge("tbdummy_queue", timeout=10)
            await reader.publish_raw(Event.new("tbdummy.noted", {}).to_json(),
                                     exchange=EXCHANGE, routing_key="tbdummy.noted")
            await reader.wait_depth("tbdummy_queue", 1)
            assert await reader.depth("tbdummy_queue.dlq") == 0
        finally:
            await reader.close()

    asyncio.run(collects_events())
