"""catalog as operators run it: its health with each dependency, its metrics, its API document,
and the process itself (`python -m catalog`) starting and stopping cleanly."""

from __future__ import annotations

import signal

from catalog.tests.conftest import Api, StartCatalogs, today
from common.bus import CONSUMERS
from common.testing import eventually


async def test_health_reports_every_dependency(api: Api):
    await eventually(lambda: api.client.app[CONSUMERS]["catalog"].is_consuming)
    health = await api.get("/health")
    assert health["status"] == "ok" and health["service"] == "catalog"
    assert set(health["checks"]) == {"database", "broker", "outbox", "consumer:catalog",
                                     "sweeper", "revocations"}
    assert all(check["status"] == "ok" for check in health["checks"].values())
    assert health["checks"]["database"]["critical"] is True
    assert health["checks"]["broker"]["critical"] is False  # holds work while it is away
    assert (await api.get("/health/ready")) == {"status": "ready"}


async def test_metrics_count_seats_and_report_the_fleet_totals(api: Api, conn):
    _, departure = await api.tour_with_departure(capacity=3)
    hold = await api.held(departure, 2)
    await api.hold_action(hold["bookingId"], "confirm")
    refused = await api.hold(departure["tourId"], departure["date"], 2)
    assert refused.status == 409
    assert await api.metric("catalog_seats_total", change="held") == 2
    assert await api.metric("catalog_seats_total", change="booked") == 2
    assert await api.metric("catalog_hold_requests_total", outcome="created") == 1
    assert await api.metric("catalog_hold_requests_total", outcome="refused") == 1
    # The gauges count every replica's seats: what the database holds, refreshed each sweep.
    totals = await conn.fetchrow("SELECT sum(held) AS held, sum(booked) AS booked"
                                 " FROM departures WHERE date > $1", today())

    async def gauges_caught_up() -> bool:
        return (await api.metric("catalog_seats_held"),
                await api.metric("catalog_seats_booked")) == (totals["held"], totals["booked"])

    await eventually(gauges_caught_up, message="the sweeper to refresh the gauges")
    assert await api.metric("http_requests_total", route="/internal/holds", status="409") == 1


async def test_the_api_document_lists_every_route(api: Api):
    document = await api.get("/openapi.json")
    assert set(document["paths"]) == {
        "/api/tours", "/api/tours/{tour}", "/api/tours/{tour}/departures",
        "/api/tours/{tour}/departures/{departure}", "/api/categories",
        "/api/categories/{category}", "/api/destinations", "/api/destinations/{destination}",
        "/internal/holds", "/internal/holds/{booking}", "/internal/holds/{booking}/confirm",
        "/internal/holds/{booking}/resize",
        "/internal/holds/{booking}/release"}
    hold = document["paths"]["/internal/holds"]["post"]
    assert hold["security"] == [{"serviceToken": []}]
    search = document["paths"]["/api/tours"]["get"]
    assert {"q", "from", "to", "minPrice", "sort", "limit"} <= {
        p["name"] for p in search["parameters"]}


def test_the_process_stops_cleanly_on_sigterm(start_catalogs: StartCatalogs):
    """The consumer drains, the sweeper and the relay stop, the pool closes: exit code 0."""
    [catalog] = start_catalogs(1)
    catalog.process.send_signal(signal.SIGTERM)
    assert catalog.process.wait(timeout=30) == 0
