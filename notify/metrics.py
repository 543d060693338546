"""notify's counters and timings, on the app's registry (served at `/metrics`)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class NotifyMetrics:
    """Label values come from our own small sets (channels, template names, statuses)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.deliveries = Counter(
            "notify_deliveries_total", "Messages by outcome: sent, failed (for good or given "
            "up), retrying (a transient failure) or skipped (opted out, no phone...)",
            ["channel", "template", "status"], registry=registry)
        self.send_seconds = Histogram(
            "notify_send_seconds", "Time to hand one message to the SMTP server or the SMS "
            "provider, failures included", ["channel"], registry=registry)
