"""The seat API booking calls (`/internal/holds`): every change keyed by booking id and applied
once, every refusal with the contract's code, and only with the service credential."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp import ClientResponse

from catalog.tests.conftest import SERVICE, Api, in_days, orphan, seats_of


async def test_a_hold_takes_the_seats_and_answers_the_contract_fields(api: Api, conn):
    tour, departure = await api.tour_with_departure(capacity=8, price=4500)
    booking_id = str(uuid.uuid4())
    resp = await api.hold(tour["id"], departure["date"], 3, booking_id=booking_id)
    assert resp.status == 201
    hold = await resp.json()
    assert hold == {
        "bookingId": booking_id, "tourId": tour["id"], "departureId": departure["id"],
        "tourDate": departure["date"], "seats": 3, "state": "held",
        "expiresAt": hold["expiresAt"], "tourTitle": tour["title"], "unitPrice": 4500,
        "currency": "EUR", "maxGroupSize": 8, "availableSeats": 5, "capacity": 8}
    assert hold["expiresAt"].endswith("Z")
    assert await seats_of(conn, departure["id"]) == (8, 3, 0)
    detail = await api.get(f"/api/tours/{tour['id']}")
    assert detail["departures"][0]["availableSeats"] == 5


async def test_the_same_booking_id_holds_once(api: Api, conn):
    tour, departure = await api.tour_with_departure(capacity=8)
    booking_id = str(uuid.uuid4())
    first = await api.hold(tour["id"], departure["date"], 2, booking_id=booking_id)
    again = await api.hold(tour["id"], departure["date"], 2, booking_id=booking_id)
    assert (first.status, again.status) == (201, 200)
    assert await again.json() == await first.json()
    assert await seats_of(conn, departure["id"]) == (8, 2, 0)


async def test_confirm_books_the_held_seats_once(api: Api, conn):
    tour, departure = await api.tour_with_departure(capacity=8)
    hold = await api.held(departure, 3)
    for _ in range(2):
        resp = await api.hold_action(hold["bookingId"], "confirm")
        assert resp.status == 200
        body = await resp.json()
        assert (body["state"], body["availableSeats"]) == ("booked", 5)
    assert await seats_of(conn, departure["id"]) == (8, 0, 3)
    repeat = await api.hold(tour["id"], departure["date"], 3, booking_id=hold["bookingId"])
    assert repeat.status == 200 and (await repeat.json())["state"] == "booked"


@pytest.mark.parametrize("confirmed", [False, True], ids=["held", "booked"])
async def test_release_gives_back_held_or_booked_seats_once(api: Api, conn, confirmed: bool):
    _, departure = await api.tour_with_departure(capacity=8)
    hold = await api.held(departure, 3)
    if confirmed:
        await api.hold_action(hold["bookingId"], "confirm")
    for _ in range(2):
        resp = await api.hold_action(hold["bookingId"], "release")
        assert resp.status == 200
        body = await resp.json()
        assert (body["state"], body["availableSeats"]) == ("released", 8)
    assert await seats_of(conn, departure["id"]) == (8, 0, 0)
    fetched = await api.client.get(f"/internal/holds/{hold['bookingId']}", headers=SERVICE)
    assert (await fetched.json())["state"] == "released"


async def test_a_released_booking_id_cannot_hold_again(api: Api):
    tour, departure = await api.tour_with_departure()
    hold = await api.held(departure)
    await api.hold_action(hold["bookingId"], "release")
    resp = await api.hold(tour["id"], departure["date"], booking_id=hold["bookingId"])
    assert (resp.status, (await resp.json())["error"]) == (409, "HOLD_RELEASED")


async def test_confirming_an_expired_hold_takes_the_seats_again_only_if_free(api: Api, conn):
    _, departure = await api.tour_with_departure(capacity=4)
    early, late = await api.held(departure, 2), await api.held(departure, 2)
    await orphan(api, conn, early)
    again = await api.hold_action(early["bookingId"], "confirm")
    assert again.status == 200 and (await again.json())["state"] == "booked"
    assert await seats_of(conn, departure["id"]) == (4, 2, 2)

    await orphan(api, conn, late)
    await api.held(departure, 2)  # someone else takes the seats meanwhile
    refused = await api.hold_action(late["bookingId"], "confirm")
    body = await refused.json()
    assert (refused.status, body["error"]) == (409, "INSUFFICIENT_AVAILABILITY")
    assert body["details"]["availableSeats"] == 0
    assert await seats_of(conn, departure["id"]) == (4, 2, 2)  # never overbooked
    state = await api.client.get(f"/internal/holds/{late['bookingId']}", headers=SERVICE)
    assert (await state.json())["state"] == "released"


async def test_a_hold_booking_released_cannot_be_confirmed(api: Api, conn):
    _, departure = await api.tour_with_departure(capacity=4)
    hold = await api.held(departure, 2)
    await api.hold_action(hold["bookingId"], "release")
    refused = await api.hold_action(hold["bookingId"], "confirm")
    assert (refused.status, (await refused.json())["error"]) == (409, "HOLD_RELEASED")
    assert await seats_of(conn, departure["id"]) == (4, 0, 0)


async def test_a_release_by_booking_after_the_sweeper_is_final(api: Api, conn):
    """The sweeper released an orphan ("expired": its seats may come back if the payment lands);
    then booking cancels the booking. Its release must make the hold final, or a confirmation
    arriving afterwards would book seats for a cancelled booking, for good."""
    _, departure = await api.tour_with_departure(capacity=4)
    hold = await api.held(departure, 2)
    await orphan(api, conn, hold)
    released = await api.hold_action(hold["bookingId"], "release")
    assert released.status == 200 and (await released.json())["state"] == "released"
    refused = await api.hold_action(hold["bookingId"], "confirm")
    assert (refused.status, (await refused.json())["error"]) == (409, "HOLD_RELEASED")
    assert await seats_of(conn, departure["id"]) == (4, 0, 0)


async def test_not_enough_seats_is_409_with_what_is_left(api: Api, conn):
    tour, departure = await api.tour_with_departure(capacity=5)
    await api.held(departure, 3)
    resp = await api.hold(tour["id"], departure["date"], 3)
    body = await resp.json()
    assert resp.status == 409
    assert body == {"status": 409, "error": "INSUFFICIENT_AVAILABILITY",
                    "message": f"Only 2 seats left on {departure['date']}",
                    "details": {"availableSeats": 2, "requested": 3,
                                "tourDate": departure["date"]}}
    assert await seats_of(conn, departure["id"]) == (5, 3, 0)
    assert await conn.fetchval("SELECT count(*) FROM seat_holds WHERE departure_id = $1",
                               uuid.UUID(departure["id"])) == 1


async def test_hold_refusals_have_the_contract_codes(api: Api):
    tour, departure = await api.tour_with_departure(capacity=6)
    inactive, inactive_departure = await api.tour_with_departure()
    await api.client.delete(f"/api/tours/{inactive['id']}", headers=api.admin)
    closed = await api.departure(tour["id"], days=45)
    await api.client.delete(f"/api/tours/{tour['id']}/departures/{closed['id']}",
                            headers=api.admin)
    cases = [
        (api.hold(str(uuid.uuid4()), departure["date"]), 404, "TOUR_NOT_FOUND"),
        (api.hold(inactive["id"], inactive_departure["date"]), 404, "TOUR_NOT_FOUND"),
        (api.hold(tour["id"], in_days(31)), 404, "DEPARTURE_NOT_FOUND"),
        (api.hold(tour["id"], closed["date"]), 404, "DEPARTURE_NOT_FOUND"),
        (api.hold(tour["id"], in_days(0)), 400, "DEPARTURE_IN_PAST"),
        (api.hold(tour["id"], in_days(-3)), 400, "DEPARTURE_IN_PAST"),
        (api.hold(tour["id"], departure["date"], 0), 400, "VALIDATION_ERROR"),
        (api.hold(tour["id"], departure["date"], 7), 400, "VALIDATION_ERROR"),
        (api.hold(tour["id"], departure["date"], expires_in=-60), 400, "VALIDATION_ERROR"),
        # A hold that outlives any booking would block its seats beyond the sweeper's reach.
        (api.hold(tour["id"], departure["date"], expires_in=8 * 86400), 400,
         "VALIDATION_ERROR"),
    ]
    for call, status, code in cases:
        resp = await call
        assert (resp.status, (await resp.json())["error"]) == (status, code), (status, code)
    # Past the last instant PostgreSQL can store: a 400, not a 500 from the database.
    far = await api.client.post("/internal/holds", headers=SERVICE, json={
        "bookingId": str(uuid.uuid4()), "tourId": tour["id"], "tourDate": departure["date"],
        "seats": 1, "expiresAt": "9999-12-31T23:59:59-05:00"})
    assert (far.status, (await far.json())["details"][0]["field"]) == (400, "expiresAt")
    too_many = await (await api.hold(tour["id"], departure["date"], 7)).json()
    assert too_many["details"][0]["field"] == "participants"
    assert "6" in too_many["details"][0]["message"]


@pytest.mark.parametrize(("body", "field"), [
    ({"tourId": "nope"}, "tourId"),
    ({"tourDate": "14/03/2027"}, "tourDate"),
    ({"tourDate": 1893456000}, "tourDate"),
    ({"seats": "2"}, "seats"),
    ({"expiresAt": "2030-01-01T10:00:00"}, "expiresAt"),  # no time zone
    ({"bookingId": None}, "bookingId"),
    ({"extra": 1}, "extra"),
])
async def test_malformed_hold_requests_name_the_field(api: Api, body, field):
    valid = {"bookingId": str(uuid.uuid4()), "tourId": str(uuid.uuid4()),
             "tourDate": in_days(30), "seats": 1,
             "expiresAt": (datetime.now(UTC) + timedelta(minutes=15)).isoformat()}
    resp = await api.client.post("/internal/holds", json={**valid, **body}, headers=SERVICE)
    assert resp.status == 400
    assert field in [d["field"] for d in (await resp.json())["details"]]


async def test_unknown_holds_are_404(api: Api):
    for booking_id in (str(uuid.uuid4()), "not-a-uuid"):
        for method, path in (("POST", "confirm"), ("POST", "release"), ("GET", "")):
            url = f"/internal/holds/{booking_id}" + (f"/{path}" if path else "")
            resp = await api.client.request(method, url, headers=SERVICE)
            assert (resp.status, (await resp.json())["error"]) == (404, "HOLD_NOT_FOUND")


async def test_internal_routes_refuse_anything_but_the_service_credential(
        api: Api, admin, customer):
    tour, departure = await api.tour_with_departure()
    hold = await api.held(departure)
    for headers in (customer, admin, {"X-Internal-Token": "guess"}, {}):
        resp = await api.hold(tour["id"], departure["date"], headers=headers)
        assert (resp.status, (await resp.json())["error"]) == (401, "SERVICE_CREDENTIAL_INVALID")
        for method, path in (("POST", "/confirm"), ("POST", "/release"), ("GET", "")):
            resp = await api.client.request(method, f"/internal/holds/{hold['bookingId']}{path}",
                                            headers=headers)
            assert resp.status == 401
    state = await api.client.get(f"/internal/holds/{hold['bookingId']}", headers=SERVICE)
    assert (await state.json())["state"] == "held"


async def resize(api: Api, booking_id: str, seats: object,
                 headers: dict[str, str] | None = None) -> ClientResponse:
    return await api.client.post(f"/internal/holds/{booking_id}/resize", json={"seats": seats},
                                 headers=SERVICE if headers is None else headers)


async def test_a_resize_holds_more_or_fewer_seats_under_the_same_booking_id(api: Api, conn):
    _, departure = await api.tour_with_departure(capacity=8)
    hold = await api.held(departure, 3)

    grown = await resize(api, hold["bookingId"], 5)
    assert grown.status == 200
    body = await grown.json()
    assert (body["seats"], body["state"], body["availableSeats"]) == (5, "held", 3)
    assert await seats_of(conn, departure["id"]) == (8, 5, 0)
    again = await resize(api, hold["bookingId"], 5)  # the target is absolute: nothing changes
    assert (again.status, (await again.json())["seats"]) == (200, 5)
    assert await seats_of(conn, departure["id"]) == (8, 5, 0)

    shrunk = await resize(api, hold["bookingId"], 1)
    assert (await shrunk.json())["availableSeats"] == 7
    assert await seats_of(conn, departure["id"]) == (8, 1, 0)
    assert await api.metric("catalog_seats_total", change="held") >= 2
    assert await api.metric("catalog_seats_total", change="released") >= 4


async def test_a_resize_never_takes_seats_that_are_not_free(api: Api, conn):
    _, departure = await api.tour_with_departure(capacity=6)
    hold = await api.held(departure, 2)
    await api.held(departure, 3)

    refused = await resize(api, hold["bookingId"], 4)

    assert refused.status == 409
    assert await refused.json() == {
        "status": 409, "error": "INSUFFICIENT_AVAILABILITY",
        "message": f"Only 1 seats left on {departure['date']}",
        "details": {"availableSeats": 1, "requested": 2, "tourDate": departure["date"]}}
    assert await seats_of(conn, departure["id"]) == (6, 5, 0)
    held = await api.client.get(f"/internal/holds/{hold['bookingId']}", headers=SERVICE)
    assert (await held.json())["seats"] == 2


async def test_a_booked_hold_resizes_its_booked_seats(api: Api, conn):
    _, departure = await api.tour_with_departure(capacity=8)
    hold = await api.held(departure, 4)
    await api.hold_action(hold["bookingId"], "confirm")

    shrunk = await resize(api, hold["bookingId"], 2)

    assert (shrunk.status, (await shrunk.json())["state"]) == (200, "booked")
    assert await seats_of(conn, departure["id"]) == (8, 0, 2)
    assert (await resize(api, hold["bookingId"], 3)).status == 200
    assert await seats_of(conn, departure["id"]) == (8, 0, 3)


async def test_resize_refusals_have_the_contract_codes(api: Api, conn):
    tour, departure = await api.tour_with_departure(capacity=6)
    hold = await api.held(departure, 2)
    released = await api.held(departure, 1)
    await api.hold_action(released["bookingId"], "release")
    closing = await api.held(await api.departure(tour["id"], days=45, capacity=6), 1)
    await api.client.delete(f"/api/tours/{tour['id']}/departures/{closing['departureId']}",
                            headers=api.admin)
    cases = [
        (hold["bookingId"], 7, 400, "VALIDATION_ERROR"),  # above maxGroupSize
        (hold["bookingId"], 0, 400, "VALIDATION_ERROR"),
        (hold["bookingId"], "3", 400, "VALIDATION_ERROR"),
        (released["bookingId"], 2, 409, "HOLD_RELEASED"),
        (str(uuid.uuid4()), 2, 404, "HOLD_NOT_FOUND"),
        ("not-a-uuid", 2, 404, "HOLD_NOT_FOUND"),
        (closing["bookingId"], 2, 404, "DEPARTURE_NOT_FOUND"),  # closed: no new seats
    ]
    for booking_id, seats, status, code in cases:
        resp = await resize(api, booking_id, seats)
        assert (resp.status, (await resp.json())["error"]) == (status, code), (seats, code)
    too_many = await (await resize(api, hold["bookingId"], 7)).json()
    assert too_many["details"][0]["field"] == "participants"
    # A closed departure still lets a hold give seats back.
    assert (await resize(api, closing["bookingId"], 1)).status == 200
    assert await seats_of(conn, departure["id"]) == (6, 2, 0)
    for headers in ({"X-Internal-Token": "guess"}, api.admin):
        denied = await resize(api, hold["bookingId"], 3, headers=headers)
        assert denied.status == 401


async def test_a_departure_that_has_come_takes_no_more_seats_but_gives_some_back(api: Api,
                                                                                  conn):
    _, departure = await api.tour_with_departure(capacity=6)
    hold = await api.held(departure, 3)
    await conn.execute("UPDATE departures SET date = $2 WHERE id = $1",
                       uuid.UUID(departure["id"]), datetime.now(UTC).date())

    grown = await resize(api, hold["bookingId"], 4)
    assert (grown.status, (await grown.json())["error"]) == (400, "DEPARTURE_IN_PAST")
    assert (await resize(api, hold["bookingId"], 2)).status == 200
    assert await seats_of(conn, departure["id"]) == (6, 2, 0)


async def test_concurrent_resizes_and_holds_never_overbook(api: Api, conn):
    tour, departure = await api.tour_with_departure(capacity=10)
    mine = await api.held(departure, 1)

    answers = await asyncio.gather(
        *(resize(api, mine["bookingId"], 6) for _ in range(5)),
        *(api.hold(tour["id"], departure["date"], 1) for _ in range(20)))

    statuses = [resp.status for resp in answers]
    capacity, held, booked = await seats_of(conn, departure["id"])
    holds = await conn.fetch("SELECT seats FROM seat_holds WHERE departure_id = $1"
                             " AND state = 'held'", uuid.UUID(departure["id"]))
    assert held + booked <= capacity == 10
    assert held == sum(row["seats"] for row in holds)
    assert statuses[5:].count(201) == len(holds) - 1
    mine_now = await api.client.get(f"/internal/holds/{mine['bookingId']}", headers=SERVICE)
    grown = (await mine_now.json())["seats"] == 6
    # Either the resize got its five seats before the rush took them, or every try was refused.
    assert set(statuses[:5]) == ({200} if grown else {409})
