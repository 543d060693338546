"""The gateway's health: `/health` asks every service (and Redis) at once, each with a timeout;
`/health/live` and `/health/ready` concern the gateway alone, so a sick upstream never takes the
gateway out of its load balancer."""

from __future__ import annotations

import time

from gateway.config import SERVICES
from gateway.tests.conftest import free_port


async def test_health_reports_every_service(make_gateway):
    gateway = await make_gateway()

    response = await gateway.get("/health")

    assert response.status == 200
    body = await response.json()
    assert (body["status"], body["service"]) == ("ok", "gateway")
    assert body["timestamp"].endswith("Z")
    assert body["uptime"] >= 0
    assert set(body["services"]) == {*SERVICES, "redis", "revocations"}
    for name, report in body["services"].items():
        assert report["status"] == "ok", name
        assert report["latencyMs"] >= 0
        assert "error" not in report


async def test_health_is_degraded_and_503_with_one_service_down(make_gateway, stand_ins):
    stand_ins["notify"].status = 503  # answers its /health with 503
    gateway = await make_gateway(REALTIME_URL=f"http://127.0.0.1:{free_port()}")  # not running

    response = await gateway.get("/health")

    assert response.status == 503
    body = await response.json()
    assert body["status"] == "degraded"
    services = body["services"]
    assert (services["notify"]["status"], services["notify"]["error"]) == ("error", "HTTP 503")
    assert services["realtime"]["status"] == "error"
    assert services["realtime"]["error"]
    assert {n for n, r in services.items() if r["status"] == "ok"} \
        == {"auth", "catalog", "booking", "payments", "web", "redis", "revocations"}


async def test_services_are_asked_at_once_each_with_a_timeout(make_gateway, silent_server):
    hung = f"http://{silent_server}"
    gateway = await make_gateway(GATEWAY_HEALTH_TIMEOUT="1", CATALOG_URL=hung, BOOKING_URL=hung,
                                 PAYMENTS_URL=hung, NOTIFY_URL=hung)

    started = time.monotonic()
    response = await gateway.get("/health")
    elapsed = time.monotonic() - started

    assert elapsed < 3  # one after the other, four hung services would take four seconds
    assert response.status == 503
    services = (await response.json())["services"]
    for name in ("catalog", "booking", "payments", "notify"):
        assert services[name] == {"status": "error", "error": "no answer within 1s",
                                  "latencyMs": services[name]["latencyMs"],
                                  "critical": False}
    assert services["auth"]["status"] == "ok"


async def test_live_and_ready_do_not_depend_on_upstreams(make_gateway, stand_ins):
    for stand_in in stand_ins.values():
        stand_in.status = 503
    gateway = await make_gateway(REDIS_URL="redis://127.0.0.1:1/0")

    live = await gateway.get("/health/live")
    ready = await gateway.get("/health/ready")

    assert (await gateway.get("/health")).status == 503
    assert live.status == 200
    assert await live.json() == {"status": "alive", "service": "gateway"}
    assert ready.status == 200
    assert await ready.json() == {"status": "ready"}
