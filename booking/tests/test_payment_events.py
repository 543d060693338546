"""What payments' events do to bookings, published on the real broker as payments publishes them:
each applied once, through the state machine, with the booking event in the same transaction;
malformed ones in the dead-letter queue."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from booking.app_keys import JOBS
from booking.consumers import QUEUE
from booking.tests.conftest import Catalog, book, metric, outbox, publish_payment, status_of
from common.bus import EXCHANGE, Event
from common.bus.testing import EventProbe, QueueReader, headers
from common.testing import bearer, eventually


async def has_status(client: TestClient, who: dict[str, Any], booking_id: str,
                     expected: tuple[str, str]) -> bool:
    return await status_of(client, who, booking_id) == expected


async def handled(client: TestClient, routing_key: str, outcome: str, count: int) -> bool:
    return metric(client, "events_consumed_total", consumer="booking",
                  routing_key=routing_key, outcome=outcome) == count


async def test_a_payment_confirms_the_booking_and_catalog_books_the_seats(
        booking: TestClient, catalog: Catalog, customer: dict[str, Any], reader: QueueReader,
        probe: EventProbe) -> None:
    departure = await catalog.departure()
    created = await book(booking, customer, departure, participants=2)

    await publish_payment(reader, "payment.succeeded", created)

    event, *_ = await probe.wait_for(created["id"], "booking.confirmed")
    assert (event["data"]["status"], event["data"]["paymentStatus"]) == ("confirmed", "paid")
    assert event["data"]["totalAmount"] == created["totalAmount"]
    assert await status_of(booking, customer, created["id"]) == ("confirmed", "paid")
    await eventually(lambda: catalog.hold_is(created["id"], "booked"))
    assert await catalog.available_seats(departure) == 8
    assert metric(booking, "bookings_confirmed_total", source="payment") == 1


async def test_a_payment_delivered_three_times_confirms_once(
        *, booking: TestClient, catalog: Catalog, customer: dict[str, Any], reader: QueueReader,
        probe: EventProbe, booking_db: asyncpg.Connection) -> None:
    departure = await catalog.departure()
    created = await book(booking, customer, departure)

    event = await publish_payment(reader, "payment.succeeded", created)
    await publish_payment(reader, "payment.succeeded", created, event=event)
    await publish_payment(reader, "payment.succeeded", created, event=event)

    await eventually(lambda: handled(booking, "payment.succeeded", "handled", 1))
    await eventually(lambda: handled(booking, "payment.succeeded", "duplicate", 2))
    assert await outbox(booking_db, created["id"]) == ["booking.confirmed"]
    await probe.wait_for(created["id"], "booking.confirmed")
    await eventually(lambda: booking_db.fetchval(
        "SELECT count(*) = 0 FROM outbox WHERE published_at IS NULL"), message="outbox sent")
    assert len(await probe.events(created["id"])) == 1
    assert await status_of(booking, customer, created["id"]) == ("confirmed", "paid")


async def test_a_failed_payment_leaves_the_booking_pending_until_a_payment_succeeds(
        booking: TestClient, catalog: Catalog, customer: dict[str, Any], reader: QueueReader,
        booking_db: asyncpg.Connection) -> None:
    departure = await catalog.departure()
    created = await book(booking, customer, departure)

    await publish_payment(reader, "payment.failed", created, failureMessage="Card declined")
    await eventually(lambda: has_status(booking, customer, created["id"],
                                        ("pending", "failed")))
    assert await outbox(booking_db, created["id"]) == []

    await publish_payment(reader, "payment.succeeded", created)
    await eventually(lambda: has_status(booking, customer, created["id"],
                                        ("confirmed", "paid")))


async def test_a_failure_reported_after_the_success_changes_nothing(
        booking: TestClient, catalog: Catalog, customer: dict[str, Any],
        reader: QueueReader) -> None:
    departure = await catalog.departure()
    created = await book(booking, customer, departure)
    await publish_payment(reader, "payment.succeeded", created)
    await eventually(lambda: has_status(booking, customer, created["id"],
                                        ("confirmed", "paid")))

    await publish_payment(reader, "payment.failed", created)

    await eventually(lambda: handled(booking, "payment.failed", "handled", 1))
    assert await status_of(booking, customer, created["id"]) == ("confirmed", "paid")


async def test_refunds_are_partial_until_the_whole_total_is_back(
        booking: TestClient, catalog: Catalog, customer: dict[str, Any], reader: QueueReader,
        booking_db: asyncpg.Connection) -> None:
    departure = await catalog.departure(price=5000)
    created = await book(booking, customer, departure, participants=2)
    await publish_payment(reader, "payment.succeeded", created)

    await publish_payment(reader, "payment.refunded", created, refundedAmount=4000)
    await eventually(lambda: has_status(booking, customer, created["id"],
                                        ("confirmed", "partially_refunded")))
    await publish_payment(reader, "payment.refunded", created, refundedAmount=10_000)
    await eventually(lambda: has_status(booking, customer, created["id"],
                                        ("confirmed", "refunded")))

    assert await booking_db.fetchval("SELECT refunded_amount FROM bookings WHERE id = $1",
                                     uuid.UUID(created["id"])) == 10_000
    assert await outbox(booking_db, created["id"]) == ["booking.confirmed"]


async def amounts(client: TestClient, who: dict[str, Any], booking_id: str) -> tuple[int, ...]:
    resp = await client.get(f"/api/bookings/{booking_id}", headers=bearer(who))
    body = await resp.json()
    return body["paidAmount"], body["refundedAmount"], body["netPaidAmount"]


async def test_a_booking_shows_what_was_paid_refunded_and_kept(
        booking: TestClient, catalog: Catalog, customer: dict[str, Any],
        reader: QueueReader) -> None:
    departure = await catalog.departure(price=5000)
    created = await book(booking, customer, departure, participants=2)
    assert await amounts(booking, customer, created["id"]) == (0, 0, 0)
    await publish_payment(reader, "payment.succeeded", created)
    await eventually(lambda: has_status(booking, customer, created["id"],
                                        ("confirmed", "paid")))
    assert await amounts(booking, customer, created["id"]) == (10_000, 0, 10_000)

    # A refund of nothing (an update that added no money back) changes nothing.
    await publish_payment(reader, "payment.refunded", created, refundedAmount=0)
    await eventually(lambda: handled(booking, "payment.refunded", "handled", 1))
    assert await status_of(booking, customer, created["id"]) == ("confirmed", "paid")

    await publish_payment(reader, "payment.refunded", created, refundedAmount=3000)
    await eventually(lambda: has_status(booking, customer, created["id"],
                                        ("confirmed", "partially_refunded")))
    assert await amounts(booking, customer, created["id"]) == (10_000, 3000, 7000)
    # A late event with a smaller total never shrinks what was refunded.
    await publish_payment(reader, "payment.refunded", created, refundedAmount=1000)
    await eventually(lambda: handled(booking, "payment.refunded", "handled", 3))
    assert await amounts(booking, customer, created["id"]) == (10_000, 3000, 7000)
    await publish_payment(reader, "payment.refunded", created, refundedAmount=10_000)
    await eventually(lambda: has_status(booking, customer, created["id"],
                                        ("confirmed", "refunded")))
    assert await amounts(booking, customer, created["id"]) == (10_000, 10_000, 0)


@pytest.mark.parametrize(("data", "reason"), [
    ({"amount": 1}, "amount"),
    ({"currency": "usd"}, "currency"),
    ({"amount": None}, "unverifiable"),
])
async def test_a_payment_that_is_not_the_total_confirms_nothing_and_says_why(
        *, booking: TestClient, catalog: Catalog, customer: dict[str, Any],
        reader: QueueReader, booking_db: asyncpg.Connection, data: dict[str, Any],
        reason: str) -> None:
    departure = await catalog.departure(price=5000)
    created = await book(booking, customer, departure, participants=2)

    event = await publish_payment(reader, "payment.succeeded", created, **data)

    await eventually(lambda: handled(booking, "payment.succeeded", "handled", 1))
    assert await status_of(booking, customer, created["id"]) == ("pending", "unpaid")
    assert await outbox(booking_db, created["id"]) == []
    assert await catalog.hold_state(created["id"]) == "held"
    anomaly = await booking_db.fetchrow(
        "SELECT * FROM payment_anomalies WHERE event_id = $1", uuid.UUID(event.event_id))
    assert (anomaly["booking_id"], anomaly["reason"], anomaly["expected_amount"],
            anomaly["expected_currency"]) == (uuid.UUID(created["id"]), reason, 10_000, "EUR")
    assert anomaly["payment_intent_id"] == event.data["paymentIntentId"]
    assert metric(booking, "booking_payment_anomalies_total", reason=reason) >= 1
    # The right payment still confirms it.
    await publish_payment(reader, "payment.succeeded", created)
    await eventually(lambda: has_status(booking, customer, created["id"],
                                        ("confirmed", "paid")))


async def test_a_payment_landing_after_expiry_is_recorded_and_the_booking_stays_cancelled(
        booking: TestClient, catalog: Catalog, customer: dict[str, Any], reader: QueueReader,
        booking_db: asyncpg.Connection) -> None:
    departure = await catalog.departure()
    created = await book(booking, customer, departure)
    await booking.app[JOBS].expire_due(now=datetime.now(UTC) + timedelta(hours=1))

    await publish_payment(reader, "payment.succeeded", created)

    await eventually(lambda: has_status(booking, customer, created["id"],
                                        ("cancelled", "paid")))
    # Payments refunds it on booking.cancelled; booking announces no confirmation.
    assert await outbox(booking_db, created["id"]) == ["booking.cancelled"]


async def test_malformed_payment_events_go_to_the_dead_letter_queue(
        booking: TestClient, reader: QueueReader) -> None:
    dlq = QUEUE.dlq
    await reader.get_all(dlq)
    not_json = b"{not json"
    no_booking = Event.new("payment.succeeded", {"paymentId": "p-1", "amount": 100})
    bad_booking = Event.new("payment.failed", {"bookingId": "not-a-uuid"})
    no_amount = Event.new("payment.refunded", {"bookingId": str(uuid.uuid4())})

    await reader.publish_raw(not_json, exchange=EXCHANGE, routing_key="payment.succeeded")
    for event in (no_booking, bad_booking, no_amount):
        await reader.publish_raw(event.to_json(), exchange=EXCHANGE,
                                 routing_key=event.event_type, properties=event.properties())

    dead = await reader.take(dlq, 4)
    assert sorted(headers(m)["x-dead-letter-reason"] for m in dead) == [
        "bad-key", "bad-key", "bad-key", "malformed"]
    assert {m.body for m in dead} == {not_json, no_booking.to_json(), bad_booking.to_json(),
                                      no_amount.to_json()}
    assert {headers(m)["x-original-routing-key"] for m in dead} == {
        "payment.succeeded", "payment.failed", "payment.refunded"}
