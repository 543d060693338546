"""Logins per second and `GET /api/auth/profile` per second against the auth service directly,
with bcrypt at cost 12 (production) and at the cost the tests use, side by side in one run.

    .venv/bin/python -m bench.auth [--seconds 10] [--concurrency 16]

Starts its own auth process per cost on a private, throw-away database; needs PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from auth.db import MIGRATIONS
from auth.keys import ensure_keys
from bench.load import drive, summary
from common.db import migrate
from common.testing import free_port
from ops import infra

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
PASSWORD = "Bench12345"


async def wait_ready(base: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError("auth exited during start-up")
            try:
                async with session.get(base + "/health/ready") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError("auth did not become ready")


async def bench_cost(rounds: int, seconds: float, concurrency: int,
                     keys: Path) -> list[dict[str, object]]:
    database = infra.with_database(POSTGRES_URL, f"tb_bench_auth_{secrets.token_hex(4)}")
    await infra.ensure_database(database)
    port = free_port()
    env = {**os.environ, "APP_ENV": "test", "AUTH_DATABASE_URL": database, "AUTH_PORT": str(port),
           "AUTH_BCRYPT_ROUNDS": str(rounds), "LOG_LEVEL": "WARNING", "LOG_FORMAT": "json",
           "JWT_PRIVATE_KEY_FILE": str(keys / "private.pem"),
           "JWT_PUBLIC_KEY_FILE": str(keys / "public.pem")}
    process = None
    try:
        await migrate(database, MIGRATIONS)
        process = subprocess.Popen([sys.executable, "-m", "auth"], env=env,
                                   stdout=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        await wait_ready(base, process)
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector) as session:
            email = "bench@example.com"
            async with session.post(base + "/api/auth/register", json={
                    "email": email, "password": PASSWORD, "firstName": "B", "lastName": "C"}) as r:
                token = (await r.json())["accessToken"]
            login = {"email": email, "password": PASSWORD}
            await drive(session, "POST", base + "/api/auth/login", 1, concurrency, json=login)
            n, lat = await drive(session, "POST", base + "/api/auth/login", seconds, concurrency,
                                 json=login)
            results = [summary(f"login (bcrypt cost {rounds})", n, lat, seconds)]
            headers = {"Authorization": f"Bearer {token}"}
            n, lat = await drive(session, "GET", base + "/api/auth/profile", seconds,
                                 concurrency, headers=headers)
            results.append(summary(f"GET profile (bcrypt cost {rounds})", n, lat, seconds))
            # The two failed-login cases must cost the same, or timing tells which emails exist:
            # one client at a time, so the latency is the cost of one request, not queueing.
            for label, body in (("wrong password", {"email": email, "password": "Wrong12345"}),
                                ("unknown email", {"email": "nobody@example.com",
                                                   "password": PASSWORD})):
                n, lat = await drive(session, "POST", base + "/api/auth/login", seconds / 2,
                                     1, expect=401, json=body)
                results.append(summary(f"1 client: {label} (cost {rounds})", n, lat,
                                       seconds / 2))
            return results
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=30)
        await infra.drop_database(database)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--costs", default="12,4", help="bcrypt costs to compare")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        keys = Path(folder)
        ensure_keys(keys / "private.pem", keys / "public.pem")
        rows = []
        for rounds in (int(c) for c in args.costs.split(",")):
            rows += await bench_cost(rounds, args.seconds, args.concurrency, keys)
    print(f"auth, {args.concurrency} concurrent clients, {args.seconds:g} s per measure, "
          f"{os.cpu_count()} CPUs")
    print(f"{'measure':<38}{'req/s':>10}{'p50 ms':>10}{'p99 ms':>10}")
    for row in rows:
        print(f"{row['measure']:<38}{row['rps']:>10}{row['p50_ms']:>10}{row['p99_ms']:>10}")


if __name__ == "__main__":
    asyncio.run(main())
