"""Bookings created per second through the gateway (seat holds included), and the lag of the saga's
event hop: from booking's commit of `booking.confirmed` in its outbox to catalog's commit of the
seats it books, at steady payment rates, and how fast the backlog drains once the load stops.

    .venv/bin/python -m bench.booking [--seconds 10] [--concurrency 16] [--rates 10,50]
                                      [--lag-seconds 20] [--burst 500]

Starts auth, catalog, booking and the gateway as processes on free ports, each on a throw-away
database, on a private RabbitMQ vhost and Redis prefix, and removes them all at the end. Needs
the local PostgreSQL, Redis and RabbitMQ (with `rabbitmqctl`).

The payments arrive as `payment.succeeded` events published on the exchange at a steady rate, as
the payments service would after Stripe's webhooks. The lag of one booking is catalog's
`seat_holds.updated_at` for it minus booking's `outbox.created_at` of its `booking.confirmed`:
both are the start times of their transactions on the one PostgreSQL server (one clock), each a
few milliseconds before its commit.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import secrets
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import aiormq
import asyncpg

from auth.admin import ensure_admin
from auth.config import Config as AuthConfig
from auth.keys import ensure_keys
from bench.load import drive, summary
from common.bus import EXCHANGE, Event
from common.config import load_config
from ops import infra
from ops.stack import Stack

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
AMQP_URL = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
PASSWORD = "Bench12345"
INTERNAL_TOKEN = secrets.token_urlsafe(24)


def start_stack(folder: Path, run: str, vhost: str) -> Stack:
    ensure_keys(folder / "private.pem", folder / "public.pem")
    stack = Stack(
        env={"APP_ENV": "test", "LOG_FORMAT": "json", "LOG_LEVEL": "WARNING",
             "AMQP_URL": infra.with_vhost(AMQP_URL, vhost), "REDIS_URL": REDIS_URL,
             "REDIS_PREFIX": f"tourbook:{run}:", "INTERNAL_TOKENS": INTERNAL_TOKEN,
             "JWT_PRIVATE_KEY_FILE": str(folder / "private.pem"),
             "JWT_PUBLIC_KEY_FILE": str(folder / "public.pem"),
             "AUTH_BCRYPT_ROUNDS": "4", "AUTH_ACCESS_TOKEN_TTL": "3600",
             "GATEWAY_RATE_LIMITS": "/=100000000/60"},
        database_server=POSTGRES_URL, prefix=f"tb_{run}", logs=folder / "logs")
    for name in ("auth", "catalog", "booking", "gateway"):
        stack.start(name)
    return stack


async def call(http: aiohttp.ClientSession, method: str, url: str, expect: int,
               **kwargs: Any) -> Any:
    async with http.request(method, url, **kwargs) as resp:
        body = await resp.json(content_type=None)
        if resp.status != expect:
            raise RuntimeError(f"{method} {url}: {resp.status} {body}")
        return body


async def prepare(http: aiohttp.ClientSession, stack: Stack, gateway: str,
                  users: int) -> tuple[str, str, list[str]]:
    """An admin's tour with one departure roomy enough for the whole run; (tour id, date,
    travellers' tokens)."""
    email = f"admin-{secrets.token_hex(4)}@example.com"
    await ensure_admin(load_config(AuthConfig, stack.env_for("auth")), email, PASSWORD)
    admin = await call(http, "POST", gateway + "/api/auth/login", 200,
                       json={"email": email, "password": PASSWORD})
    headers = {"Authorization": f"Bearer {admin['accessToken']}"}
    tour = await call(http, "POST", gateway + "/api/tours", 201, headers=headers, json={
        "title": f"Bench tour {secrets.token_hex(3)}", "summary": "A tour for the benchmark.",
        "description": "The benchmark books this tour many times over.", "price": 4500,
        "currency": "EUR", "duration": 3, "durationUnit": "hours", "difficulty": "easy",
        "maxGroupSize": 10})
    when = (datetime.now(UTC).date() + timedelta(days=30)).isoformat()
    await call(http, "POST", f"{gateway}/api/tours/{tour['id']}/departures", 201,
               headers=headers, json={"date": when, "capacity": 10_000})
    tokens = []
    for n in range(users):
        traveller = await call(http, "POST", gateway + "/api/auth/register", 201, json={
            "email": f"bench-{n}-{secrets.token_hex(4)}@example.com", "password": PASSWORD,
            "firstName": "Bench", "lastName": f"Traveller{n}"})
        tokens.append(traveller["accessToken"])
    return tour["id"], when, tokens


async def measure_creation(http: aiohttp.ClientSession, gateway: str, tour_id: str, when: str,
                           tokens: list[str], *, seconds: float,
                           concurrency: int) -> dict[str, object]:
    def each(n: int) -> dict[str, Any]:
        return {"headers": {"Authorization": f"Bearer {tokens[n % len(tokens)]}",
                            "Idempotency-Key": str(uuid.uuid4())}}

    body = {"tourId": tour_id, "tourDate": when, "participants": 1}
    await drive(http, "POST", gateway + "/api/bookings", 1, concurrency, expect=201,
                each=each, json=body)  # warm-up
    count, latencies = await drive(http, "POST", gateway + "/api/bookings", seconds,
                                   concurrency, expect=201, each=each, json=body)
    return summary("POST /api/bookings through the gateway", count, latencies, seconds)


