"""POST /api/bookings: seats are held at catalog first, then the booking is stored pending; a
refusal from catalog stores nothing and reaches the client as catalog gave it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from booking.tests.conftest import Catalog, MakeBooking, book, metric, tomorrow
from common.testing import bearer


async def bookings_of(conn: asyncpg.Connection, tour_id: str) -> int:
    count: int = await conn.fetchval("SELECT count(*) FROM bookings WHERE tour_id = $1",
                                     uuid.UUID(tour_id))
    return count


async def test_a_booking_holds_the_seats_and_is_pending_with_the_total_from_catalog(
        booking: TestClient, catalog: Catalog, customer: dict[str, Any]) -> None:
    departure = await catalog.departure(price=4500, max_group_size=10)
    before = datetime.now(UTC)

    created = await book(booking, customer, departure, participants=3)

    assert created["status"] == "pending"
    assert created["paymentStatus"] == "unpaid"
    assert (created["unitPrice"], created["totalAmount"], created["currency"]) == (
        4500, 13_500, "EUR")
    assert (created["tourId"], created["tourDate"], created["participants"]) == (
        departure.tour_id, departure.tour_date.isoformat(), 3)
    assert created["departureId"] == departure.departure_id
    assert created["tourTitle"].startswith("Calanques by kayak")
    assert created["userId"] == customer["user"]["id"]
    expires = datetime.fromisoformat(created["expiresAt"])
    assert before + timedelta(minutes=14) < expires < datetime.now(UTC) + timedelta(minutes=16)
    # The traveller's own moves: cancelling; confirming follows the payment.
    assert created["allowedTransitions"] == {"status": ["cancelled"], "paymentStatus": []}
    # The contact defaults to the account: e-mail from the token, name and phone from auth.
    assert created["contact"] == {"name": "Cora Traveller", "email": customer["user"]["email"],
                                  "phone": "+33612345678"}

    hold = await catalog.hold(created["id"])
    assert hold is not None
    assert (hold["state"], hold["seats"]) == ("held", 3)
    assert await catalog.available_seats(departure) == 7
    assert metric(booking, "bookings_created_total") == 1


async def test_the_client_cannot_set_the_price_or_the_total(
        booking: TestClient, catalog: Catalog, customer: dict[str, Any],
        booking_db: asyncpg.Connection) -> None:
    departure = await catalog.departure()
    resp = await booking.post("/api/bookings", headers=bearer(customer),
                              json=departure.booking(2, totalAmount=1))
    assert resp.status == 400
    assert (await resp.json())["details"][0]["field"] == "totalAmount"
    assert await bookings_of(booking_db, departure.tour_id) == 0


async def test_a_contact_given_in_the_request_is_the_booking_contact(
        booking: TestClient, catalog: Catalog, customer: dict[str, Any]) -> None:
    departure = await catalog.departure()
    created = await book(booking, customer, departure, contact={
        "name": "Grace Hopper", "email": "Grace@Example.COM", "phone": "+44 20 7946 0958"},
        specialRequests="Two vegetarian lunches")
    assert created["contact"] == {"name": "Grace Hopper", "email": "grace@example.com",
                                  "phone": "+442079460958"}
    assert created["specialRequests"] == "Two vegetarian lunches"


async def test_without_auth_the_contact_falls_back_to_the_token_email(
        make_booking: MakeBooking, catalog: Catalog, customer: dict[str, Any]) -> None:
    booking = await make_booking(CATALOG_URL=catalog.url, AUTH_URL="http://127.0.0.1:1")
    departure = await catalog.departure()
    created = await book(booking, customer, departure)
    email = customer["user"]["email"]
    assert created["contact"] == {"name": email.partition("@")[0], "email": email,
                                  "phone": None}


async def test_not_enough_seats_is_409_with_the_seats_left_and_nothing_is_stored(
        booking: TestClient, catalog: Catalog, customer: dict[str, Any],
        booking_db: asyncpg.Connection) -> None:
    departure = await catalog.departure(max_group_size=10, capacity=3)

    resp = await booking.post("/api/bookings", headers=bearer(customer),
                              json=departure.booking(4))

    assert resp.status == 409
    body = await resp.json()
    assert body["error"] == "INSUFFICIENT_AVAILABILITY"
    assert body["message"] == f"Only 3 seats left on {departure.tour_date.isoformat()}"
    assert body["details"]["availableSeats"] == 3
    assert await bookings_of(booking_db, departure.tour_id) == 0
    assert await booking_db.fetchval(
        "SELECT count(*) FROM booking_requests WHERE user_id = $1 AND answered_at IS NULL",
        uuid.UUID(customer["user"]["id"])) == 0
    assert await catalog.available_seats(departure) == 3


@pytest.mark.parametrize(("case", "status", "code"), [
    ("departure today", 400, "DEPARTURE_IN_PAST"),
    ("unknown tour", 404, "TOUR_NOT_FOUND"),
    ("no departure that day", 404, "DEPARTURE_NOT_FOUND"),
    ("inactive departure", 404, "DEPARTURE_NOT_FOUND"),
])
async def test_a_departure_that_cannot_be_booked_is_refused_as_catalog_says(
        *, booking: TestClient, catalog: Catalog, customer: dict[str, Any],
        booking_db: asyncpg.Connection, case: str, status: int, code: str) -> None:
    departure = await catalog.departure()
    body = departure.booking(2)
    if case == "departure today":
        body["tourDate"] = datetime.now(UTC).date().isoformat()
    elif case == "unknown tour":
        body["tourId"] = str(uuid.uuid4())
    elif case == "no departure that day":
        body["tourDate"] = tomorrow(31).isoformat()
    else:
        await catalog.deactivate(departure)

    resp = await booking.post("/api/bookings", headers=bearer(customer), json=body)

    assert resp.status == status, await resp.text()
    assert (await resp.json())["error"] == code
    assert await bookings_of(booking_db, departure.tour_id) == 0


@pytest.mark.parametrize("participants", [0, 51, 11])
async def test_participants_outside_one_to_the_group_size_is_400(
        booking: TestClient, catalog: Catalog, customer: dict[str, Any],
        booking_db: asyncpg.Connection, participants: int) -> None:
    # 0 is refused by booking's schema, 51 and 11 by catalog (maxGroupSize 10), in one shape.
    departure = await catalog.departure(max_group_size=10)
    resp = await booking.post("/api/bookings", headers=bearer(customer),
                              json=departure.booking(participants))
    assert resp.status == 400
    body = await resp.json()
    assert body["error"] == "VALIDATION_ERROR"
    assert [d["field"] for d in body["details"]] == ["participants"]
    assert await bookings_of(booking_db, departure.tour_id) == 0
    assert await catalog.available_seats(departure) == 10


async def test_booking_needs_an_access_token(booking: TestClient, catalog: Catalog) -> None:
    departure = await catalog.departure()
    resp = await booking.post("/api/bookings", json=departure.booking(2))
    assert resp.status == 401
    assert (await resp.json())["error"] == "AUTH_TOKEN_MISSING"


@pytest.mark.parametrize("tour_date", [
    "{day}T00:00:00Z", "{day}T00:00:00+05:00", "{epoch}", "{epoch_int}", "{compact}"])
async def test_a_tour_date_that_is_not_yyyy_mm_dd_is_400_and_nothing_is_held(
        booking: TestClient, catalog: Catalog, customer: dict[str, Any],
        booking_db: asyncpg.Connection, tour_date: str) -> None:
    # A time with an offset names another day in UTC; an epoch is not a date: guessing would
    # book a departure the traveller did not ask for.
    departure = await catalog.departure(max_group_size=10)
    day = departure.tour_date
    epoch = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())
    body: dict[str, Any] = departure.booking(2)
    body["tourDate"] = (epoch if tour_date == "{epoch_int}" else tour_date.format(
        day=day.isoformat(), epoch=epoch, compact=day.strftime("%Y%m%d")))

    resp = await booking.post("/api/bookings", headers=bearer(customer), json=body)

    assert resp.status == 400, await resp.text()
    error = await resp.json()
    assert error["error"] == "VALIDATION_ERROR"
    assert error["details"] == [{"field": "tourDate", "message": "must be a date as YYYY-MM-DD"}]
    assert await bookings_of(booking_db, departure.tour_id) == 0
    assert await catalog.available_seats(departure) == 10


@pytest.mark.parametrize("participants", [True, "2", 2.5])
async def test_participants_must_be_a_json_integer(
        booking: TestClient, catalog: Catalog, customer: dict[str, Any],
        booking_db: asyncpg.Connection, participants: object) -> None:
    departure = await catalog.departure(max_group_size=10)
    resp = await booking.post("/api/bookings", headers=bearer(customer),
                              json=departure.booking(participants))
    assert resp.status == 400, await resp.text()
    body = await resp.json()
    assert [d["field"] for d in body["details"]] == ["participants"]
    assert await bookings_of(booking_db, departure.tour_id) == 0
    assert await catalog.available_seats(departure) == 10


async def test_a_large_group_may_book_up_to_the_tours_group_size(
        booking: TestClient, catalog: Catalog, customer: dict[str, Any]) -> None:
    # Catalog decides how many one booking may take (maxGroupSize); booking has no cap of its own.
    departure = await catalog.departure(price=1000, max_group_size=80)
    created = await book(booking, customer, departure, participants=60)
    assert (created["participants"], created["totalAmount"]) == (60, 60_000)
    assert await catalog.available_seats(departure) == 20


@pytest.mark.parametrize("name", ["Grace\r\nBcc: everyone@example.com", "Grace\x07Hopper"])
async def test_a_contact_name_with_control_characters_is_400(
        booking: TestClient, catalog: Catalog, customer: dict[str, Any],
        booking_db: asyncpg.Connection, name: str) -> None:
    # The name goes into the headers of the confirmation e-mail: a line break there would let a
    # booking add recipients.
    departure = await catalog.departure()
    resp = await booking.post("/api/bookings", headers=bearer(customer), json=departure.booking(
        2, contact={"name": name, "email": "grace@example.com"}))
    assert resp.status == 400, await resp.text()
    assert [d["field"] for d in (await resp.json())["details"]] == ["contact.name"]
    assert await bookings_of(booking_db, departure.tour_id) == 0


@pytest.mark.parametrize(("change", "field"), [
    ({"specialRequests": "x" * 2001}, "specialRequests"),
    ({"tourId": "tour-1"}, "tourId"),
    ({"tourDate": None}, "tourDate"),
    ({"tourDate": "2027-02-30"}, "tourDate"),
    ({"contact": {"name": "Grace Hopper"}}, "contact.email"),
    ({"contact": {"name": "Grace", "email": "grace@"}}, "contact.email"),
    ({"contact": {"name": " ", "email": "grace@example.com"}}, "contact.name"),
    ({"contact": {"name": "Grace", "email": "grace@example.com", "phone": "12"}},
     "contact.phone"),
    ({"contact": {"name": "Grace", "email": "grace@example.com", "fax": "+331"}},
     "contact.fax"),
])
async def test_every_bad_field_is_a_400_naming_it_and_nothing_is_held(
        *, booking: TestClient, catalog: Catalog, customer: dict[str, Any],
        booking_db: asyncpg.Connection, change: dict[str, Any], field: str) -> None:
    departure = await catalog.departure(max_group_size=10)
    resp = await booking.post("/api/bookings", headers=bearer(customer),
                              json=departure.booking(2) | change)
    assert resp.status == 400, await resp.text()
    body = await resp.json()
    assert (body["status"], body["error"]) == (400, "VALIDATION_ERROR")
    assert [d["field"] for d in body["details"]] == [field]
    assert all(d["message"] for d in body["details"])
    assert await bookings_of(booking_db, departure.tour_id) == 0
    assert await catalog.available_seats(departure) == 10
