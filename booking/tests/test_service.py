"""What operators see of booking: /health with each dependency, the business counters in
/metrics, and the API described in /openapi.json."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from booking.tests.conftest import Catalog, book
from common.testing import bearer


async def test_health_reports_the_database_the_bus_catalog_and_payments(
        booking: TestClient) -> None:
    resp = await booking.get("/health")

    assert resp.status == 200
    checks = (await resp.json())["checks"]
    assert set(checks) == {"database", "broker", "outbox", "consumer:booking", "catalog",
                           "payments", "revocations"}
    assert all(check["status"] == "ok" for check in checks.values())
    # Only the database decides readiness: without the broker, bookings still go to the outbox.
    assert [name for name, check in checks.items() if check["critical"]] == ["database"]
    assert (await booking.get("/health/ready")).status == 200


async def test_metrics_count_bookings_created_and_cancelled(
        booking: TestClient, catalog: Catalog, customer: dict[str, Any]) -> None:
    departure = await catalog.departure()
    created = await book(booking, customer, departure)
    await booking.post(f"/api/bookings/{created['id']}/cancel", headers=bearer(customer),
                       json={})

    text = await (await booking.get("/metrics")).text()

    assert "bookings_created_total 1.0" in text
    assert 'bookings_cancelled_total{source="customer"} 1.0' in text
    assert "bookings_confirmed_total" in text
    assert 'http_requests_total{method="POST",route="/api/bookings",service="booking",' \
           'status="201"} 1.0' in text


async def test_the_openapi_document_describes_every_booking_route(booking: TestClient) -> None:
    document = await (await booking.get("/openapi.json")).json()
    operations = {(path, method) for path, item in document["paths"].items()
                  for method in item}
    assert operations >= {
        ("/api/bookings", "post"), ("/api/bookings", "get"), ("/api/bookings/{id}", "get"),
        ("/api/bookings/{id}/cancel", "post"), ("/api/bookings/{id}/status", "patch"),
        ("/api/bookings/{id}/payment-status", "patch")}
    created = document["paths"]["/api/bookings"]["post"]["responses"]
    assert {"201", "400", "401", "404", "409", "422", "503"} <= set(created)
