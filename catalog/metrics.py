"""catalog's own Prometheus metrics, on the app's registry beside the HTTP and bus ones."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge


class SeatMetrics:
    """Seat movements counted by this process, and fleet-wide totals refreshed by the sweeper.

    Counts are taken when a change is made; a transaction that then fails to commit (rare: the
    change is already written) is counted anyway, so read them as rates, not as the ledger.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.seats = Counter(
            "catalog_seats_total", "Seats moved by this process: held (a new hold), booked "
            "(confirmed), released (cancelled or released), expired (orphan released by the "
            "sweeper)", ["change"], registry=registry)
        self.holds = Counter(
            "catalog_hold_requests_total", "Hold requests by outcome: created, repeated (same "
            "booking id), refused (not enough seats)", ["outcome"], registry=registry)
        self.confirmations_without_seats = Counter(
            "catalog_confirmations_without_seats_total", "Confirmations of a released hold whose "
            "seats had gone to others meanwhile: not booked (never overbooked); the booking "
            "needs a refund", registry=registry)
        self.held = Gauge("catalog_seats_held", "Seats held on future departures (all replicas)",
                          registry=registry)
        self.booked = Gauge("catalog_seats_booked",
                            "Seats booked on future departures (all replicas)", registry=registry)

    def moved(self, change: str | None, seats: int) -> None:
        if change is not None:
            self.seats.labels(change).inc(seats)
