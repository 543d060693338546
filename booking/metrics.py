"""Business counters of the booking service, on the app's registry (served at `/metrics`)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

from booking.states import Status, Transition


class BookingMetrics:
    """`source` says who caused a change: `customer`, `admin`, `payment` (an event) or `job`.
    Reasons typed by people never become labels: clients must not mint label values."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.created = Counter("bookings_created_total", "Bookings created (seats held)",
                               registry=registry)
        self.confirmed = Counter("bookings_confirmed_total", "Bookings confirmed", ["source"],
                                 registry=registry)
        self.cancelled = Counter("bookings_cancelled_total", "Bookings cancelled", ["source"],
                                 registry=registry)
        self.completed = Counter("bookings_completed_total", "Bookings completed", ["source"],
                                 registry=registry)
        self.changed = Counter("bookings_changed_total", "Pending bookings changed "
                               "(participants, contact, special requests)", ["source"],
                               registry=registry)
        self.payment_anomalies = Counter(
            "booking_payment_anomalies_total", "payment.succeeded events refused because they "
            "are not the booking's total: reason amount, currency or unverifiable (no amount); "
            "alert on any", ["reason"], registry=registry)

    def count(self, transition: Transition, source: str) -> None:
        """Count the status change a committed transition made, if it made one."""
        if transition.status_changed:
            self.count_status(transition.after.status, source)

    def count_status(self, status: Status, source: str, amount: int = 1) -> None:
        counter = {Status.CONFIRMED: self.confirmed, Status.CANCELLED: self.cancelled,
                   Status.COMPLETED: self.completed}.get(status)
        if counter is not None and amount:
            counter.labels(source).inc(amount)
