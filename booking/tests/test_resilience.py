"""When catalog is down or slow, booking answers 503 quickly and stores nothing; when storing the
booking fails after catalog held the seats, the seats are given back before the answer; when auth
keeps failing, bookings go ahead without asking it each time."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
import structlog

from booking.tests.conftest import Catalog, MakeBooking, SilentServer, tomorrow
from common.testing import bearer, free_port


async def bookings_of(conn: asyncpg.Connection, user: dict[str, Any]) -> int:
    count: int = await conn.fetchval("SELECT count(*) FROM bookings WHERE user_id = $1",
                                     uuid.UUID(user["user"]["id"]))
    return count


def any_departure() -> dict[str, Any]:
    return {"tourId": str(uuid.uuid4()), "tourDate": tomorrow(30).isoformat(),
            "participants": 2}


async def test_catalog_down_is_503_and_nothing_is_stored(
        make_booking: MakeBooking, customer: dict[str, Any],
        booking_db: asyncpg.Connection) -> None:
    booking = await make_booking(CATALOG_URL=f"http://127.0.0.1:{free_port()}")
    before = await bookings_of(booking_db, customer)

    resp = await booking.post("/api/bookings", headers=bearer(customer), json=any_departure())

    assert resp.status == 503
    assert (await resp.json())["error"] == "SERVICE_UNAVAILABLE"
    assert await bookings_of(booking_db, customer) == before


async def test_a_catalog_that_does_not_answer_is_503_within_the_timeout(
        make_booking: MakeBooking, customer: dict[str, Any], silent_server: SilentServer,
        booking_db: asyncpg.Connection) -> None:
    booking = await make_booking(CATALOG_URL=silent_server.url, BOOKING_CATALOG_TIMEOUT="0.5")
    before = await bookings_of(booking_db, customer)
    started = time.monotonic()

    resp = await booking.post("/api/bookings", headers=bearer(customer), json=any_departure())

    assert resp.status == 503
    assert time.monotonic() - started < 5
    assert await bookings_of(booking_db, customer) == before


async def test_after_repeated_failures_the_circuit_opens_and_answers_at_once(
        make_booking: MakeBooking, customer: dict[str, Any]) -> None:
    booking = await make_booking(CATALOG_URL=f"http://127.0.0.1:{free_port()}")
    for _ in range(10):  # the breaker's volume threshold
        resp = await booking.post("/api/bookings", headers=bearer(customer),
                                  json=any_departure())
        assert resp.status == 503

    refused = await booking.post("/api/bookings", headers=bearer(customer), json=any_departure())

    assert refused.status == 503
    assert int(refused.headers["Retry-After"]) >= 1
    health = await (await booking.get("/health")).json()
    assert health["checks"]["catalog"]["status"] == "error"


async def test_an_auth_that_keeps_failing_is_not_asked_while_its_circuit_is_open(
        make_booking: MakeBooking, catalog: Catalog, customer: dict[str, Any]) -> None:
    booking = await make_booking(CATALOG_URL=catalog.url,
                                 AUTH_URL=f"http://127.0.0.1:{free_port()}")
    departure = await catalog.departure(max_group_size=10, capacity=20)

    with structlog.testing.capture_logs() as logs:
        for _ in range(11):  # the breaker's volume threshold, and one more
            resp = await booking.post("/api/bookings", headers=bearer(customer),
                                      json=departure.booking(1))
            assert resp.status == 201, await resp.text()
            contact = (await resp.json())["contact"]
            assert contact["email"] == customer["user"]["email"]

    failures = [line["error"] for line in logs if line["event"] == "contact_lookup_failed"]
    assert len(failures) == 11
    assert "circuit 'auth' is open" in failures[-1]
    assert all("open" not in failure for failure in failures[:10])


@pytest.fixture
async def failing_inserts(booking_db: asyncpg.Connection) -> AsyncIterator[str]:
    """A fault in booking's own database: inserting a booking whose special requests are the
    returned marker fails, after catalog has held its seats."""
    marker = f"fail-{uuid.uuid4().hex[:8]}"
    await booking_db.execute(f"""
        CREATE FUNCTION fail_marked_booking() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.special_requests = '{marker}' THEN
                RAISE EXCEPTION 'injected failure';
            END IF;
            RETURN NEW;
        END $$;
        CREATE TRIGGER fail_marked_booking BEFORE INSERT ON bookings
            FOR EACH ROW EXECUTE FUNCTION fail_marked_booking();""")
    yield marker
    await booking_db.execute("DROP TRIGGER IF EXISTS fail_marked_booking ON bookings;"
                             " DROP FUNCTION fail_marked_booking();")


async def test_a_booking_that_cannot_be_stored_gives_its_seats_back_before_answering(
        make_booking: MakeBooking, catalog: Catalog, customer: dict[str, Any],
        failing_inserts: str, booking_db: asyncpg.Connection) -> None:
    booking = await make_booking(CATALOG_URL=catalog.url)
    departure = await catalog.departure(max_group_size=10)
    key = str(uuid.uuid4())

    resp = await booking.post("/api/bookings", headers={**bearer(customer),
                                                       "Idempotency-Key": key},
                              json=departure.booking(3, specialRequests=failing_inserts))

    assert resp.status == 500
    assert (await resp.json())["error"] == "INTERNAL_ERROR"
    assert await catalog.available_seats(departure) == 10
    assert await booking_db.fetchval(
        "SELECT count(*) FROM bookings WHERE tour_id = $1", uuid.UUID(departure.tour_id)) == 0
    # The key was not kept: once the fault is gone, the same request books.
    await booking_db.execute("DROP TRIGGER fail_marked_booking ON bookings")
    retried = await booking.post("/api/bookings", headers={**bearer(customer),
                                                          "Idempotency-Key": key},
                                 json=departure.booking(3, specialRequests=failing_inserts))
    assert retried.status == 201
    assert await catalog.available_seats(departure) == 7
