"""Reachability of PostgreSQL, Redis and RabbitMQ, checked against the real servers and ports."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from ops import infra
from ops.servers import Server, check
from ops.tests.conftest import free_port, ops


@pytest.mark.parametrize("kind", ["postgres", "redis", "rabbitmq"])
async def test_the_running_servers_answer_their_protocol(
        kind: str, postgres_url: str, redis_url: str, amqp_url: str) -> None:
    url = {"postgres": postgres_url, "redis": redis_url, "rabbitmq": amqp_url}[kind]
    result = await check(Server(kind, url, "TEST"))
    assert result.problem is None
    assert result.listening


async def test_a_closed_port_is_reported_by_address_and_variable() -> None:
    port = free_port()
    result = await check(Server("redis", f"redis://127.0.0.1:{port}/0", "REDIS_URL"))
    assert not result.listening
    assert result.problem == (f"Redis at 127.0.0.1:{port} (REDIS_URL) is not reachable: "
                              "connection refused")


@pytest.fixture
async def mute_port() -> AsyncIterator[int]:
    """A port that accepts TCP and then says nothing sensible."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"hello, I am not a database\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


async def test_a_port_that_does_not_speak_postgres_is_told_apart(mute_port: int) -> None:
    url = f"postgresql://postgres@127.0.0.1:{mute_port}/postgres"
    result = await check(Server("postgres", url, "AUTH_DATABASE_URL"), wait=2)
    assert result.listening
    assert result.problem is not None
    assert result.problem.startswith(f"PostgreSQL at 127.0.0.1:{mute_port} (AUTH_DATABASE_URL) "
                                     "accepts connections but does not answer as PostgreSQL: ")


async def test_a_missing_vhost_is_a_rabbitmq_problem_not_an_outage(amqp_url: str) -> None:
    url = infra.with_vhost(amqp_url, "tourbook-no-such-vhost")
    result = await check(Server("rabbitmq", url, "AMQP_URL"))
    assert result.listening
    assert result.problem is not None
    assert "does not answer as RabbitMQ" in result.problem


async def test_ensure_database_creates_once(postgres_url: str, run_id: str) -> None:
    url = infra.with_database(postgres_url, f"tb_{run_id}_ensure_twice")
    try:
        assert await infra.ensure_database(url) is True
        assert await infra.ensure_database(url) is False
    finally:
        await infra.drop_database(url)


def test_status_names_what_is_down_without_a_traceback(ops_env: dict[str, str]) -> None:
    port = free_port()
    result = ops({**ops_env, "REDIS_URL": f"redis://127.0.0.1:{port}/0"}, "status")
    assert result.returncode == 1
    assert f"Redis at 127.0.0.1:{port} (REDIS_URL) is not reachable: connection refused" \
        in result.stdout
    assert "Traceback" not in result.stdout


def test_a_server_ops_cannot_start_is_explained(ops_env: dict[str, str]) -> None:
    port = free_port()  # no PostgreSQL cluster is configured on this port
    env = {**ops_env, "TBDUMMY_DATABASE_URL": f"postgresql://postgres@127.0.0.1:{port}/tb"}
    result = ops(env, "migrate")
    assert result.returncode == 1
    assert (f"PostgreSQL at 127.0.0.1:{port} (TBDUMMY_DATABASE_URL) is down and ops found no "
            "local PostgreSQL to start") in result.stdout
    assert "apt-get install postgresql" in result.stdout
    assert "Traceback" not in result.stdout


@pytest.mark.skipif(not shutil.which("redis-server"), reason="needs a local redis-server")
async def test_infra_starts_a_stopped_local_server_and_down_stops_only_that(
        ops_env: dict[str, str]) -> None:
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    env = {**ops_env, "REDIS_URL": url}
    try:
        started = await asyncio.to_thread(ops, env, "infra")
        assert started.returncode == 0, started.stdout
        assert "starting Redis: redis-server" in started.stdout
        assert "PostgreSQL ok" in started.stdout  # already running: left alone
        client = aioredis.from_url(url)
        assert await client.ping()
        await client.aclose()

        stopped = await asyncio.to_thread(ops, env, "down")
        assert stopped.returncode == 0, stopped.stdout
        assert f"stopped Redis at 127.0.0.1:{port} (ops had started it, local)" in stopped.stdout
        assert "left PostgreSQL and RabbitMQ alone: ops did not start them" in stopped.stdout
        assert (await check(Server("redis", url, "REDIS_URL"))).problem is not None
        assert not (Path(env["OPS_RUN_DIR"]) / "infra.json").exists()
    finally:
        if not (await check(Server("redis", url, "REDIS_URL"))).problem:
            client = aioredis.from_url(url)
            await client.shutdown(nosave=True)
            await client.aclose()


def test_the_broker_the_original_s_rabbitmq_url_names_is_the_one_checked(
        ops_env: dict[str, str]) -> None:
    port = free_port()
    env = {name: value for name, value in ops_env.items() if name != "AMQP_URL"}
    result = ops({**env, "RABBITMQ_URL": f"amqp://guest:guest@127.0.0.1:{port}/"}, "status")
    assert result.returncode == 1
    assert f"RabbitMQ at 127.0.0.1:{port} (AMQP_URL) is not reachable" in result.stdout
