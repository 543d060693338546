"""GET /api/bookings and /api/bookings/{id}: customers see their own bookings, admins everyone's
(with filters); someone else's booking does not exist for a customer."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from booking.tests.conftest import Catalog, book
from common.testing import bearer, register


async def ids(client: TestClient, who: dict[str, Any], **query: Any) -> list[str]:
    resp = await client.get("/api/bookings", headers=bearer(who), params=query)
    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert body["total"] >= len(body["items"])
    return [item["id"] for item in body["items"]]


async def test_a_booking_is_visible_to_its_owner_and_admins_only(
        booking: TestClient, catalog: Catalog, customer: dict[str, Any],
        other_customer: dict[str, Any], admin: dict[str, Any]) -> None:
    departure = await catalog.departure()
    created = await book(booking, customer, departure)
    path = f"/api/bookings/{created['id']}"

    mine = await booking.get(path, headers=bearer(customer))
    by_admin = await booking.get(path, headers=bearer(admin))
    theirs = await booking.get(path, headers=bearer(other_customer))

    assert (mine.status, by_admin.status) == (200, 200)
    assert await mine.json() == created
    # An admin sees the same booking, with the moves an admin may make.
    assert await by_admin.json() | {"allowedTransitions": None} == created | {
        "allowedTransitions": None}
    assert theirs.status == 404
    assert (await theirs.json())["error"] == "BOOKING_NOT_FOUND"


@pytest.mark.parametrize("booking_id", [str(uuid.uuid4()), "not-a-uuid"])
async def test_an_unknown_booking_is_404(booking: TestClient, customer: dict[str, Any],
                                         booking_id: str) -> None:
    resp = await booking.get(f"/api/bookings/{booking_id}", headers=bearer(customer))
    assert resp.status == 404
    assert (await resp.json())["error"] == "BOOKING_NOT_FOUND"


async def test_customers_list_their_own_bookings_and_admins_list_all_with_filters(
        booking: TestClient, catalog: Catalog, customer: dict[str, Any],
        other_customer: dict[str, Any], admin: dict[str, Any]) -> None:
    early = await catalog.departure(days_ahead=20)
    late = await catalog.departure(days_ahead=40)
    first = await book(booking, customer, early)
    second = await book(booking, customer, early)
    theirs = await book(booking, other_customer, late)
    cancelled = await booking.post(f"/api/bookings/{first['id']}/cancel",
                                   headers=bearer(customer), json={})
    assert cancelled.status == 200

    # Customers: their own only, newest first, whatever the filters ask.
    assert await ids(booking, customer, tourId=early.tour_id) == [second["id"], first["id"]]
    assert theirs["id"] not in await ids(booking, customer, limit=100)
    assert await ids(booking, other_customer, tourId=early.tour_id) == []
    assert await ids(booking, other_customer, email=customer["user"]["email"]) == []

    # Admins: everyone's, narrowed by status, tour, departure dates and e-mail.
    assert await ids(booking, admin, tourId=early.tour_id) == [second["id"], first["id"]]
    assert await ids(booking, admin, tourId=early.tour_id, status="cancelled") == [first["id"]]
    both_tours = [b for b in await ids(booking, admin, limit=100)
                  if b in (first["id"], second["id"], theirs["id"])]
    assert sorted(both_tours) == sorted([first["id"], second["id"], theirs["id"]])
    on_late_day = await ids(booking, admin, limit=100, **{
        "from": late.tour_date.isoformat(), "to": late.tour_date.isoformat()})
    assert theirs["id"] in on_late_day
    assert first["id"] not in on_late_day
    fragment = other_customer["user"]["email"].split("@")[0][-8:].upper()
    assert theirs["id"] in await ids(booking, admin, email=fragment, limit=100)
    assert await ids(booking, admin, email=fragment, tourId=early.tour_id) == []


async def test_lists_are_paged(booking: TestClient, catalog: Catalog,
                               customer: dict[str, Any]) -> None:
    departure = await catalog.departure()
    made = [(await book(booking, customer, departure, participants=1))["id"] for _ in range(3)]

    resp = await booking.get("/api/bookings", headers=bearer(customer),
                             params={"tourId": departure.tour_id, "limit": 2, "page": 2})

    assert resp.status == 200
    assert await resp.json() | {"items": None} == {"items": None, "page": 2, "limit": 2,
                                                   "total": 3}
    assert [item["id"] for item in (await resp.json())["items"]] == [made[0]]


@pytest.mark.parametrize("query", [{"limit": "101"}, {"page": "0"}, {"status": "lost"},
                                   {"tourId": "x"}, {"from": "tomorrow"}])
async def test_a_bad_list_query_is_400(booking: TestClient, customer: dict[str, Any],
                                       query: dict[str, str]) -> None:
    resp = await booking.get("/api/bookings", headers=bearer(customer), params=query)
    assert resp.status == 400
    assert (await resp.json())["error"] == "VALIDATION_ERROR"


async def test_allowed_transitions_are_the_moves_the_viewer_may_make(
        booking: TestClient, catalog: Catalog, customer: dict[str, Any],
        admin: dict[str, Any]) -> None:
    departure = await catalog.departure()
    created = await book(booking, customer, departure)
    path = f"/api/bookings/{created['id']}"
    customer_moves = {"status": ["cancelled"], "paymentStatus": []}
    admin_moves = {"status": ["confirmed", "cancelled"],
                   "paymentStatus": ["processing", "paid", "failed"]}

    # A traveller may cancel; confirming and the payment status are payments' and admins' moves.
    assert created["allowedTransitions"] == customer_moves
    mine = await (await booking.get(path, headers=bearer(customer))).json()
    assert mine["allowedTransitions"] == customer_moves
    [listed] = (await (await booking.get("/api/bookings", headers=bearer(customer), params={
        "tourId": departure.tour_id})).json())["items"]
    assert listed["allowedTransitions"] == customer_moves

    by_admin = await (await booking.get(path, headers=bearer(admin))).json()
    assert by_admin["allowedTransitions"] == admin_moves
    [listed] = (await (await booking.get("/api/bookings", headers=bearer(admin), params={
        "tourId": departure.tour_id})).json())["items"]
    assert listed["allowedTransitions"] == admin_moves


@pytest.mark.parametrize(("query", "field"), [
    ({"from": "1798416000"}, "from"), ({"to": "2027-01-02T00:00:00Z"}, "to"),
    ({"from": "2027-03-02", "to": "2027-03-01"}, "to")])
async def test_list_dates_are_yyyy_mm_dd_and_in_order(
        booking: TestClient, customer: dict[str, Any], query: dict[str, str],
        field: str) -> None:
    resp = await booking.get("/api/bookings", headers=bearer(customer), params=query)
    assert resp.status == 400
    body = await resp.json()
    assert body["error"] == "VALIDATION_ERROR"
    assert [d["field"] for d in body["details"]] == [field]


async def test_a_page_and_its_total_come_from_one_snapshot(
        booking: TestClient, booking_db: asyncpg.Connection, auth_url: str) -> None:
    """Bookings made while a list is read never make its total disagree with its items."""
    traveller = await asyncio.to_thread(register, auth_url, "Lena")
    user_id = uuid.UUID(traveller["user"]["id"])
    arrived = 60
    writing = True

    async def write() -> None:
        nonlocal writing
        try:
            for _ in range(arrived):
                await booking_db.execute(
                    """INSERT INTO bookings (id, user_id, tour_id, departure_id, tour_title,
                                             tour_date, participants, unit_price, total_amount,
                                             currency, contact_name, contact_email, expires_at)
                       VALUES ($1, $2, $1, $1, 'Rush', current_date + 30, 1, 100, 100, 'EUR',
                               'Lena', 'lena@example.com', now() + interval '15 minutes')""",
                    uuid.uuid4(), user_id)
        finally:
            writing = False

    async def read() -> list[tuple[int, int]]:
        seen = []
        while writing:
            resp = await booking.get("/api/bookings", headers=bearer(traveller),
                                     params={"limit": "100"})
            body = await resp.json()
            seen.append((body["total"], len(body["items"])))
        return seen

    _, *readers = await asyncio.gather(write(), read(), read(), read())

    pages = [page for seen in readers for page in seen]
    assert pages, "no list was read while bookings arrived"
    assert [page for page in pages if page[0] != page[1]] == []
