"""Business counters of the payments service, on the app's registry (served at `/metrics`)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter


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
