"""The jobs, run one pass at a time: expiry releases seats through booking.cancelled, completion
follows the departure date, abandoned holds are given back, and two runners never handle one
booking twice."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from aiohttp.test_utils import TestClient

from booking.app_keys import JOBS
from booking.tests.conftest import (
    Catalog,
    Departure,
    MakeBooking,
    Probe,
    bearer,
    book,
    departure_locked,
    metric,
    outbox,
    status_of,
)
from common.testing import eventually


async def seats_are(catalog: Catalog, departure: Departure, expected: int) -> bool:
    return await catalog.available_seats(departure) == expected


async def test_an_unpaid_booking_expires_at_its_expiry_and_its_seats_come_back(
        booking: TestClient, catalog: Catalog, customer: dict[str, Any], probe: Probe) -> None:
    departure = await catalog.departure(max_group_size=10)
    created = await book(booking, customer, departure, participants=3)
    expires = datetime.fromisoformat(created["expiresAt"])
    jobs = booking.app[JOBS]

    await jobs.expire_due(now=expires - timedelta(seconds=1))
    assert await status_of(booking, customer, created["id"]) == ("pending", "unpaid")

    await jobs.expire_due(now=expires)

    resp = await booking.get(f"/api/bookings/{created['id']}", headers=bearer(customer))
    expired = await resp.json()
    assert (expired["status"], expired["cancellationReason"]) == ("cancelled", "expired")
    event = await probe.wait_for(created["id"], "booking.cancelled")
    assert event["data"]["cancellationReason"] == "expired"
    await eventually(lambda: seats_are(catalog, departure, 10), message="seats released")
    assert await catalog.hold_state(created["id"]) == "released"
    assert metric(booking, "bookings_cancelled_total", source="job") >= 1


async def test_a_confirmed_booking_completes_once_its_departure_date_has_passed(
        *, booking: TestClient, catalog: Catalog, customer: dict[str, Any],
        admin: dict[str, Any], probe: Probe, booking_db: asyncpg.Connection) -> None:
    departure = await catalog.departure()
    created = await book(booking, customer, departure)
    resp = await booking.patch(f"/api/bookings/{created['id']}/status", headers=bearer(admin),
                               json={"status": "confirmed"})
    assert resp.status == 200
    jobs = booking.app[JOBS]

    await jobs.complete_departed(today=departure.tour_date)
    assert await status_of(booking, customer, created["id"]) == ("confirmed", "unpaid")

    await jobs.complete_departed(today=departure.tour_date + timedelta(days=1))

    assert await status_of(booking, customer, created["id"]) == ("completed", "unpaid")
    event = await probe.wait_for(created["id"], "booking.completed")
    assert event["data"]["status"] == "completed"
    assert await outbox(booking_db, created["id"]) == ["booking.confirmed", "booking.completed"]


async def test_two_runners_at_once_expire_each_booking_once(
        make_booking: MakeBooking, catalog: Catalog, customer: dict[str, Any],
        booking_db: asyncpg.Connection) -> None:
    first = await make_booking(CATALOG_URL=catalog.url, BOOKING_JOBS_BATCH_SIZE="2")
    second = await make_booking(CATALOG_URL=catalog.url, BOOKING_JOBS_BATCH_SIZE="2")
    departure = await catalog.departure(max_group_size=10, capacity=12)
    made = [(await book(first, customer, departure, participants=2))["id"] for _ in range(6)]
    later = datetime.now(UTC) + timedelta(hours=1)

    await asyncio.gather(first.app[JOBS].expire_due(now=later),
                         second.app[JOBS].expire_due(now=later))

    for booking_id in made:
        assert await outbox(booking_db, booking_id) == ["booking.cancelled"]
    statuses = await booking_db.fetch(
        "SELECT status, cancellation_reason FROM bookings WHERE id = ANY($1::uuid[])",
        [uuid.UUID(b) for b in made])
    assert {tuple(row) for row in statuses} == {("cancelled", "expired")}
    await eventually(lambda: seats_are(catalog, departure, 12), message="all seats released")


async def test_a_hold_nobody_came_back_for_is_released(
        make_booking: MakeBooking, catalog: Catalog, customer: dict[str, Any],
        catalog_database: str, booking_db: asyncpg.Connection) -> None:
    booking = await make_booking(CATALOG_URL=catalog.url, BOOKING_CATALOG_TIMEOUT="0.5")
    departure = await catalog.departure(max_group_size=10)
    async with departure_locked(catalog_database, departure):
        resp = await booking.post("/api/bookings", headers=bearer(customer),
                                  json=departure.booking(4))
        assert resp.status == 503
    claimed = await booking_db.fetchval(
        "SELECT booking_id FROM booking_requests WHERE answered_at IS NULL"
        " ORDER BY created_at DESC LIMIT 1")
    await eventually(lambda: catalog.hold(str(claimed)), message="catalog made the hold late")
    assert await catalog.available_seats(departure) == 6
    jobs = booking.app[JOBS]

    assert await jobs.release_abandoned_holds() == 0  # a retry may still come for it
    released = await jobs.release_abandoned_holds(now=datetime.now(UTC) + timedelta(hours=1))

    assert released >= 1
    assert await catalog.hold_state(str(claimed)) == "released"
    assert await catalog.available_seats(departure) == 10
    assert await booking_db.fetchval(
        "SELECT count(*) FROM booking_requests WHERE booking_id = $1", claimed) == 0


async def test_the_background_jobs_expire_bookings_on_their_own(
        make_booking: MakeBooking, catalog: Catalog, customer: dict[str, Any]) -> None:
    booking = await make_booking(CATALOG_URL=catalog.url, BOOKING_HOLD_TTL="1",
                                 BOOKING_JOBS_INTERVAL="0.2")
    departure = await catalog.departure(max_group_size=10)
    created = await book(booking, customer, departure, participants=5)

    async def expired() -> bool:
        return await status_of(booking, customer, created["id"]) == ("cancelled", "unpaid")

    await eventually(expired, timeout=15, message="expired by the background pass")
    await eventually(lambda: seats_are(catalog, departure, 10), message="seats released")
