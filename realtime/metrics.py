"""realtime's metrics, on the app's registry (served at `/metrics`). Label values come from our own
small sets (frame types, drop and refusal reasons), never from what a client sends."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, GCCollector


class RealtimeMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.connections = Gauge(
            "realtime_connections", "WebSocket clients connected to this process",
            registry=registry)
        self.sent = Counter(
            "realtime_messages_sent_total", "Frames written or queued to clients, by type",
            ["type"], registry=registry)
        self.events = Counter(
            "realtime_events_received_total", "Events taken from the bus, by type",
            ["type"], registry=registry)
        self.dropped = Counter(
            "realtime_clients_dropped_total", "Clients disconnected by the server for falling "
            "behind or going silent, by reason (queue_full, send_timeout, heartbeat_timeout)",
            ["reason"], registry=registry)
        # With thousands of connections a full collection stops the process for a few hundred
        # milliseconds: python_gc_collections_total{generation="2"} tells those moments.
        GCCollector(registry=registry)
        self.refused = Counter(
            "realtime_handshakes_refused_total", "WebSocket handshakes refused, by reason "
            "(not_websocket, origin, origin_missing, token, auth_unavailable, capacity, "
            "shutting_down)",
            ["reason"], registry=registry)
