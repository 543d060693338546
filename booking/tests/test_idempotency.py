"""Idempotency-Key on POST /api/bookings: one booking per key and body, whatever the retries.

Catalog is made slow for real where a test needs a request in flight: a transaction on catalog's
database holds the departure's row lock, so catalog's hold waits for it to end.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from booking.app_keys import JOBS
from booking.tests.conftest import Catalog, LateHold, MakeBooking, book, departure_locked
from common.testing import bearer, eventually


def keyed(who: dict[str, Any], key: str) -> dict[str, str]:
    return {**bearer(who), "Idempotency-Key": key}


async def bookings_of(conn: asyncpg.Connection, tour_id: str) -> list[str]:
    rows = await conn.fetch("SELECT id FROM bookings WHERE tour_id = $1", uuid.UUID(tour_id))
    return [str(row["id"]) for row in rows]


async def test_the_same_key_and_body_give_one_booking_and_the_same_response(
        booking: TestClient, catalog: Catalog, customer: dict[str, Any],
        booking_db: asyncpg.Connection) -> None:
    departure = await catalog.departure()
    key = str(uuid.uuid4())

    first = await booking.post("/api/bookings", headers=keyed(customer, key),
                               json=departure.booking(2))
    again = await booking.post("/api/bookings", headers=keyed(customer, key),
                               json=departure.booking(2))

    assert (first.status, again.status) == (201, 201)
    assert await again.json() == await first.json()
    assert await again.read() == await first.read()  # byte for byte, key order included
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert await bookings_of(booking_db, departure.tour_id) == [(await first.json())["id"]]
    assert await catalog.available_seats(departure) == 8


async def test_the_same_key_with_another_body_is_422(
        booking: TestClient, catalog: Catalog, customer: dict[str, Any],
        booking_db: asyncpg.Connection) -> None:
    departure = await catalog.departure()
    key = str(uuid.uuid4())
    first = await booking.post("/api/bookings", headers=keyed(customer, key),
                               json=departure.booking(2))
    assert first.status == 201

    other = await booking.post("/api/bookings", headers=keyed(customer, key),
                               json=departure.booking(3))

    assert other.status == 422
    assert (await other.json())["error"] == "IDEMPOTENCY_KEY_REUSED"
    assert len(await bookings_of(booking_db, departure.tour_id)) == 1
    assert await catalog.available_seats(departure) == 8


async def test_keys_belong_to_each_user(
        booking: TestClient, catalog: Catalog, customer: dict[str, Any],
        other_customer: dict[str, Any], booking_db: asyncpg.Connection) -> None:
    departure = await catalog.departure()
    key = str(uuid.uuid4())
    mine = await booking.post("/api/bookings", headers=keyed(customer, key),
                              json=departure.booking(2))
    theirs = await booking.post("/api/bookings", headers=keyed(other_customer, key),
                                json=departure.booking(2))
    assert (mine.status, theirs.status) == (201, 201)
    assert (await mine.json())["id"] != (await theirs.json())["id"]
    assert len(await bookings_of(booking_db, departure.tour_id)) == 2


async def test_a_refused_request_does_not_keep_its_key(
        booking: TestClient, catalog: Catalog, customer: dict[str, Any]) -> None:
    departure = await catalog.departure(capacity=2)
    key = str(uuid.uuid4())
    refused = await booking.post("/api/bookings", headers=keyed(customer, key),
                                 json=departure.booking(3))
    assert refused.status == 409

    resp = await catalog.client.patch(
        f"/api/tours/{departure.tour_id}/departures/{departure.departure_id}",
        headers=bearer(catalog.admin), json={"capacity": 5})
    assert resp.status == 200, await resp.text()
    retried = await booking.post("/api/bookings", headers=keyed(customer, key),
                                 json=departure.booking(3))

    assert retried.status == 201
    assert "Idempotent-Replayed" not in retried.headers


async def test_a_duplicate_while_the_first_request_runs_is_409_in_use(
        make_booking: MakeBooking, catalog: Catalog, customer: dict[str, Any],
        catalog_database: str, booking_db: asyncpg.Connection) -> None:
    # A timeout far above the test's own pace: the first request must still be waiting.
    booking = await make_booking(CATALOG_URL=catalog.url, BOOKING_CATALOG_TIMEOUT="10")
    departure = await catalog.departure()
    key = str(uuid.uuid4())
    async with departure_locked(catalog_database, departure):
        first = asyncio.create_task(booking.post(
            "/api/bookings", headers=keyed(customer, key), json=departure.booking(2)))
        await eventually(lambda: booking_db.fetchval(
            "SELECT true FROM booking_requests WHERE idempotency_key = $1", key),
            message="first request claimed its key")

        duplicate = await booking.post("/api/bookings", headers=keyed(customer, key),
                                       json=departure.booking(2))

        assert duplicate.status == 409
        assert (await duplicate.json())["error"] == "IDEMPOTENCY_KEY_IN_USE"
    assert (await first).status == 201
    assert len(await bookings_of(booking_db, departure.tour_id)) == 1


async def test_a_retry_after_catalog_timed_out_reuses_the_booking_id_and_its_hold(
        make_booking: MakeBooking, catalog: Catalog, customer: dict[str, Any],
        late_hold: LateHold, booking_db: asyncpg.Connection) -> None:
    booking = await make_booking(CATALOG_URL=catalog.url, BOOKING_CATALOG_TIMEOUT="0.5")
    departure = await catalog.departure()
    key = str(uuid.uuid4())

    # Catalog finishes the hold after booking stopped waiting: booking does not know it yet.
    claimed = await late_hold(booking, departure, keyed(customer, key), 2)
    assert await bookings_of(booking_db, departure.tour_id) == []

    retried = await booking.post("/api/bookings", headers=keyed(customer, key),
                                 json=departure.booking(2))

    assert retried.status == 201, await retried.text()
    assert (await retried.json())["id"] == str(claimed)
    assert await catalog.available_seats(departure) == 8  # held once, not twice


async def test_without_a_key_every_request_is_a_new_booking(
        booking: TestClient, catalog: Catalog, customer: dict[str, Any]) -> None:
    departure = await catalog.departure()
    first = await book(booking, customer, departure)
    second = await book(booking, customer, departure)
    assert first["id"] != second["id"]
    assert await catalog.available_seats(departure) == 6


async def test_a_malformed_key_is_400(booking: TestClient, catalog: Catalog,
                                      customer: dict[str, Any]) -> None:
    departure = await catalog.departure()
    resp = await booking.post("/api/bookings", headers=keyed(customer, "has spaces"),
                              json=departure.booking(2))
    assert resp.status == 400
    assert (await resp.json())["details"][0]["field"] == "Idempotency-Key"


async def test_the_same_key_sent_many_times_at_once_makes_one_booking(
        booking: TestClient, catalog: Catalog, customer: dict[str, Any],
        booking_db: asyncpg.Connection) -> None:
    departure = await catalog.departure(max_group_size=10)
    key = str(uuid.uuid4())

    answers = await asyncio.gather(*(booking.post(
        "/api/bookings", headers=keyed(customer, key), json=departure.booking(2))
        for _ in range(8)))

    assert {resp.status for resp in answers} <= {201, 409}  # 409: IDEMPOTENCY_KEY_IN_USE
    created = [await resp.read() for resp in answers if resp.status == 201]
    assert created  # the request that claimed the key
    [made] = await bookings_of(booking_db, departure.tour_id)
    assert await catalog.available_seats(departure) == 8
    replay = await booking.post("/api/bookings", headers=keyed(customer, key),
                                json=departure.booking(2))
    assert replay.status == 201
    assert (await replay.json())["id"] == made
    assert set(created) == {await replay.read()}


async def test_a_retry_that_finds_its_hold_expired_books_nothing_and_frees_the_key(
        *, make_booking: MakeBooking, catalog: Catalog, customer: dict[str, Any],
        late_hold: LateHold, booking_db: asyncpg.Connection, catalog_database: str) -> None:
    booking = await make_booking(CATALOG_URL=catalog.url, BOOKING_CATALOG_TIMEOUT="0.5")
    departure = await catalog.departure()
    key = str(uuid.uuid4())
    claimed = await late_hold(booking, departure, keyed(customer, key), 2)
    # The traveller comes back after the hold's time ran out (the sweeper has not yet run).
    conn = await asyncpg.connect(catalog_database)
    try:
        await conn.execute("UPDATE seat_holds SET expires_at = now() - interval '1 minute'"
                           " WHERE booking_id = $1", claimed)
    finally:
        await conn.close()

    retried = await booking.post("/api/bookings", headers=keyed(customer, key),
                                 json=departure.booking(2))

    assert retried.status == 409, await retried.text()
    assert (await retried.json())["error"] == "HOLD_EXPIRED"
    assert await bookings_of(booking_db, departure.tour_id) == []
    assert await catalog.hold_state(str(claimed)) == "released"
    assert await catalog.available_seats(departure) == 10
    again = await booking.post("/api/bookings", headers=keyed(customer, key),
                               json=departure.booking(2))
    assert again.status == 201
    made = await again.json()
    assert made["id"] != str(claimed)
    assert datetime.fromisoformat(made["expiresAt"]) > datetime.now(UTC)


@pytest.mark.parametrize(("ending", "code"), [
    ("expiry job", "BOOKING_EXPIRED"), ("past expiresAt", "BOOKING_EXPIRED"),
    ("cancelled", "BOOKING_CANCELLED")])
async def test_a_replay_never_presents_a_booking_gone_since_as_created(
        *, booking: TestClient, catalog: Catalog, customer: dict[str, Any],
        booking_db: asyncpg.Connection, ending: str, code: str) -> None:
    departure = await catalog.departure()
    key = str(uuid.uuid4())
    first = await booking.post("/api/bookings", headers=keyed(customer, key),
                               json=departure.booking(2))
    made = await first.json()
    if ending == "expiry job":
        await booking.app[JOBS].expire_due(now=datetime.now(UTC) + timedelta(hours=1))
    elif ending == "past expiresAt":
        await booking_db.execute("UPDATE bookings SET expires_at = now() - interval '1 second'"
                                 " WHERE id = $1", uuid.UUID(made["id"]))
    else:
        await booking.post(f"/api/bookings/{made['id']}/cancel", headers=bearer(customer))

    replay = await booking.post("/api/bookings", headers=keyed(customer, key),
                                json=departure.booking(2))

    assert replay.status == 409
    body = await replay.json()
    assert body["error"] == code
    assert body["details"]["bookingId"] == made["id"]
    assert len(await bookings_of(booking_db, departure.tour_id)) == 1
