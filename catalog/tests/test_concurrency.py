"""The seat invariant under load: 200 booking ids asking at once for the last 10 seats get
exactly 10 holds, from one catalog or from two processes on one database, and the counters never
pass through an impossible state on the way."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import asyncpg

from catalog.tests.conftest import SERVICE, Api, StartCatalogs, seats_of

RUSH = 200


async def watch(database: str, departure_id: str, watching: asyncio.Event,
                stop: asyncio.Event) -> list[tuple[int, ...]]:
    """Every (capacity, held, booked) the departure passes through while the rush lasts."""
    seen = []
    conn = await asyncpg.connect(database)
    try:
        while not stop.is_set():
            row = await conn.fetchrow(
                "SELECT capacity, held, booked FROM departures WHERE id = $1",
                uuid.UUID(departure_id))
            seen.append(tuple(row))
            watching.set()
            await asyncio.sleep(0.002)  # a sampling period, not a wait for something
    finally:
        await conn.close()
    return seen


def hold_body(departure: dict[str, Any]) -> dict[str, Any]:
    return {"bookingId": str(uuid.uuid4()), "tourId": departure["tourId"],
            "tourDate": departure["date"], "seats": 1,
            "expiresAt": (datetime.now(UTC) + timedelta(minutes=15)).isoformat()}


async def rush(post: Callable[[int, dict[str, Any]], Awaitable[tuple[int, dict[str, Any]]]],
               departure: dict[str, Any], database: str) -> tuple[list[tuple[int, Any]],
                                                                  list[tuple[int, ...]]]:
    """RUSH hold requests at once, one seat each; (answers, counter states seen meanwhile)."""
    watching, stop = asyncio.Event(), asyncio.Event()
    watcher = asyncio.create_task(watch(database, departure["id"], watching, stop))
    async with asyncio.timeout(10):
        await watching.wait()  # it has seen the state before the rush
    try:
        answers = await asyncio.gather(*(post(n, hold_body(departure)) for n in range(RUSH)))
    finally:
        stop.set()
    return answers, await watcher


async def check_exactly_ten(answers: list[tuple[int, Any]], states: list[tuple[int, ...]],
                            departure: dict[str, Any], conn: asyncpg.Connection) -> None:
    assert sorted(status for status, _ in answers) == [201] * 10 + [409] * (RUSH - 10)
    assert {body["error"] for status, body in answers if status == 409} == {
        "INSUFFICIENT_AVAILABILITY"}
    assert all(held >= 0 and booked >= 0 and held + booked <= capacity
               for capacity, held, booked in states), "an impossible state was visible"
    assert len(states) > 1
    assert await seats_of(conn, departure["id"]) == (30, 30, 0)
    granted = sorted(body["bookingId"] for status, body in answers if status == 201)
    stored = sorted(str(r["booking_id"]) for r in await conn.fetch(
        "SELECT booking_id FROM seat_holds WHERE departure_id = $1 AND NOT booking_id = ANY($2)",
        uuid.UUID(departure["id"]), departure["earlier"]))
    assert stored == granted


async def last_ten_seats(api: Api) -> dict[str, Any]:
    """A departure of 30 seats with 20 already held: the last 10 are up for grabs."""
    _, departure = await api.tour_with_departure(capacity=30)
    early = [await api.held(departure, 10) for _ in range(2)]
    return {**departure, "earlier": [uuid.UUID(h["bookingId"]) for h in early]}


async def test_200_concurrent_holds_for_the_last_10_seats_get_exactly_10(
        api: Api, conn, catalog_database: str):
    departure = await last_ten_seats(api)

    async def post(n: int, body: dict[str, Any]) -> tuple[int, Any]:
        resp = await api.client.post("/internal/holds", json=body, headers=SERVICE)
        return resp.status, await resp.json()

    answers, states = await rush(post, departure, catalog_database)
    await check_exactly_ten(answers, states, departure, conn)


async def test_two_catalog_processes_share_the_last_10_seats_exactly(
        api: Api, conn, catalog_database: str, start_catalogs: StartCatalogs):
    urls = [catalog.url for catalog in start_catalogs(2)]
    departure = await last_ten_seats(api)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector,
                                     timeout=aiohttp.ClientTimeout(total=60)) as http:

        async def post(n: int, body: dict[str, Any]) -> tuple[int, Any]:
            async with http.post(f"{urls[n % 2]}/internal/holds", json=body,
                                 headers=SERVICE) as resp:
                return resp.status, await resp.json()

        answers, states = await rush(post, departure, catalog_database)
    await check_exactly_ten(answers, states, departure, conn)
    # Both processes granted and refused: the race really was between them.
    by_process = [[status for n, (status, _) in enumerate(answers) if n % 2 == side]
                  for side in (0, 1)]
    assert all(409 in statuses for statuses in by_process)


async def test_concurrent_repeats_of_one_booking_id_hold_once(api: Api, conn):
    _, departure = await api.tour_with_departure(capacity=10)
    body = hold_body(departure) | {"seats": 3}
    answers = await asyncio.gather(*(api.client.post("/internal/holds", json=body,
                                                     headers=SERVICE) for _ in range(20)))
    assert sorted(r.status for r in answers) == [200] * 19 + [201]
    assert await seats_of(conn, departure["id"]) == (10, 3, 0)
    actions = [api.hold_action(body["bookingId"], action)
               for action in ("confirm", "release") for _ in range(10)]
    results = await asyncio.gather(*actions)
    # Whatever the interleaving, the release is final: confirmations after it are refused.
    assert {(await r.json()).get("error") for r in results if r.status != 200} <= {
        "HOLD_RELEASED"}
    assert await seats_of(conn, departure["id"]) == (10, 0, 0)
