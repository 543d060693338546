"""Business counters of the payments service, on the app's registry (served at `/metrics`)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

from payments.states import ANOMALY_KINDS


class PaymentMetrics:
    """Label values come from our own small sets, never from clients or Stripe's free text."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.intents_created = Counter(
            "payment_intents_created_total", "PaymentIntents created at Stripe",
            registry=registry)
        self.webhooks = Counter(
            "stripe_webhooks_total", "Stripe webhooks received, by outcome "
            "(applied, duplicate, ignored, rejected)", ["outcome"], registry=registry)
        self.refunds = Counter(
            "payment_refunds_total", "Refunds Stripe took on, by source (admin, cancellation)",
            ["source"], registry=registry)
        self.reconciled = Counter(
            "payments_reconciled_total", "Payments whose state reconciliation changed",
            registry=registry)
        self.anomalies = Counter(
            "payments_anomalies_total", "What Stripe reported that our records refused, by kind "
            "(amount_mismatch, refund_exceeds_payment), as this process found it",
            ["kind"], registry=registry)
        self.unresolved = Gauge(
            "payments_anomalies_unresolved", "Anomalies not yet resolved, by kind, across every "
            "payment (all replicas: read it with max)", ["kind"], registry=registry)
        for kind in ANOMALY_KINDS:  # exported at 0 from the start, so a rule sees the series
            self.anomalies.labels(kind)
            self.unresolved.labels(kind).set(0)

    def set_unresolved(self, counts: dict[str, int]) -> None:
        for kind in ANOMALY_KINDS:
            self.unresolved.labels(kind).set(counts.get(kind, 0))
