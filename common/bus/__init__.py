"""The event bus: envelope, topology mechanism, self-healing connection, confirmed publishing,
transactional outbox, actor-style consumers, and their aiohttp wiring. See docs/events.md."""

from common.bus.app import (
    BUS,
    BUS_METRICS,
    CONSUMERS,
    PUBLISHER,
    RELAY,
    ConsumerFactory,
    bus_ctx,
    consumer_ctx,
    relay_ctx,
)
from common.bus.connection import BrokerUnavailableError, BusConnection
from common.bus.consumer import Consumer, ConsumerNotRunningError
from common.bus.envelope import Event, MalformedEventError
from common.bus.handlers import HandlerContext, RetryLater
from common.bus.metrics import BusMetrics
from common.bus.outbox import OutboxRelay, OutboxStalledError, add_event
from common.bus.publisher import Publisher, PublishError
from common.bus.tables import BUS_MIGRATIONS
from common.bus.topology import (
    DEAD_LETTER_EXCHANGE,
    EXCHANGE,
    BroadcastQueue,
    QueueSpec,
    TopologyError,
    TopologyMismatch,
)

__all__ = [
    "BUS",
    "BUS_METRICS",
    "BUS_MIGRATIONS",
    "CONSUMERS",
    "DEAD_LETTER_EXCHANGE",
    "EXCHANGE",
    "PUBLISHER",
    "RELAY",
    "BroadcastQueue",
    "BrokerUnavailableError",
    "BusConnection",
    "BusMetrics",
    "Consumer",
    "ConsumerFactory",
    "ConsumerNotRunningError",
    "Event",
    "HandlerContext",
    "MalformedEventError",
    "OutboxRelay",
    "OutboxStalledError",
    "PublishError",
    "Publisher",
    "QueueSpec",
    "RetryLater",
    "TopologyError",
    "TopologyMismatch",
    "add_event",
    "bus_ctx",
    "consumer_ctx",
    "relay_ctx",
]
