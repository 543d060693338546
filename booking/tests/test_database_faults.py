"""booking losing its database mid-transaction, for real: a proxy between booking and PostgreSQL
cuts every connection as a chosen statement goes out and hangs up on new ones until the test
restores it. The request answers 503 with Retry-After in the envelope, nothing is left half
applied once the clean-up ran, and booking serves again as soon as the database is back."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from booking.app_keys import JOBS
from booking.tests.conftest import (
    Catalog,
    LosableDatabase,
    MakeBooking,
    PaymentsStandIn,
    book,
)
from common.testing import bearer


async def unavailable(resp: ClientResponse) -> None:
    assert resp.status == 503, await resp.text()
    assert int(resp.headers["Retry-After"]) >= 1
    body = await resp.json()
    assert (body["status"], body["error"]) == (503, "SERVICE_UNAVAILABLE")
    assert "database" in body["message"]


async def serves_again(booking: TestClient, catalog: Catalog, who: dict[str, Any]) -> None:
    listed = await booking.get("/api/bookings", headers=bearer(who))
    assert listed.status == 200
    await book(booking, who, await catalog.departure())


async def test_a_booking_cut_off_mid_transaction_is_503_and_leaves_no_hold_behind(
        *, make_booking: MakeBooking, catalog: Catalog, customer: dict[str, Any],
        losable_database: LosableDatabase, booking_db: asyncpg.Connection) -> None:
    booking = await make_booking(CATALOG_URL=catalog.url,
                                 BOOKING_DATABASE_URL=losable_database.url)
    departure = await catalog.departure(max_group_size=10)
    # The request's claim commits, catalog holds the seats, then the database goes away
    # between the claim's lock and the booking's INSERT, inside their transaction.
    losable_database.proxy.cut_when_sent(b"INSERT INTO bookings")

    resp = await booking.post("/api/bookings", headers=bearer(customer),
                              json=departure.booking(3))

    await unavailable(resp)
    assert losable_database.proxy.cuts == 1
    await unavailable(await booking.get("/api/bookings", headers=bearer(customer)))
    assert await booking_db.fetchval("SELECT count(*) FROM bookings WHERE tour_id = $1",
                                     uuid.UUID(departure.tour_id)) == 0
    [claimed] = await booking_db.fetch(
        "SELECT booking_id FROM booking_requests WHERE answered_at IS NULL"
        " AND user_id = $1", uuid.UUID(customer["user"]["id"]))
    assert await catalog.hold_state(str(claimed["booking_id"])) == "held"

    losable_database.proxy.restore()
    released = await booking.app[JOBS].release_abandoned_holds(
        now=datetime.now(UTC) + timedelta(minutes=5))

    assert released == 1
    assert await catalog.hold_state(str(claimed["booking_id"])) == "released"
    assert await catalog.available_seats(departure) == 10
    assert await booking_db.fetchval("SELECT count(*) FROM booking_requests WHERE"
                                     " booking_id = $1", claimed["booking_id"]) == 0
    await serves_again(booking, catalog, customer)


async def test_a_change_cut_off_mid_transaction_is_503_and_changes_nothing(
        *, make_booking: MakeBooking, catalog: Catalog, payments: PaymentsStandIn,
        customer: dict[str, Any], losable_database: LosableDatabase,
        booking_db: asyncpg.Connection) -> None:
    booking = await make_booking(CATALOG_URL=catalog.url, PAYMENTS_URL=payments.url,
                                 BOOKING_DATABASE_URL=losable_database.url)
    departure = await catalog.departure(price=1000, max_group_size=10)
    created = await book(booking, customer, departure, participants=2)
    # Catalog held two more seats and payments set the new amount; the database goes away as
    # the booking row is about to change.
    losable_database.proxy.cut_when_sent(b"total_amount     = unit_price")

    resp = await booking.patch(f"/api/bookings/{created['id']}", json={"participants": 4},
                               headers={**bearer(customer), "If-Match": '"1"'})

    await unavailable(resp)
    assert losable_database.proxy.cuts == 1
    assert (await catalog.hold(created["id"]) or {})["seats"] == 2
    assert payments.amounts_asked(created["id"]) == [4000, 2000]
    stored = await booking_db.fetchrow("SELECT participants, total_amount, version FROM"
                                       " bookings WHERE id = $1", uuid.UUID(created["id"]))
    assert tuple(stored) == (2, 2000, 1)

    losable_database.proxy.restore()
    await booking.app[JOBS].settle_changes(now=datetime.now(UTC) + timedelta(minutes=5))
    assert await booking_db.fetchval("SELECT count(*) FROM booking_changes") == 0
    assert (await catalog.hold(created["id"]) or {})["seats"] == 2
    await serves_again(booking, catalog, customer)
