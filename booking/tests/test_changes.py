"""Cancelling (owner or admin) and the admin's manual transitions: every change goes through the
state machine and announces itself on the bus, and catalog moves the seats from those events."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from booking.tests.conftest import Catalog, Departure, book, metric, outbox, status_of
from common.bus.testing import EventProbe
from common.testing import bearer, eventually

CONTRACT_FIELDS = {
    "bookingId", "tourId", "departureId", "tourTitle", "tourDate", "userId", "userName",
    "userEmail", "userPhone", "participants", "totalAmount", "currency", "status",
    "paymentStatus", "cancelledAt", "cancellationReason",
}


async def seats_back(catalog: Catalog, departure: Departure, expected: int) -> None:
    await eventually(lambda: catalog.seats_are(departure, expected),
                     message=f"{expected} seats available again")


async def test_cancelling_announces_it_and_catalog_releases_the_seats(
        booking: TestClient, catalog: Catalog, customer: dict[str, Any], probe: EventProbe,
        booking_db: asyncpg.Connection) -> None:
    departure = await catalog.departure(max_group_size=10)
    created = await book(booking, customer, departure, participants=4)
    assert await catalog.available_seats(departure) == 6

    resp = await booking.post(f"/api/bookings/{created['id']}/cancel", headers=bearer(customer),
                              json={"reason": "Plans changed"})

    assert resp.status == 200
    cancelled = await resp.json()
    assert cancelled["status"] == "cancelled"
    assert cancelled["cancellationReason"] == "Plans changed"
    assert cancelled["cancelledAt"] is not None
    assert cancelled["allowedTransitions"]["status"] == []
    event, *_ = await probe.wait_for(created["id"], "booking.cancelled")
    assert set(event["data"]) == CONTRACT_FIELDS
    assert event["data"] | {"cancelledAt": None} == {
        "bookingId": created["id"], "tourId": departure.tour_id,
        "departureId": departure.departure_id, "tourTitle": created["tourTitle"],
        "tourDate": departure.tour_date.isoformat(), "userId": customer["user"]["id"],
        "userName": "Cora Traveller", "userEmail": customer["user"]["email"],
        "userPhone": "+33612345678", "participants": 4, "totalAmount": created["totalAmount"],
        "currency": "EUR", "status": "cancelled", "paymentStatus": "unpaid",
        "cancelledAt": None, "cancellationReason": "Plans changed"}
    assert event["data"]["cancelledAt"].endswith("Z")
    await seats_back(catalog, departure, 10)
    assert await catalog.hold_state(created["id"]) == "released"
    assert await outbox(booking_db, created["id"]) == ["booking.cancelled"]
    assert metric(booking, "bookings_cancelled_total", source="customer") == 1


async def test_cancelling_needs_no_reason_and_cannot_happen_twice(
        booking: TestClient, catalog: Catalog, customer: dict[str, Any]) -> None:
    departure = await catalog.departure()
    created = await book(booking, customer, departure)
    path = f"/api/bookings/{created['id']}/cancel"

    first = await booking.post(path, headers=bearer(customer))  # no body at all
    again = await booking.post(path, headers=bearer(customer), json={})

    assert (await first.json())["cancellationReason"] == "cancelled by the customer"
    assert again.status == 409
    body = await again.json()
    assert body["error"] == "INVALID_TRANSITION"
    assert body["details"] == {"field": "status", "current": "cancelled",
                               "requested": "cancelled", "allowed": []}


async def test_nobody_else_can_cancel_a_booking_but_an_admin_can(
        booking: TestClient, catalog: Catalog, customer: dict[str, Any],
        other_customer: dict[str, Any], admin: dict[str, Any]) -> None:
    departure = await catalog.departure()
    created = await book(booking, customer, departure)
    path = f"/api/bookings/{created['id']}/cancel"

    refused = await booking.post(path, headers=bearer(other_customer), json={})
    assert refused.status == 404
    assert await status_of(booking, customer, created["id"]) == ("pending", "unpaid")

    by_admin = await booking.post(path, headers=bearer(admin), json={})
    assert by_admin.status == 200
    assert (await by_admin.json())["cancellationReason"] == "cancelled by an administrator"


async def test_an_admin_moves_a_booking_through_its_statuses_with_an_event_each(
        *, booking: TestClient, catalog: Catalog, customer: dict[str, Any],
        admin: dict[str, Any], probe: EventProbe, booking_db: asyncpg.Connection) -> None:
    departure = await catalog.departure()
    created = await book(booking, customer, departure)
    path = f"/api/bookings/{created['id']}/status"

    confirmed = await booking.patch(path, headers=bearer(admin), json={"status": "confirmed"})
    assert confirmed.status == 200
    assert (await confirmed.json())["confirmedAt"] is not None
    await probe.wait_for(created["id"], "booking.confirmed")
    await eventually(lambda: catalog.hold_is(created["id"], "booked"))
    await booking_db.execute("UPDATE bookings SET tour_date = $2 WHERE id = $1",
                             uuid.UUID(created["id"]), datetime.now(UTC).date() - timedelta(1))

    completed = await booking.patch(path, headers=bearer(admin), json={"status": "completed"})
    assert completed.status == 200
    assert (await completed.json())["completedAt"] is not None
    await probe.wait_for(created["id"], "booking.completed")

    refused = await booking.patch(path, headers=bearer(admin), json={"status": "cancelled"})
    assert refused.status == 409
    assert (await refused.json())["error"] == "INVALID_TRANSITION"
    assert await outbox(booking_db, created["id"]) == ["booking.confirmed", "booking.completed"]
    assert metric(booking, "bookings_confirmed_total", source="admin") == 1


@pytest.mark.parametrize("days_ahead", [0, 20])
async def test_even_an_admin_completes_a_booking_only_after_its_departure_date(
        *, booking: TestClient, catalog: Catalog, customer: dict[str, Any],
        admin: dict[str, Any], booking_db: asyncpg.Connection, days_ahead: int) -> None:
    departure = await catalog.departure()
    created = await book(booking, customer, departure)
    path = f"/api/bookings/{created['id']}"
    await booking.patch(f"{path}/payment-status", headers=bearer(admin),
                        json={"paymentStatus": "paid"})
    day = datetime.now(UTC).date() + timedelta(days=days_ahead)
    await booking_db.execute("UPDATE bookings SET tour_date = $2 WHERE id = $1",
                             uuid.UUID(created["id"]), day)

    seen = await (await booking.get(path, headers=bearer(admin))).json()
    refused = await booking.patch(f"{path}/status", headers=bearer(admin),
                                  json={"status": "completed"})

    assert seen["allowedTransitions"]["status"] == ["cancelled"]
    assert refused.status == 409
    body = await refused.json()
    assert (body["error"], body["details"]["allowed"]) == ("INVALID_TRANSITION", ["cancelled"])
    assert f"the departure date ({day.isoformat()}) has not passed yet" in body["message"]
    assert await status_of(booking, customer, created["id"]) == ("confirmed", "paid")
    assert await outbox(booking_db, created["id"]) == ["booking.confirmed"]


async def test_an_illegal_status_move_lists_the_allowed_ones(
        booking: TestClient, catalog: Catalog, customer: dict[str, Any],
        admin: dict[str, Any], booking_db: asyncpg.Connection) -> None:
    departure = await catalog.departure()
    created = await book(booking, customer, departure)

    resp = await booking.patch(f"/api/bookings/{created['id']}/status", headers=bearer(admin),
                               json={"status": "completed"})

    assert resp.status == 409
    body = await resp.json()
    assert body["error"] == "INVALID_TRANSITION"
    assert body["details"]["allowed"] == ["confirmed", "cancelled"]
    assert "allowed: confirmed, cancelled" in body["message"]
    assert await outbox(booking_db, created["id"]) == []


async def test_marking_a_pending_booking_paid_confirms_it_like_a_payment_event(
        booking: TestClient, catalog: Catalog, customer: dict[str, Any],
        admin: dict[str, Any], probe: EventProbe) -> None:
    departure = await catalog.departure()
    created = await book(booking, customer, departure)
    path = f"/api/bookings/{created['id']}/payment-status"

    paid = await booking.patch(path, headers=bearer(admin), json={"paymentStatus": "paid"})

    assert paid.status == 200
    assert ((await paid.json())["status"], (await paid.json())["paymentStatus"]) == (
        "confirmed", "paid")
    event, *_ = await probe.wait_for(created["id"], "booking.confirmed")
    assert event["data"]["paymentStatus"] == "paid"

    partly = await booking.patch(path, headers=bearer(admin),
                                 json={"paymentStatus": "partially_refunded",
                                       "refundedAmount": 1000})
    assert partly.status == 200
    body = await partly.json()
    assert (body["paymentStatus"], body["paidAmount"], body["refundedAmount"],
            body["netPaidAmount"]) == ("partially_refunded", created["totalAmount"], 1000,
                                       created["totalAmount"] - 1000)
    for amounts in ({}, {"refundedAmount": 1000}, {"refundedAmount": created["totalAmount"]}):
        refused = await booking.patch(path, headers=bearer(admin), json={
            "paymentStatus": "partially_refunded", **amounts})
        assert refused.status == 400
        assert (await refused.json())["details"][0]["field"] in ("refundedAmount", "body")

    refunded = await booking.patch(path, headers=bearer(admin),
                                   json={"paymentStatus": "refunded"})
    assert refunded.status == 200
    body = await refunded.json()
    assert (body["status"], body["paymentStatus"], body["refundedAmount"],
            body["netPaidAmount"]) == ("confirmed", "refunded", created["totalAmount"], 0)

    unpaid = await booking.patch(path, headers=bearer(admin), json={"paymentStatus": "unpaid"})
    assert unpaid.status == 409
    assert (await unpaid.json())["details"]["allowed"] == []


@pytest.mark.parametrize(("suffix", "body"), [("status", {"status": "confirmed"}),
                                              ("payment-status", {"paymentStatus": "paid"})])
async def test_manual_transitions_are_for_admins_only(
        booking: TestClient, catalog: Catalog, customer: dict[str, Any], suffix: str,
        body: dict[str, str]) -> None:
    departure = await catalog.departure()
    created = await book(booking, customer, departure)
    resp = await booking.patch(f"/api/bookings/{created['id']}/{suffix}",
                               headers=bearer(customer), json=body)
    assert resp.status == 403
    assert await status_of(booking, customer, created["id"]) == ("pending", "unpaid")


async def test_an_unknown_status_is_400(booking: TestClient, catalog: Catalog,
                                        customer: dict[str, Any], admin: dict[str, Any]) -> None:
    departure = await catalog.departure()
    created = await book(booking, customer, departure)
    resp = await booking.patch(f"/api/bookings/{created['id']}/status", headers=bearer(admin),
                               json={"status": "lost"})
    assert resp.status == 400
    assert (await resp.json())["details"][0]["field"] == "status"


@pytest.mark.parametrize("days_ago", [0, 3])
async def test_a_traveller_cannot_cancel_once_the_departure_day_has_come_but_an_admin_can(
        *, booking: TestClient, catalog: Catalog, customer: dict[str, Any],
        admin: dict[str, Any], booking_db: asyncpg.Connection, days_ago: int) -> None:
    # Cancelling a paid booking refunds it: on the day of the tour (UTC, as catalog counts
    # departures) or after it, only an administrator may still do that.
    departure = await catalog.departure()
    created = await book(booking, customer, departure)
    paid = await booking.patch(f"/api/bookings/{created['id']}/payment-status",
                               headers=bearer(admin), json={"paymentStatus": "paid"})
    assert paid.status == 200
    day = datetime.now(UTC).date() - timedelta(days=days_ago)
    await booking_db.execute("UPDATE bookings SET tour_date = $2 WHERE id = $1",
                             uuid.UUID(created["id"]), day)

    seen = await (await booking.get(f"/api/bookings/{created['id']}",
                                    headers=bearer(customer))).json()
    assert seen["allowedTransitions"] == {"status": [], "paymentStatus": []}
    refused = await booking.post(f"/api/bookings/{created['id']}/cancel",
                                 headers=bearer(customer), json={})

    assert refused.status == 409
    body = await refused.json()
    assert body["error"] == "INVALID_TRANSITION"
    assert body["details"]["allowed"] == []
    assert f"departure date ({day.isoformat()})" in body["message"]
    assert await status_of(booking, customer, created["id"]) == ("confirmed", "paid")
    assert await outbox(booking_db, created["id"]) == ["booking.confirmed"]

    by_admin = await booking.post(f"/api/bookings/{created['id']}/cancel",
                                  headers=bearer(admin), json={})
    assert by_admin.status == 200
    assert (await by_admin.json())["status"] == "cancelled"
