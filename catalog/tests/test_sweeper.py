"""The hold sweeper: holds left 'held' well past their expiry (a booking process died between
taking the hold and storing its booking) are released with their events, once, however many
catalog replicas sweep at the same time; holds still within their grace are left alone."""

from __future__ import annotations

import asyncio
import uuid

from catalog.config import Config
from catalog.metrics import SeatMetrics
from catalog.sweeper import HoldSweeper
from catalog.tests.conftest import SERVICE, Api, Bus, orphan, seats_of
from common.db import create_pool


async def test_an_orphan_hold_is_released_with_its_event(api: Api, conn, bus: Bus):
    tour, departure = await api.tour_with_departure(capacity=10)
    abandoned, recent, paid = (await api.held(departure, 2), await api.held(departure, 3),
                               await api.held(departure, 1))
    await api.hold_action(paid["bookingId"], "confirm")
    # Expired five minutes ago: booking is still about to expire it itself (grace 10 min).
    await conn.execute(
        "UPDATE seat_holds SET expires_at = now() - interval '5 minutes' WHERE booking_id = $1",
        uuid.UUID(recent["bookingId"]))
    await orphan(api, conn, abandoned)

    assert await seats_of(conn, departure["id"]) == (10, 3, 1)
    state = await api.get(f"/internal/holds/{recent['bookingId']}", headers=SERVICE)
    assert state["state"] == "held"
    events = await bus.events(tour["id"], 5)
    assert events[-1]["data"] == {
        "tourId": tour["id"], "departureId": departure["id"], "tourDate": departure["date"],
        "availableSeats": 6, "capacity": 10, "heldSeats": 3, "bookedSeats": 1}
    assert await api.metric("catalog_seats_total", change="expired") == 2


async def test_replicas_sweeping_together_release_each_orphan_once(
        api: Api, conn, catalog_config: Config):
    departures = [(await api.tour_with_departure(capacity=12))[1] for _ in range(3)]
    holds = [await api.held(departure) for departure in departures for _ in range(10)]
    ids = [uuid.UUID(hold["bookingId"]) for hold in holds]
    await conn.execute("UPDATE seat_holds SET expires_at = now() - interval '1 hour'"
                       " WHERE booking_id = ANY($1)", ids)

    pools = [await create_pool(catalog_config.database_url, max_size=2) for _ in range(3)]
    try:
        sweepers = [HoldSweeper(pool, SeatMetrics(), grace=600, interval=60, batch=100)
                    for pool in pools]
        released = await asyncio.gather(*(sweeper.sweep() for sweeper in sweepers))
    finally:
        await asyncio.gather(*(pool.close() for pool in pools))

    assert sum(released) <= 30  # the app's own sweeper may have taken some too
    for departure in departures:
        assert await seats_of(conn, departure["id"]) == (12, 0, 0)
    states = await conn.fetch("SELECT state, release_reason FROM seat_holds"
                              " WHERE booking_id = ANY($1)", ids)
    assert {tuple(row) for row in states} == {("released", "expired")}
    # One availability event per hold taken and one per hold released: none twice.
    published = await conn.fetchval(
        """SELECT count(*) FROM outbox WHERE routing_key = 'tour.availability.changed'
             AND payload->'data'->>'departureId' = ANY($1)""",
        [departure["id"] for departure in departures])
    assert published == 60
