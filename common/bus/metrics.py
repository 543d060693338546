"""Prometheus metrics of the bus: events published, consumed, failed and dead-lettered, outbox
backlog, broker connection state. One `BusMetrics` per registry, shared by the bus objects."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class BusMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        # A private registry by default, so objects built in tests never collide in the global one.
        self.registry = registry if registry is not None else CollectorRegistry()
        reg = self.registry
        self.published = Counter(
            "events_published_total", "Events confirmed by the broker.",
            ["routing_key"], registry=reg)
        self.consumed = Counter(
            "events_consumed_total",
            "Messages finished by a consumer (outcome: handled, duplicate, ignored).",
            ["consumer", "routing_key", "outcome"], registry=reg)
        self.failed = Counter(
            "events_failed_total", "Handler attempts that raised or timed out.",
            ["consumer", "routing_key"], registry=reg)
        self.dead_lettered = Counter(
            "events_dead_lettered_total", "Messages sent to a dead-letter queue.",
            ["consumer", "routing_key", "reason"], registry=reg)
        self.handle_seconds = Histogram(
            "event_handle_seconds", "Time from the start of handling to the ack.",
            ["consumer", "routing_key"], registry=reg)
        self.outbox_backlog = Gauge(
            "outbox_backlog", "Outbox rows not yet published.", registry=reg)
        self.outbox_oldest_seconds = Gauge(
            "outbox_oldest_unpublished_seconds", "Age of the oldest unpublished outbox row.",
            registry=reg)
        self.connected = Gauge(
            "bus_connected", "1 while the broker connection is up.", registry=reg)
        self.reconnects = Counter(
            "bus_connects_total", "Successful broker connections (the first one included).",
            registry=reg)
