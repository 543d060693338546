"""No departure is ever sold past its capacity: 200 travellers ask at once for the last 10 seats,
through two booking processes each calling its own catalog process on the one catalog database."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import aiohttp
import asyncpg
import pytest

from catalog.tests.test_concurrency import watch
from ops.stack import Stack
from tests.conftest import call, register
from tests.test_booking_saga import create_tour, seats_left


@pytest.fixture(scope="module")
def pairs(stack: Stack, platform: dict[str, str]) -> list[str]:
    """Two booking URLs, each in front of a catalog process of its own."""
    second_catalog = stack.start("catalog")
    second_booking = stack.start("booking", CATALOG_URL=second_catalog)
    return [platform["booking"], second_booking]


async def test_200_travellers_for_the_last_10_seats_get_exactly_10_holds(
        stack: Stack, platform: dict[str, str], admin_token: str, pairs: list[str]) -> None:
    gateway = platform["gateway"]
    tour, when = create_tour(gateway, admin_token, capacity=10)
    travellers = [register(gateway, f"Rush{n}") for n in range(20)]
    [departure] = call("GET", f"{gateway}/api/tours/{tour['id']}")[1]["departures"]
    watching, stop = asyncio.Event(), asyncio.Event()
    watcher = asyncio.create_task(
        watch(stack.database("catalog"), departure["id"], watching, stop))
    async with asyncio.timeout(10):
        await watching.wait()  # it has seen the state before the rush

    async def book(http: aiohttp.ClientSession, n: int) -> tuple[int, dict[str, Any]]:
        traveller = travellers[n % len(travellers)]
        async with http.post(f"{pairs[n % 2]}/api/bookings", json={
                "tourId": tour["id"], "tourDate": when, "participants": 1},
                headers={"Authorization": f"Bearer {traveller['accessToken']}",
                         "Idempotency-Key": str(uuid.uuid4())}) as resp:
            return resp.status, await resp.json()

    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector,
                                     timeout=aiohttp.ClientTimeout(total=120)) as http:
        answers = await asyncio.gather(*(book(http, n) for n in range(200)))
    stop.set()
    states = await watcher

    statuses = sorted(status for status, _ in answers)
    assert statuses == [201] * 10 + [409] * 190, statuses
    refusals = [body for status, body in answers if status == 409]
    assert {body["error"] for body in refusals} == {"INSUFFICIENT_AVAILABILITY"}
    assert seats_left(gateway, tour["id"], when) == 0
    assert states, "the watcher saw nothing"
    assert all(held >= 0 and booked >= 0 and held + booked <= capacity
               for capacity, held, booked in states)

    # Exactly the ten bookings that got seats exist, each holding its seat in catalog.
    booked_ids = sorted(body["id"] for status, body in answers if status == 201)
    conn = await asyncpg.connect(stack.database("booking"))
    try:
        stored = sorted(str(r["id"]) for r in await conn.fetch(
            "SELECT id FROM bookings WHERE tour_id = $1", uuid.UUID(tour["id"])))
    finally:
        await conn.close()
    assert stored == booked_ids
    conn = await asyncpg.connect(stack.database("catalog"))
    try:
        holds = sorted(str(r["booking_id"]) for r in await conn.fetch(
            "SELECT booking_id FROM seat_holds WHERE state = 'held' AND departure_id IN "
            "(SELECT id FROM departures WHERE tour_id = $1)", uuid.UUID(tour["id"])))
    finally:
        await conn.close()
    assert holds == booked_ids
