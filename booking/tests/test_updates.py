"""PATCH /api/bookings/{id}: a pending booking changes its participants (seats at the real
catalog, the amount at payments), contact and special requests, on the version its client read,
one change at a time; anything that fails on the way leaves the booking, its hold and its
payment as they were. Payments is a stand-in that answers as its amount contract says."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from booking.app_keys import JOBS
from booking.tests.conftest import (
    Catalog,
    MakeBooking,
    PaymentsStandIn,
    book,
    metric,
    outbox,
    publish_payment,
    status_of,
)
from common.bus.testing import EventProbe, QueueReader
from common.testing import bearer, eventually, free_port


@pytest.fixture
async def booking(make_booking: MakeBooking, catalog: Catalog,
                  payments: PaymentsStandIn) -> TestClient:
    return await make_booking(CATALOG_URL=catalog.url, PAYMENTS_URL=payments.url,
                              BOOKING_PAYMENTS_TIMEOUT="1")


async def patch(client: TestClient, who: dict[str, Any], booking: dict[str, Any],
                body: dict[str, Any], version: int | str | None = None) -> ClientResponse:
    """A change on the version the caller read (`version`, else the booking's)."""
    tag = version if isinstance(version, str) else f'"{version or booking["version"]}"'
    return await client.patch(f"/api/bookings/{booking['id']}", json=body,
                              headers={**bearer(who), "If-Match": tag})


async def row(conn: asyncpg.Connection, booking_id: str) -> asyncpg.Record:
    return await conn.fetchrow("SELECT * FROM bookings WHERE id = $1", uuid.UUID(booking_id))


async def seats_held(catalog: Catalog, booking_id: str) -> int:
    hold = await catalog.hold(booking_id)
    assert hold is not None
    seats: int = hold["seats"]
    return seats


async def lock_waiters(conn: asyncpg.Connection) -> int:
    """Sessions of booking's database waiting for a row lock (a payment event, say)."""
    waiting: int = await conn.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND wait_event_type = 'Lock'")
    return waiting


async def test_more_participants_take_seats_raise_the_total_and_the_open_payment(
        *, booking: TestClient, catalog: Catalog, payments: PaymentsStandIn,
        customer: dict[str, Any], probe: EventProbe, booking_db: asyncpg.Connection) -> None:
    departure = await catalog.departure(price=4500, max_group_size=10)
    made = await booking.post("/api/bookings", headers=bearer(customer),
                              json=departure.booking(2))
    created = await made.json()
    read = await booking.get(f"/api/bookings/{created['id']}", headers=bearer(customer))
    assert (made.headers["ETag"], read.headers["ETag"], created["version"]) == ('"1"', '"1"', 1)

    resp = await patch(booking, customer, created, {"participants": 4})

    assert resp.status == 200, await resp.text()
    changed = await resp.json()
    assert (changed["participants"], changed["totalAmount"], changed["version"]) == (4, 18000, 2)
    assert (changed["status"], changed["paymentStatus"]) == ("pending", "unpaid")
    assert resp.headers["ETag"] == '"2"'
    assert await seats_held(catalog, created["id"]) == 4
    assert await catalog.available_seats(departure) == 6
    assert payments.amounts_asked(created["id"]) == [18000]
    assert payments.calls[-1][1] == {"amount": 18000, "currency": "EUR"}
    event, *_ = await probe.wait_for(created["id"], "booking.updated")
    assert (event["data"]["participants"], event["data"]["totalAmount"],
            event["data"]["version"], event["data"]["status"]) == (4, 18000, 2, "pending")
    assert event["data"]["changed"] == ["participants", "totalAmount"]
    assert event["data"]["previous"] == {"participants": 2, "totalAmount": 9000}
    assert await outbox(booking_db, created["id"]) == ["booking.updated"]
    assert await booking_db.fetchval("SELECT count(*) FROM booking_changes") == 0
    assert metric(booking, "bookings_changed_total", source="customer") >= 1


async def test_fewer_participants_lower_the_payment_then_give_seats_back(
        booking: TestClient, catalog: Catalog, payments: PaymentsStandIn,
        customer: dict[str, Any], booking_db: asyncpg.Connection) -> None:
    departure = await catalog.departure(price=4500, max_group_size=10)
    created = await book(booking, customer, departure, participants=4)

    resp = await patch(booking, customer, created, {"participants": 1})

    assert resp.status == 200, await resp.text()
    assert (await resp.json())["totalAmount"] == 4500
    assert payments.amounts_asked(created["id"]) == [4500]
    assert await seats_held(catalog, created["id"]) == 1
    assert await catalog.available_seats(departure) == 9
    assert await booking_db.fetchval("SELECT count(*) FROM booking_changes") == 0


async def test_contact_and_special_requests_change_without_seats_or_money(
        booking: TestClient, catalog: Catalog, payments: PaymentsStandIn,
        customer: dict[str, Any], probe: EventProbe) -> None:
    departure = await catalog.departure()
    created = await book(booking, customer, departure, specialRequests="Vegetarian")

    resp = await patch(booking, customer, created, {
        "contact": {"name": "Max Mustermann", "email": "max@example.com"},
        "specialRequests": None})

    assert resp.status == 200, await resp.text()
    changed = await resp.json()
    assert changed["contact"] == {"name": "Max Mustermann", "email": "max@example.com",
                                  "phone": None}
    assert (changed["specialRequests"], changed["participants"]) == (None, 2)
    assert payments.calls == []
    event, *_ = await probe.wait_for(created["id"], "booking.updated")
    assert event["data"]["changed"] == ["userName", "userEmail", "userPhone", "specialRequests"]
    assert event["data"]["previous"]["specialRequests"] == "Vegetarian"
    assert (event["data"]["userEmail"], event["data"]["specialRequests"]) == (
        "max@example.com", None)
    # The same change again changes nothing: no new version, no event.
    again = await patch(booking, customer, changed, {"specialRequests": None})
    assert (again.status, (await again.json())["version"]) == (200, changed["version"])


@pytest.mark.parametrize(("if_match", "status", "code"), [
    (None, 428, "PRECONDITION_REQUIRED"), ("*", 428, "PRECONDITION_REQUIRED"),
    ('"7"', 412, "PRECONDITION_FAILED"), ('W/"1"', 412, "PRECONDITION_FAILED"),
    ("1", 412, "PRECONDITION_FAILED")])
async def test_a_change_must_name_the_version_it_was_made_on(
        *, booking: TestClient, catalog: Catalog, payments: PaymentsStandIn,
        customer: dict[str, Any], if_match: str | None, status: int, code: str) -> None:
    departure = await catalog.departure()
    created = await book(booking, customer, departure)
    headers = bearer(customer) | ({"If-Match": if_match} if if_match is not None else {})

    resp = await booking.patch(f"/api/bookings/{created['id']}", headers=headers,
                               json={"participants": 3})

    body = await resp.json()
    assert (resp.status, body["error"]) == (status, code)
    if status == 412:
        assert (body["details"], resp.headers["ETag"]) == ({"version": 1}, '"1"')
    assert await seats_held(catalog, created["id"]) == 2
    assert payments.calls == []


async def test_two_tabs_changing_the_same_version_cannot_overwrite_each_other(
        booking: TestClient, catalog: Catalog, payments: PaymentsStandIn,
        customer: dict[str, Any], booking_db: asyncpg.Connection) -> None:
    departure = await catalog.departure(price=1000, max_group_size=10)
    created = await book(booking, customer, departure, participants=2)

    answers = await asyncio.gather(*(patch(booking, customer, created, {"participants": n})
                                     for n in (3, 5, 6, 1)))

    assert sorted(resp.status for resp in answers) == [200, 412, 412, 412]
    [winner] = [await resp.json() for resp in answers if resp.status == 200]
    stored = await row(booking_db, created["id"])
    assert (stored["participants"], stored["version"]) == (winner["participants"], 2)
    assert await seats_held(catalog, created["id"]) == winner["participants"]
    assert await catalog.available_seats(departure) == 10 - winner["participants"]
    assert payments.amounts_asked(created["id"]) == [winner["totalAmount"]]


async def test_more_participants_than_free_seats_change_nothing(
        *, booking: TestClient, catalog: Catalog, payments: PaymentsStandIn,
        customer: dict[str, Any], other_customer: dict[str, Any],
        booking_db: asyncpg.Connection) -> None:
    departure = await catalog.departure(max_group_size=6)
    created = await book(booking, customer, departure, participants=2)
    await book(booking, other_customer, departure, participants=3)

    resp = await patch(booking, customer, created, {"participants": 4})

    body = await resp.json()
    assert (resp.status, body["error"]) == (409, "INSUFFICIENT_AVAILABILITY")
    assert body["message"] == f"Only 1 seats left on {departure.tour_date.isoformat()}"
    assert (await row(booking_db, created["id"]))["version"] == 1
    assert await seats_held(catalog, created["id"]) == 2
    assert payments.calls == []
    assert await booking_db.fetchval("SELECT count(*) FROM booking_changes") == 0
    too_many = await patch(booking, customer, created, {"participants": 7})
    assert (await too_many.json())["details"][0]["field"] == "participants"


@pytest.mark.parametrize(("answer", "status", "code"), [
    ("in_progress", 409, "PAYMENT_IN_PROGRESS"), ("unavailable", 503, "SERVICE_UNAVAILABLE")])
async def test_when_payments_refuses_the_seats_go_back_and_nothing_changes(
        *, booking: TestClient, catalog: Catalog, payments: PaymentsStandIn,
        customer: dict[str, Any], booking_db: asyncpg.Connection, answer: str, status: int,
        code: str) -> None:
    departure = await catalog.departure(max_group_size=10)
    created = await book(booking, customer, departure, participants=2)
    payments.answer = answer

    resp = await patch(booking, customer, created, {"participants": 5})

    assert (resp.status, (await resp.json())["error"]) == (status, code)
    stored = await row(booking_db, created["id"])
    assert (stored["participants"], stored["total_amount"], stored["version"]) == (
        2, created["totalAmount"], 1)
    assert await seats_held(catalog, created["id"]) == 2
    assert await catalog.available_seats(departure) == 8
    assert await outbox(booking_db, created["id"]) == []
    assert await booking_db.fetchval("SELECT count(*) FROM booking_changes") == 0


async def test_payments_unreachable_or_silent_is_503_with_nothing_changed(
        make_booking: MakeBooking, catalog: Catalog, payments: PaymentsStandIn,
        customer: dict[str, Any], booking_db: asyncpg.Connection) -> None:
    unreachable = await make_booking(CATALOG_URL=catalog.url,
                                     PAYMENTS_URL=f"http://127.0.0.1:{free_port()}")
    departure = await catalog.departure(max_group_size=10)
    created = await book(unreachable, customer, departure, participants=2)
    resp = await patch(unreachable, customer, created, {"participants": 3})
    assert (resp.status, (await resp.json())["error"]) == (503, "SERVICE_UNAVAILABLE")
    assert await seats_held(catalog, created["id"]) == 2

    # Payments answers only after the timeout: whether it set the amount is unknown. The seats
    # go back at once; the old amount is set again by the jobs once payments answers.
    slow = await make_booking(CATALOG_URL=catalog.url, PAYMENTS_URL=payments.url,
                              BOOKING_PAYMENTS_TIMEOUT="0.3")
    payments.gate.clear()
    resp = await patch(slow, customer, created, {"participants": 3})
    assert (resp.status, (await resp.json())["error"]) == (503, "SERVICE_UNAVAILABLE")
    stored = await row(booking_db, created["id"])
    assert (stored["participants"], stored["version"]) == (2, 1)
    assert await seats_held(catalog, created["id"]) == 2
    payments.gate.set()
    await eventually(lambda: len(payments.calls) == 2, message="payments answered late")
    settled = await slow.app[JOBS].settle_changes(now=datetime.now(UTC) + timedelta(hours=1))
    assert settled == 1
    assert payments.amounts_asked(created["id"])[-1] == created["totalAmount"]
    assert await booking_db.fetchval("SELECT count(*) FROM booking_changes") == 0


@pytest.mark.parametrize("ending", ["confirmed", "cancelled", "expired", "departure day"])
async def test_only_a_pending_booking_before_its_expiry_and_departure_changes(
        *, booking: TestClient, catalog: Catalog, payments: PaymentsStandIn,
        customer: dict[str, Any], admin: dict[str, Any], booking_db: asyncpg.Connection,
        ending: str) -> None:
    departure = await catalog.departure()
    created = await book(booking, customer, departure)
    booking_id = uuid.UUID(created["id"])
    if ending == "confirmed":
        await booking.patch(f"/api/bookings/{created['id']}/payment-status",
                            headers=bearer(admin), json={"paymentStatus": "paid"})
    elif ending == "cancelled":
        await booking.post(f"/api/bookings/{created['id']}/cancel", headers=bearer(customer))
    elif ending == "expired":
        await booking_db.execute("UPDATE bookings SET expires_at = now() - interval '1 second'"
                                 " WHERE id = $1", booking_id)
    else:
        await booking_db.execute("UPDATE bookings SET tour_date = current_date WHERE id = $1",
                                 booking_id)
    version = (await row(booking_db, created["id"]))["version"]

    resp = await patch(booking, customer, created, {"participants": 3}, version=version)

    assert (resp.status, (await resp.json())["error"]) == (409, "BOOKING_NOT_CHANGEABLE")
    assert (await row(booking_db, created["id"]))["participants"] == 2
    assert payments.calls == []


async def test_only_the_owner_or_an_admin_changes_a_booking(
        *, booking: TestClient, catalog: Catalog, payments: PaymentsStandIn,
        customer: dict[str, Any], other_customer: dict[str, Any],
        admin: dict[str, Any]) -> None:
    departure = await catalog.departure()
    created = await book(booking, customer, departure)

    theirs = await patch(booking, other_customer, created, {"specialRequests": "Hi"})
    by_admin = await patch(booking, admin, created, {"specialRequests": "Window seat"})

    assert (theirs.status, (await theirs.json())["error"]) == (404, "BOOKING_NOT_FOUND")
    assert (by_admin.status, (await by_admin.json())["specialRequests"]) == (200, "Window seat")
    for body in ({}, {"participants": None}, {"contact": None}, {"participants": "3"},
                 {"totalAmount": 1}):
        refused = await patch(booking, customer, created, body, version=2)
        assert refused.status == 400, body


async def test_a_payment_landing_mid_change_waits_for_it_then_applies_to_what_stands(
        *, booking: TestClient, catalog: Catalog, payments: PaymentsStandIn,
        customer: dict[str, Any], reader: QueueReader, booking_db: asyncpg.Connection) -> None:
    """The customer pays the old total while a change is asking payments for the new one:
    payments sees the payment and refuses the change; the payment event, held back by the
    change's row lock meanwhile, then confirms the booking as it was."""
    departure = await catalog.departure(price=1000, max_group_size=10)
    created = await book(booking, customer, departure, participants=2)
    payments.gate.clear()
    change = asyncio.create_task(patch(booking, customer, created, {"participants": 4}))
    await eventually(lambda: payments.waiting == 1, message="the change asked payments")

    await publish_payment(reader, "payment.succeeded", created)
    await eventually(lambda: lock_waiters(booking_db), message="the payment event waits")
    assert await status_of(booking, customer, created["id"]) == ("pending", "unpaid")
    payments.answer = "in_progress"
    payments.gate.set()

    resp = await change
    assert (resp.status, (await resp.json())["error"]) == (409, "PAYMENT_IN_PROGRESS")
    await eventually(lambda: booking_db.fetchval(
        "SELECT payment_status = 'paid' FROM bookings WHERE id = $1", uuid.UUID(created["id"])))
    stored = await row(booking_db, created["id"])
    assert (stored["status"], stored["participants"], stored["paid_amount"]) == (
        "confirmed", 2, 2000)
    await eventually(lambda: catalog.hold_is(created["id"], "booked"))
    assert await seats_held(catalog, created["id"]) == 2
    assert await booking_db.fetchval("SELECT count(*) FROM payment_anomalies WHERE"
                                     " booking_id = $1", uuid.UUID(created["id"])) == 0


async def test_a_payment_of_the_new_total_confirms_the_changed_booking(
        *, booking: TestClient, catalog: Catalog, payments: PaymentsStandIn,
        customer: dict[str, Any], reader: QueueReader, booking_db: asyncpg.Connection) -> None:
    departure = await catalog.departure(price=1000, max_group_size=10)
    created = await book(booking, customer, departure, participants=2)
    payments.gate.clear()
    change = asyncio.create_task(patch(booking, customer, created, {"participants": 3}))
    await eventually(lambda: payments.waiting == 1, message="the change asked payments")
    # The intent now asks 3000; the customer pays it at once, before booking committed.
    await publish_payment(reader, "payment.succeeded", created, amount=3000)
    await eventually(lambda: lock_waiters(booking_db), message="the payment event waits")
    payments.gate.set()

    assert (await change).status == 200
    await eventually(lambda: booking_db.fetchval(
        "SELECT status = 'confirmed' FROM bookings WHERE id = $1", uuid.UUID(created["id"])))
    assert (await row(booking_db, created["id"]))["paid_amount"] == 3000
    await eventually(lambda: catalog.hold_is(created["id"], "booked"))
    assert await seats_held(catalog, created["id"]) == 3


async def test_the_jobs_set_right_a_change_that_died_half_way(
        booking: TestClient, catalog: Catalog, payments: PaymentsStandIn,
        customer: dict[str, Any], booking_db: asyncpg.Connection) -> None:
    """What a process that died after catalog and payments took the change, before booking
    committed it, leaves behind: a mark, and a hold and an amount the booking does not have."""
    departure = await catalog.departure(price=1000, max_group_size=10)
    created = await book(booking, customer, departure, participants=2)
    resp = await catalog.client.post(f"/internal/holds/{created['id']}/resize",
                                     json={"seats": 5},
                                     headers={"X-Internal-Token": "test-internal-token"})
    assert resp.status == 200
    payments.amounts[created["id"]] = 5000
    await booking_db.execute("INSERT INTO booking_changes (booking_id, lease_until)"
                             " VALUES ($1, now() + interval '1 minute')",
                             uuid.UUID(created["id"]))

    early = await booking.app[JOBS].settle_changes()  # its lease is still running
    settled = await booking.app[JOBS].settle_changes(now=datetime.now(UTC) + timedelta(hours=1))

    assert (early, settled) == (0, 1)
    assert await seats_held(catalog, created["id"]) == 2
    assert await catalog.available_seats(departure) == 8
    assert payments.amounts[created["id"]] == 2000
    assert await booking_db.fetchval("SELECT count(*) FROM booking_changes") == 0
