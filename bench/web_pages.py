"""Server time of the web site's main pages, stack idle, one request at a time straight to web:
`.venv/bin/python -m bench.web_pages [--seconds 5]`. Starts every service the pages call on
throw-away databases, a vhost and a Redis prefix of its own (PostgreSQL, Redis, RabbitMQ)."""

from __future__ import annotations

import argparse
import asyncio
import re
import secrets
import statistics
import tempfile
import uuid
from pathlib import Path

import aiohttp

from auth.keys import ensure_keys
from bench.load import drive
from catalog.config import Config as CatalogConfig
from catalog.seed import seed
from common.config import load_config
from common.testing import TEST_PASSWORD, free_port, register
from ops import infra
from ops.stack import Stack

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
WEBHOOK_SECRET = "whsec_bench"
PAGES = ("/", "/tours", "/tours?q=paris", "/tours/{slug}", "/bookings", "/bookings/{booking}",
         "/checkout?booking={booking}", "/cart", "/login")


def start(folder: Path, run: str, amqp: str) -> tuple[Stack, dict[str, str]]:
    private, public = folder / "private.pem", folder / "public.pem"
    ensure_keys(private, public)
    stack = Stack(env={"APP_ENV": "test", "LOG_FORMAT": "json", "LOG_LEVEL": "WARNING",
                       "AMQP_URL": amqp, "REDIS_PREFIX": f"tourbook:{run}:",
                       "JWT_PRIVATE_KEY_FILE": str(private), "JWT_PUBLIC_KEY_FILE": str(public),
                       "INTERNAL_TOKENS": "bench-internal", "AUTH_BCRYPT_ROUNDS": "4",
                       "GATEWAY_RATE_LIMITS": "/=1000000/60"},
                  database_server=POSTGRES_URL, prefix=f"tb_{run}", logs=folder / "logs")
    for name in ("auth", "catalog", "booking"):
        stack.start(name)
    gateway = free_port()
    stripe = stack.start("standins.stripe", health="/health",
                         STRIPE_STANDIN_WEBHOOK_SECRET=WEBHOOK_SECRET,
                         STRIPE_STANDIN_WEBHOOK_URL=f"http://127.0.0.1:{gateway}/webhooks/stripe")
    stack.start("payments", STRIPE_API_BASE=stripe, STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET)
    origin = f"http://127.0.0.1:{gateway}"
    web = stack.start("web", WEB_API_URL=origin, WEB_STRIPE_STANDIN_URL=stripe)
    stack.start("gateway", port=gateway, GATEWAY_TRUSTED_PROXIES="127.0.0.1/32",
                GATEWAY_PAGE_CLIENTS="127.0.0.1/32")
    asyncio.run(seed(load_config(CatalogConfig, stack.env_for("catalog"))))
    return stack, {"gateway": origin, "web": web}


async def measure(urls: dict[str, str], seconds: float) -> list[dict[str, object]]:
    who = register(urls["gateway"], "Bench")
    # The session cookie of a site on 127.0.0.1: aiohttp keeps cookies of IP hosts only if told.
    async with aiohttp.ClientSession(headers={"Accept": "text/html"},
                                     cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        async with session.get(urls["gateway"] + "/api/tours?sort=startDate&limit=1") as r:
            tour = (await r.json())["items"][0]
        async with session.get(f"{urls['gateway']}/api/tours/{tour['id']}") as r:
            when = (await r.json())["departures"][0]["date"]
        async with session.post(urls["gateway"] + "/api/bookings", json={
                "tourId": tour["id"], "tourDate": when, "participants": 1}, headers={
                "Authorization": f"Bearer {who['accessToken']}",
                "Idempotency-Key": str(uuid.uuid4())}) as r:
            booking = (await r.json())["id"]
        async with session.get(urls["web"] + "/login") as r:
            csrf = re.search(r'name="csrf" value="([^"]+)"', await r.text())
        assert csrf is not None
        async with session.post(urls["web"] + "/login", data={
                "csrf": csrf.group(1), "email": who["user"]["email"],
                "password": TEST_PASSWORD, "next": "/"}, allow_redirects=False) as r:
            assert r.status == 303, r.status
        results = []
        for page in PAGES:
            url = urls["web"] + page.format(slug=tour["slug"], booking=booking)
            await drive(session, "GET", url, 1, 1)  # warm: reference data, keys, pools
            count, latencies = await drive(session, "GET", url, seconds, 1)
            cuts = statistics.quantiles(latencies, n=100)
            results.append({"page": page, "requests": count,
                            "p50_ms": round(cuts[49] * 1000, 1),
                            "p95_ms": round(cuts[94] * 1000, 1),
                            "p99_ms": round(cuts[98] * 1000, 1)})
        return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    run = "b" + secrets.token_hex(4)
    vhost = f"tourbook-{run}"
    infra.create_vhost(vhost)
    try:
        with tempfile.TemporaryDirectory() as folder:
            stack, urls = start(Path(folder), run, infra.with_vhost(
                "amqp://guest:guest@127.0.0.1:5672/", vhost))
            try:
                for line in asyncio.run(measure(urls, args.seconds)):
                    print(line)
            finally:
                stack.stop()
    finally:
        infra.delete_vhost(vhost)
        asyncio.run(infra.drop_redis_prefix("redis://127.0.0.1:6379/0", f"tourbook:{run}:"))


if __name__ == "__main__":
    main()
