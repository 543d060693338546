"""Provisioning of the infrastructure tourbook runs on: databases, AMQP vhosts, Redis keyspaces."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import redis.asyncio as aioredis

ROOT = Path(__file__).resolve().parent.parent


def with_database(url: str, database: str) -> str:
    """The same server URL pointing at another database."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + database))


def database_name(url: str) -> str:
    return urlsplit(url).path.lstrip("/")


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def ensure_database(url: str) -> bool:
    """Create the database `url` names if it does not exist; True when it was created."""
    name = database_name(url)
    conn = await asyncpg.connect(with_database(url, "postgres"))
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if exists:
            return False
        try:
            await conn.execute(f"CREATE DATABASE {_quote_ident(name)}")
        except asyncpg.DuplicateDatabaseError:
            return False
        return True
    finally:
        await conn.close()


async def drop_database(url: str) -> None:
    name = database_name(url)
    conn = await asyncpg.connect(with_database(url, "postgres"))
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {_quote_ident(name)} WITH (FORCE)")
    finally:
        await conn.close()


def rabbitmqctl(*args: str, timeout: float = 60) -> str:
    """Run rabbitmqctl on the local node, or inside the compose container when there is none."""
    if shutil.which("rabbitmqctl"):
        cmd = ["rabbitmqctl", "--quiet", *args]
    elif shutil.which("docker"):
        cmd = ["docker", "compose", "-f", str(ROOT / "compose.yml"), "exec", "-T", "rabbitmq",
               "rabbitmqctl", "--quiet", *args]
    else:
        raise RuntimeError(
            "rabbitmqctl is not installed and there is no docker to reach the broker")
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if result.returncode != 0:
        output = result.stderr.strip() or result.stdout.strip()
        raise RuntimeError(f"{' '.join(cmd)} failed: {output}")
    return result.stdout


def create_vhost(vhost: str, user: str = "guest") -> None:
    rabbitmqctl("add_vhost", vhost)
    rabbitmqctl("set_permissions", "-p", vhost, user, ".*", ".*", ".*")


def delete_vhost(vhost: str) -> None:
    rabbitmqctl("delete_vhost", vhost)


def with_vhost(amqp_url: str, vhost: str) -> str:
    parts = urlsplit(amqp_url)
    return urlunsplit(parts._replace(path="/" + vhost.replace("/", "%2F")))


async def drop_redis_prefix(redis_url: str, prefix: str) -> int:
    """Delete every key under `prefix`; the number deleted."""
    client = aioredis.from_url(redis_url)
    deleted = 0
    try:
        async for key in client.scan_iter(match=prefix + "*", count=500):
            deleted += await client.delete(key)
    finally:
        await client.aclose()
    return deleted


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)