async def pending_bookings(booking_db: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(booking_db)
    try:
        return list(await conn.fetch(
            "SELECT id, user_id, total_amount, currency FROM bookings "
            "WHERE status = 'pending' ORDER BY created_at"))
    finally:
        await conn.close()


async def publish_payments(amqp_url: str, bookings: list[asyncpg.Record], rate: float) -> float:
    """`payment.succeeded` for each booking, `rate` a second on a steady schedule (all at once
    for an infinite rate); the time the last one was published."""
    connection = await aiormq.connect(amqp_url)
    try:
        channel = await connection.channel(publisher_confirms=True)
        started = time.monotonic()
        for n, booking in enumerate(bookings):
            delay = started + n / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            event = Event.new("payment.succeeded", {
                "paymentId": str(uuid.uuid4()), "bookingId": str(booking["id"]),
                "userId": str(booking["user_id"]), "amount": booking["total_amount"],
                "currency": booking["currency"], "refundedAmount": 0, "failureMessage": None,
                "paymentIntentId": f"pi_bench_{n}"})
            await channel.basic_publish(event.to_json(), exchange=EXCHANGE,
                                        routing_key="payment.succeeded",
                                        properties=event.properties())
        return time.monotonic()
    finally:
        await connection.close()


async def lags(booking_db: str, catalog_db: str, ids: list[uuid.UUID],
               within: float = 120) -> tuple[list[float], float]:
    """(lag of each booking in ms, when the last seat commit was seen), once every booking's
    seats are booked in catalog."""
    texts = [str(i) for i in ids]
    booking, catalog = await asyncpg.connect(booking_db), await asyncpg.connect(catalog_db)
    try:
        deadline = time.monotonic() + within
        while True:
            done = await catalog.fetchval(
                "SELECT count(*) FROM seat_holds WHERE state = 'booked' "
                "AND booking_id = ANY($1::uuid[])", ids)
            if done == len(ids):
                drained = time.monotonic()
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {done} of {len(ids)} bookings reached catalog")
            await asyncio.sleep(0.01)
        committed = dict(await booking.fetch(
            "SELECT payload->'data'->>'bookingId', created_at FROM outbox "
            "WHERE routing_key = 'booking.confirmed' "
            "AND payload->'data'->>'bookingId' = ANY($1::text[])", texts))
        booked = dict(await catalog.fetch(
            "SELECT booking_id::text, updated_at FROM seat_holds "
            "WHERE booking_id = ANY($1::uuid[])", ids))
    finally:
        await booking.close()
        await catalog.close()
    return [(booked[i] - committed[i]).total_seconds() * 1000 for i in texts], drained


async def measure_lag(stack: Stack, amqp_url: str, bookings: list[asyncpg.Record],
                      rate: float) -> dict[str, object]:
    last_published = await publish_payments(amqp_url, bookings, rate)
    lag, drained = await lags(stack.database("booking"), stack.database("catalog"),
                              [b["id"] for b in bookings])
    cuts = statistics.quantiles(lag, n=100, method="inclusive")
    return {"rate": rate, "events": len(bookings), "p50_ms": round(cuts[49], 1),
            "p99_ms": round(cuts[98], 1), "max_ms": round(max(lag), 1),
            "drained_after_s": round(max(0.0, drained - last_published), 2)}


async def bench(args: argparse.Namespace, folder: Path) -> None:
    run = f"bench{secrets.token_hex(4)}"
    vhost = f"tourbook-{run}"
    infra.create_vhost(vhost)
    stack = None
    try:
        # Stack provisions with asyncio.run of its own: a thread keeps it off this loop.
        stack = await asyncio.to_thread(start_stack, folder, run, vhost)
        gateway = stack.urls("gateway")[0]
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as http:
            tour_id, when, tokens = await prepare(http, stack, gateway, args.users)
            creation = await measure_creation(http, gateway, tour_id, when, tokens,
                                              seconds=args.seconds, concurrency=args.concurrency)
        pending = await pending_bookings(stack.database("booking"))
        rows = []
        runs = [(float(r), int(float(r) * args.lag_seconds)) for r in args.rates.split(",")]
        if args.burst:
            runs.append((math.inf, args.burst))  # a backlog: every payment at once
        for rate, wanted in runs:
            if len(pending) < wanted:
                raise RuntimeError(f"{len(pending)} pending bookings, {wanted} needed: "
                                   "raise --seconds")
            batch, pending = pending[:wanted], pending[wanted:]
            rows.append(await measure_lag(stack, infra.with_vhost(AMQP_URL, vhost), batch, rate))
    finally:
        if stack is not None:
            await asyncio.to_thread(stack.stop)
        infra.delete_vhost(vhost)
        await infra.drop_redis_prefix(REDIS_URL, f"tourbook:{run}:")

    print(f"booking: {args.concurrency} concurrent clients for {args.seconds:g} s, "
          f"{args.users} travellers, one process per service, {os.cpu_count()} CPUs")
    print(f"{'measure':<42}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}")
    print(f"{creation['measure']:<42}{creation['rps']:>10}{creation['p50_ms']:>10}"
          f"{creation['p99_ms']:>10}")
    print("\nevent lag, booking.confirmed outbox commit -> catalog seat commit")
    print(f"{'payments/s':>10}{'events':>8}{'p50 ms':>10}{'p99 ms':>10}{'max ms':>10}"
          f"{'drained after s':>17}")
    for row in rows:
        rate = "burst" if row["rate"] == math.inf else format(row["rate"], "g")
        print(f"{rate:>10}{row['events']:>8}{row['p50_ms']:>10}{row['p99_ms']:>10}"
              f"{row['max_ms']:>10}{row['drained_after_s']:>17}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10, help="of booking creation")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--users", type=int, default=16)
    parser.add_argument("--rates", default="10,50", help="payments per second, one run each")
    parser.add_argument("--lag-seconds", type=float, default=20, help="per rate")
    parser.add_argument("--burst", type=int, default=500,
                        help="then this many payments at once, to see a backlog drain (0: none)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        asyncio.run(bench(args, Path(folder)))


if __name__ == "__main__":
    main()
