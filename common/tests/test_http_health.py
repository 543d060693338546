"""`/health` reports every dependency, `/health/live` the process alone, `/health/ready` the
critical dependencies; a failing or hanging check degrades them within the check timeout."""

from __future__ import annotations

import asyncio
import time

import pytest
from aiohttp import web

from common.http.health import HEALTH
from common.testing import eventually
from common.tests import demo_service
from common.tests.support import CapturedLogs, Keys, demo_config, find

TIMEOUT = 0.3


@pytest.fixture
def app(tmp_path) -> web.Application:
    app = demo_service.create_app(demo_config(Keys.create(tmp_path)))
    app[HEALTH].timeout = TIMEOUT
    return app


async def ok() -> None:
    pass


async def refused() -> None:
    raise ConnectionRefusedError("connect to 127.0.0.1:5672 refused")


async def hangs() -> None:
    await asyncio.Event().wait()


async def get(client, path):
    resp = await client.get(path)
    return resp.status, await resp.json()


async def test_all_checks_passing_is_200_ok_everywhere(aiohttp_client, app):
    app[HEALTH].add("database", ok)
    app[HEALTH].add("broker", ok)
    client = await aiohttp_client(app)
    status, body = await get(client, "/health")
    assert status == 200
    assert (body["status"], body["service"]) == ("ok", "demo")
    assert body["timestamp"].endswith("Z") and body["uptime"] >= 0
    assert body["checks"]["database"]["status"] == "ok"
    assert body["checks"]["database"]["critical"] is True
    assert isinstance(body["checks"]["broker"]["latencyMs"], float)
    assert await get(client, "/health/ready") == (200, {"status": "ready"})
    assert await get(client, "/health/live") == (200, {"status": "alive", "service": "demo"})


async def test_a_failing_critical_check_is_503_degraded_and_not_ready(aiohttp_client, app):
    app[HEALTH].add("database", ok)
    app[HEALTH].add("broker", refused)
    client = await aiohttp_client(app)
    status, body = await get(client, "/health")
    assert (status, body["status"]) == (503, "degraded")
    assert body["checks"]["database"]["status"] == "ok"
    assert body["checks"]["broker"] == {**body["checks"]["broker"], "status": "error",
                                        "error": "connect to 127.0.0.1:5672 refused"}
    status, body = await get(client, "/health/ready")
    assert (status, body["status"]) == (503, "not ready")
    assert body["checks"]["broker"]["status"] == "error"
    # Liveness is the process alone: restarting it would not bring the broker back.
    assert (await get(client, "/health/live"))[0] == 200


async def test_a_hanging_check_is_degraded_within_the_timeout(aiohttp_client, app):
    app[HEALTH].add("database", hangs)
    app[HEALTH].add("broker", hangs)
    client = await aiohttp_client(app)
    started = time.monotonic()
    status, body = await get(client, "/health")
    elapsed = time.monotonic() - started
    assert (status, body["status"]) == (503, "degraded")
    for check in (body["checks"]["database"], body["checks"]["broker"]):
        assert check["error"] == f"no answer within {TIMEOUT}s"
        assert check["latencyMs"] >= TIMEOUT * 1000
    # Checks run side by side: two hanging checks cost one timeout, not two (and never forever).
    assert elapsed < 2 * TIMEOUT + 5
    assert (await get(client, "/health/ready"))[0] == 503


async def test_a_failing_non_critical_check_degrades_health_but_not_readiness(aiohttp_client, app):
    app[HEALTH].add("database", ok)
    app[HEALTH].add("smtp", refused, critical=False)
    client = await aiohttp_client(app)
    status, body = await get(client, "/health")
    assert (status, body["status"]) == (503, "degraded")
    assert body["checks"]["smtp"]["critical"] is False
    assert await get(client, "/health/ready") == (200, {"status": "ready"})


async def test_probes_and_scrapes_are_not_in_the_request_log(aiohttp_client, app):
    client = await aiohttp_client(app)
    with CapturedLogs("demo") as logs:
        for path in ("/health", "/health/live", "/health/ready", "/metrics", "/api/widgets/w1"):
            assert (await client.get(path)).status == 200, path
    assert [line["path"] for line in find(logs.events(), "request")] == ["/api/widgets/w1"]


async def test_a_burst_of_health_calls_checks_each_dependency_once(app):
    calls, release = [], asyncio.Event()

    async def database() -> None:
        calls.append(1)
        await release.wait()

    health = app[HEALTH]
    health.timeout = 30
    health.add("database", database)
    burst = [asyncio.create_task(health.report()) for _ in range(20)]
    await eventually(lambda: calls, message="the check to start")
    # A caller that gives up does not cancel the report the others wait for.
    burst.pop().cancel()
    release.set()

    answers = await asyncio.gather(*burst)
    assert all(ok for ok, _ in answers) and len(calls) == 1
    assert (await health.report())[0] and len(calls) == 2  # the next one checks anew


async def test_live_figures_are_reported_beside_the_checks(aiohttp_client, app):
    connections = [3]
    app[HEALTH].add_figure("connections", lambda: connections[0])
    with pytest.raises(ValueError, match="a key of the health report"):
        app[HEALTH].add_figure("status", lambda: "ok")
    client = await aiohttp_client(app)
    assert (await get(client, "/health"))[1]["connections"] == 3
    connections[0] = 0
    assert (await get(client, "/health"))[1]["connections"] == 0
