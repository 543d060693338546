"""`up` runs the services until told to stop, and stopping it leaves no process behind.

Driven as an operator would: `python -m ops up` in the background against the stand-in service,
then SIGTERM or `python -m ops down`.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable
from pathlib import Path

import asyncpg
import pytest

from ops.supervisor import alive, descendants
from ops.tests.conftest import Up, ops


def pids_of(up: Up, env: dict[str, str]) -> set[int]:
    """Every process below `up`, and the stand-in service and its helper child by their own word."""
    piddir = Path(env["TBDUMMY_PID_DIR"])
    own = {int((piddir / name).read_text()) for name in ("service.pid", "helper.pid")}
    return own | set(descendants(up.process.pid))


@pytest.mark.parametrize("stop", ["SIGTERM to up", "Ctrl-C in its terminal"])
def test_up_serves_the_service_and_stopping_it_leaves_no_process(
        stop: str, ops_env: dict[str, str], start_up: Callable[..., Up]) -> None:
    up = start_up(ops_env)
    up.wait_for("all services ready")
    port = ops_env["TBDUMMY_PORT"]
    assert "tbdummy: database" in up.output
    assert "applied 001_notes" in up.output
    assert "tbdummy: demo data in place" in up.output
    assert "tbdummy listening" in up.output  # the service's own output, prefixed by its name
    assert f"http://127.0.0.1:{port}/openapi.json" in up.output
    assert Path(ops_env["OPS_RUN_DIR"], "up.pid").read_text().strip() == str(up.process.pid)
    processes = pids_of(up, ops_env)
    assert len(processes) >= 4  # honcho's relay, the service, its helper, the readiness watcher

    if stop == "SIGTERM to up":
        up.process.terminate()
    else:  # the terminal sends SIGINT to its whole foreground process group
        os.killpg(up.process.pid, signal.SIGINT)
    assert up.process.wait(timeout=30) == 0

    assert [pid for pid in processes if alive(pid)] == []
    assert not Path(ops_env["OPS_RUN_DIR"], "up.pid").exists()
    assert "ops: stopped every service" in up.output


def test_down_stops_a_running_up_and_a_second_up_is_refused(
        ops_env: dict[str, str], start_up: Callable[..., Up]) -> None:
    up = start_up(ops_env)
    up.wait_for("all services ready")
    processes = pids_of(up, ops_env)

    second = ops(ops_env, "up")
    assert second.returncode == 1
    assert f"./ops/dev up is already running (pid {up.process.pid})" in second.stdout

    down = ops(ops_env, "down")
    assert down.returncode == 0, down.stdout
    assert f"stopped ./ops/dev up (pid {up.process.pid}) and its services" in down.stdout
    assert "ops started no PostgreSQL, Redis or RabbitMQ: left them as they are" in down.stdout
    assert up.process.wait(timeout=5) == 0
    assert [pid for pid in processes if alive(pid)] == []

    again = ops(ops_env, "down")
    assert "no ./ops/dev up is running" in again.stdout


def test_up_names_the_service_that_is_not_ready_and_why(
        ops_env: dict[str, str], start_up: Callable[..., Up]) -> None:
    # Long enough for the stand-in service to be listening on a loaded machine: the reason must
    # be its own 503, not a refused connection.
    up = start_up({**ops_env, "TBDUMMY_NOT_READY": "1"}, "--ready-timeout", "10")
    url = f"http://127.0.0.1:{ops_env['TBDUMMY_PORT']}/health/ready"
    up.wait_for("tbdummy is NOT ready after", timeout=60)
    assert f"GET {url} answered 503: " in up.output
    assert "pretending to be down" in up.output


def test_migrate_and_seed_are_idempotent(ops_env: dict[str, str]) -> None:
    first = ops(ops_env, "seed", "tbdummy")
    assert first.returncode == 0, first.stdout
    assert "tbdummy: database" in first.stdout
    assert "applied 001_notes" in first.stdout

    second = ops(ops_env, "migrate")
    assert second.returncode == 0, second.stdout
    assert "tbdummy: database" in second.stdout
    assert "exists; schema up to date" in second.stdout
    assert ops(ops_env, "seed").returncode == 0

    async def notes() -> int:
        conn = await asyncpg.connect(ops_env["TBDUMMY_DATABASE_URL"])
        try:
            count: int = await conn.fetchval("SELECT count(*) FROM notes")
            return count
        finally:
            await conn.close()

    assert asyncio.run(notes()) == 1


def test_unknown_service_names_are_refused_clearly(ops_env: dict[str, str]) -> None:
    result = ops(ops_env, "migrate", "nosuch")
    assert result.returncode == 1
    assert "no service nosuch in this checkout (available: tbdummy)" in result.stdout

    admin = ops(ops_env, "create-admin")
    assert admin.returncode == 1
    assert "no service auth in this checkout" in admin.stdout
    assert "Traceback" not in result.stdout + admin.stdout


def test_production_has_no_default_admin(ops_env: dict[str, str]) -> None:
    env = {key: value for key, value in ops_env.items()
           if key not in ("ADMIN_EMAIL", "ADMIN_PASSWORD")}
    result = ops({**env, "APP_ENV": "production"}, "create-admin")
    assert result.returncode == 1
    assert "APP_ENV=production: set ADMIN_EMAIL and ADMIN_PASSWORD" in result.stdout
