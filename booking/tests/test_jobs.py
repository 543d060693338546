"""The jobs, run one pass at a time: expiry releases seats through booking.cancelled, completion
follows the departure date, abandoned holds are given back, and two runners never handle one
booking twice."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from booking.app_keys import JOBS
from booking.tests.conftest import (
    Catalog,
    LateHold,
    MakeBooking,
    SilentServer,
    book,
    departure_locked,
    metric,
    outbox,
    status_of,
)
from common.bus.testing import EventProbe
from common.testing import bearer, eventually


async def test_an_unpaid_booking_expires_at_its_expiry_and_its_seats_come_back(
        booking: TestClient, catalog: Catalog, customer: dict[str, Any], probe: EventProbe) -> None:
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
    event, *_ = await probe.wait_for(created["id"], "booking.cancelled")
    assert event["data"]["cancellationReason"] == "expired"
    await eventually(lambda: catalog.seats_are(departure, 10), message="seats released")
    assert await catalog.hold_state(created["id"]) == "released"
    assert metric(booking, "bookings_cancelled_total", source="job") >= 1


async def test_a_confirmed_booking_completes_once_its_departure_date_has_passed(
        *, booking: TestClient, catalog: Catalog, customer: dict[str, Any],
        admin: dict[str, Any], probe: EventProbe, booking_db: asyncpg.Connection) -> None:
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
    event, *_ = await probe.wait_for(created["id"], "booking.completed")
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
    await eventually(lambda: catalog.seats_are(departure, 12), message="all seats released")


async def test_a_hold_nobody_came_back_for_is_released(
        make_booking: MakeBooking, catalog: Catalog, customer: dict[str, Any],
        late_hold: LateHold, booking_db: asyncpg.Connection) -> None:
    booking = await make_booking(CATALOG_URL=catalog.url, BOOKING_CATALOG_TIMEOUT="0.5")
    departure = await catalog.departure(max_group_size=10)
    claimed = await late_hold(booking, departure, bearer(customer), 4)
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
    await eventually(lambda: catalog.seats_are(departure, 10), message="seats released")


async def test_a_hold_no_retry_can_use_is_released_once_its_request_lease_ends(
        make_booking: MakeBooking, catalog: Catalog, customer: dict[str, Any],
        late_hold: LateHold) -> None:
    # Without an Idempotency-Key nothing can ever take the timed-out request over: its late hold
    # must not keep the traveller's own retry out of the last seats for the whole hold TTL.
    booking = await make_booking(CATALOG_URL=catalog.url, BOOKING_CATALOG_TIMEOUT="0.5",
                                 BOOKING_REQUEST_LEASE="5")
    departure = await catalog.departure(max_group_size=4)
    claimed = await late_hold(booking, departure, bearer(customer), 4)
    retry = await booking.post("/api/bookings", headers=bearer(customer),
                               json=departure.booking(4))
    assert retry.status == 409  # held by the request that timed out
    jobs = booking.app[JOBS]

    released = await jobs.release_abandoned_holds(now=datetime.now(UTC) + timedelta(seconds=6))

    assert released >= 1
    assert await catalog.hold_state(str(claimed)) == "released"
    await book(booking, customer, departure, participants=4)


async def test_a_hold_a_keyed_retry_may_still_use_is_kept_for_the_hold_ttl(
        make_booking: MakeBooking, catalog: Catalog, customer: dict[str, Any],
        late_hold: LateHold) -> None:
    booking = await make_booking(CATALOG_URL=catalog.url, BOOKING_CATALOG_TIMEOUT="0.5",
                                 BOOKING_REQUEST_LEASE="5")
    departure = await catalog.departure(max_group_size=4)
    key = str(uuid.uuid4())
    claimed = await late_hold(booking, departure, {**bearer(customer), "Idempotency-Key": key}, 4)

    await booking.app[JOBS].release_abandoned_holds(now=datetime.now(UTC) + timedelta(minutes=5))

    assert await catalog.hold_state(str(claimed)) == "held"
    retried = await booking.post("/api/bookings", headers={**bearer(customer),
                                                          "Idempotency-Key": key},
                                 json=departure.booking(4))
    assert retried.status == 201
    assert (await retried.json())["id"] == str(claimed)


async def test_the_hold_of_a_request_still_storing_its_booking_is_not_released(
        make_booking: MakeBooking, catalog: Catalog, customer: dict[str, Any],
        booking_database: str, booking_db: asyncpg.Connection) -> None:
    # A request slower than its lease (its database was slow) must not end up with a booking
    # whose seats the abandoned-hold job gave back meanwhile.
    booking = await make_booking(CATALOG_URL=catalog.url, BOOKING_CATALOG_TIMEOUT="0.5",
                                 BOOKING_REQUEST_LEASE="2.5")
    departure = await catalog.departure(max_group_size=10)
    blocker = await asyncpg.connect(booking_database)  # the slow database: inserts wait
    try:
        async with blocker.transaction():
            await blocker.execute("LOCK TABLE bookings IN EXCLUSIVE MODE")
            request = asyncio.create_task(booking.post(
                "/api/bookings", headers=bearer(customer), json=departure.booking(3)))
            await eventually(lambda: booking_db.fetchval(
                "SELECT true FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                " AND query LIKE 'INSERT INTO bookings%'"), message="insert waiting")
            claimed = await booking_db.fetchval(
                "SELECT booking_id FROM booking_requests WHERE answered_at IS NULL"
                " ORDER BY created_at DESC LIMIT 1")

            await booking.app[JOBS].release_abandoned_holds(
                now=datetime.now(UTC) + timedelta(hours=1))

            assert await catalog.hold_state(str(claimed)) == "held"
    finally:
        await blocker.close()
    resp = await request
    assert resp.status == 201, await resp.text()
    assert (await resp.json())["id"] == str(claimed)
    assert await catalog.available_seats(departure) == 7


@pytest.mark.parametrize("release", ["answered", "timed out at booking"])
async def test_a_request_whose_hold_the_job_released_stores_no_booking(
        *, make_booking: MakeBooking, catalog: Catalog, customer: dict[str, Any],
        silent_server: SilentServer, catalog_database: str, booking_db: asyncpg.Connection,
        release: str) -> None:
    # The request outlived its lease before storing its booking, and the job gave its seats
    # back (or asked catalog to: the answer may be lost while catalog still does it). Storing
    # the booking now would sell seats nobody holds.
    booking = await make_booking(CATALOG_URL=catalog.url, BOOKING_CATALOG_TIMEOUT="1",
                                 AUTH_URL=silent_server.url, BOOKING_AUTH_TIMEOUT="20",
                                 BOOKING_REQUEST_LEASE="25")
    departure = await catalog.departure(max_group_size=10)
    started = await booking_db.fetchval("SELECT now()")
    request = asyncio.create_task(booking.post("/api/bookings", headers=bearer(customer),
                                               json=departure.booking(3)))
    claimed = await eventually(lambda: booking_db.fetchval(
        "SELECT booking_id FROM booking_requests WHERE answered_at IS NULL"
        " AND user_id = $1 AND created_at >= $2", uuid.UUID(customer["user"]["id"]), started),
        message="request claimed")
    await eventually(lambda: catalog.hold(str(claimed)), message="seats held")
    later = datetime.now(UTC) + timedelta(hours=1)

    if release == "answered":
        await booking.app[JOBS].release_abandoned_holds(now=later)
    else:  # booking stops waiting for catalog's answer; catalog releases once it can
        async with departure_locked(catalog_database, departure):
            await booking.app[JOBS].release_abandoned_holds(now=later)
            assert await booking_db.fetchval(
                "SELECT abandoned_at IS NOT NULL FROM booking_requests WHERE booking_id = $1",
                claimed)
    await eventually(lambda: catalog.hold_is(str(claimed), "released"))
    silent_server.hang_up.set()
    resp = await request

    assert resp.status == 503, await resp.text()
    assert await booking_db.fetchval("SELECT count(*) FROM bookings WHERE id = $1", claimed) == 0
    assert await catalog.available_seats(departure) == 10

