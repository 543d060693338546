"""Graceful shutdown of a real service process (`run_service`): on SIGTERM it stops accepting,
lets the requests in flight finish, closes and exits 0; with a drain delay, readiness says 503
first."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from common.testing import eventually
from common.tests.support import ServiceProcess, demo_env, find

MODULE = "common.tests.demo_service"


async def get_json(url: str) -> tuple[int, Any]:
    # A connection of its own each time: a pooled one may have been closed by the draining server.
    async with (aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http,
                http.get(url) as resp):
        return resp.status, await resp.json()


async def refuses_connections(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except ConnectionRefusedError:
        return True
    except ConnectionResetError:
        return False  # reached the listener as it was closing: not refused yet, ask again
    writer.close()
    return False


async def test_a_request_in_flight_at_sigterm_completes_and_the_process_exits(keys, tmp_path):
    release = tmp_path / "release"
    env = demo_env(keys, DEMO_RELEASE_FILE=str(release))
    async with ServiceProcess(MODULE, env) as service:
        in_flight = asyncio.create_task(get_json(f"{service.url}/api/slow"))
        await service.wait_for("slow_started")
        service.send_signal()
        await service.wait_for("shutdown_started")
        await eventually(lambda: refuses_connections(service.port),
                         message="the listener to close")
        assert not in_flight.done()
        release.touch()
        assert await in_flight == (200, {"released": True})
        assert await service.exit_code() == 0
    logged = [e["event"] for e in service.events()]
    assert logged.index("shutdown_started") < logged.index("service_stopped")
    [slow] = find(service.events(), "request", route="/api/slow")
    assert slow["status"] == 200


async def test_while_draining_readiness_is_503_and_requests_are_still_served(keys, tmp_path):
    release = tmp_path / "release"
    env = demo_env(keys, DEMO_RELEASE_FILE=str(release), SHUTDOWN_DRAIN_DELAY="600")
    async with ServiceProcess(MODULE, env) as service:
        assert await get_json(f"{service.url}/health/ready") == (200, {"status": "ready"})
        in_flight = asyncio.create_task(get_json(f"{service.url}/api/slow"))
        await service.wait_for("slow_started")
        service.send_signal()
        await service.wait_for("shutdown_started")
        assert await get_json(f"{service.url}/health/ready") == (
            503, {"status": "not ready", "reason": "shutting down"})
        assert (await get_json(f"{service.url}/health/live"))[0] == 200
        assert (await get_json(f"{service.url}/api/widgets/w1"))[0] == 200
        # A second signal ends the (600 s) drain delay: the listener closes, in-flight work ends.
        service.send_signal()
        await eventually(lambda: refuses_connections(service.port),
                         message="the listener to close")
        release.touch()
        assert await in_flight == (200, {"released": True})
        assert await service.exit_code() == 0


async def test_a_request_outliving_the_shutdown_timeout_is_cut_off(keys, tmp_path):
    env = demo_env(keys, DEMO_RELEASE_FILE=str(tmp_path / "never"), SHUTDOWN_TIMEOUT="0.5")
    async with ServiceProcess(MODULE, env) as service:
        in_flight = asyncio.create_task(get_json(f"{service.url}/api/slow"))
        await service.wait_for("slow_started")
        service.send_signal()
        # The handler would wait 60 s for its file; the process does not.
        assert await service.exit_code(within=30) == 0
        with pytest.raises(aiohttp.ClientError):
            await in_flight
    # Logged as cut off, not as a server error that would page someone.
    [slow] = find(service.events(), "request", route="/api/slow")
    assert (slow["status"], slow["level"]) == (499, "info")
