"""Circuit breakers at the gateway, one per upstream: timeouts, connection errors and 5xx open it
(4xx do not); while open no call reaches the upstream; after a pause one probe decides; catalog
reads fall back to the last good answer. Admins see and reset breakers."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from common.testing import bearer, eventually
from gateway.config import SERVICES
from gateway.tests.conftest import free_port, metric

# Four calls in the window are enough to judge; half of them failing opens the breaker.
BREAKER = {"GATEWAY_BREAKER_VOLUME_THRESHOLD": "4"}


async def breaker(gateway, admin) -> dict[str, Any]:
    response = await gateway.get("/circuit-breaker/status", headers=bearer(admin))
    assert response.status == 200
    return await response.json()


async def state(gateway, admin, upstream: str) -> str:
    return (await breaker(gateway, admin))["circuitBreakers"][upstream]["state"]


async def assert_circuit_open(response) -> None:
    assert response.status == 503
    assert (await response.json())["error"] == "CIRCUIT_OPEN"
    assert int(response.headers["Retry-After"]) >= 1


async def open_booking_breaker(gateway, customer, stand_ins) -> None:
    stand_ins["booking"].status = 503
    for _ in range(4):
        assert (await gateway.get("/api/bookings", headers=bearer(customer))).status == 503
    stand_ins["booking"].status = 200


async def test_server_errors_open_the_breaker_and_then_no_call_reaches_the_upstream(
        make_gateway, customer, admin, stand_ins):
    gateway = await make_gateway(**BREAKER)
    booking = stand_ins["booking"]
    booking.status = 503

    failed = [await gateway.get("/api/bookings", headers=bearer(customer)) for _ in range(4)]
    refused = [await gateway.get("/api/bookings", headers=bearer(customer)) for _ in range(5)]

    # The upstream's own 503s pass through unchanged; then the gateway answers by itself.
    assert [(r.status, r.headers["X-Served-By"]) for r in failed] == [(503, "booking")] * 4
    for response in refused:
        await assert_circuit_open(response)
        assert int(response.headers["Retry-After"]) <= 30
    assert len(booking.hits) == 4
    assert await state(gateway, admin, "booking") == "OPEN"
    assert await metric(gateway, "gateway_circuit_breaker_state", upstream="booking") == 2
    assert (await gateway.get("/api/tours")).status == 200  # other upstreams are not affected


async def test_client_errors_do_not_count(make_gateway, customer, admin, stand_ins):
    gateway = await make_gateway(**BREAKER)
    stand_ins["booking"].status = 404

    statuses = [(await gateway.get("/api/bookings", headers=bearer(customer))).status
                for _ in range(10)]

    assert statuses == [404] * 10
    assert len(stand_ins["booking"].hits) == 10
    counters = (await breaker(gateway, admin))["circuitBreakers"]["booking"]
    assert (counters["state"], counters["successes"], counters["failures"]) == ("CLOSED", 10, 0)


async def test_timeouts_count(make_gateway, customer, admin, stand_ins):
    gateway = await make_gateway(**BREAKER, GATEWAY_ROUTES="/api/bookings=booking:0.3")

    timed_out = await asyncio.gather(
        *(gateway.get("/api/bookings?stall", headers=bearer(customer)) for _ in range(4)))
    refused = await gateway.get("/api/bookings", headers=bearer(customer))

    assert [r.status for r in timed_out] == [504] * 4
    assert {(await r.json())["error"] for r in timed_out} == {"GATEWAY_TIMEOUT"}
    await assert_circuit_open(refused)
    assert len(stand_ins["booking"].hits) == 4
    counters = (await breaker(gateway, admin))["circuitBreakers"]["booking"]
    assert (counters["timeouts"], counters["failures"], counters["rejects"]) == (4, 4, 1)


async def test_connection_errors_count(make_gateway, customer, admin):
    gateway = await make_gateway(**BREAKER, BOOKING_URL=f"http://127.0.0.1:{free_port()}")

    unreachable = [await gateway.get("/api/bookings", headers=bearer(customer)) for _ in range(4)]
    refused = await gateway.get("/api/bookings", headers=bearer(customer))

    assert [(r.status, (await r.json())["error"]) for r in unreachable] \
        == [(503, "SERVICE_UNAVAILABLE")] * 4
    await assert_circuit_open(refused)


async def test_after_the_pause_one_probe_goes_through_and_its_success_closes_the_breaker(
        make_gateway, customer, admin, stand_ins):
    gateway = await make_gateway(**BREAKER, GATEWAY_BREAKER_RESET_TIMEOUT="0.5")
    booking = stand_ins["booking"]
    await open_booking_breaker(gateway, customer, stand_ins)
    assert await metric(gateway, "gateway_circuit_breaker_state", upstream="booking") == 2

    async def half_open() -> bool:
        return await state(gateway, admin, "booking") == "HALF_OPEN"

    await eventually(half_open, message="the breaker half-opens")
    assert await metric(gateway, "gateway_circuit_breaker_state", upstream="booking") == 1
    probe = asyncio.create_task(gateway.get("/api/bookings?stall", headers=bearer(customer)))
    await eventually(lambda: len(booking.hits) == 5, message="the probe reaches booking")
    during_probe = await gateway.get("/api/bookings", headers=bearer(customer))
    booking.stall.set()
    probed = await probe

    await assert_circuit_open(during_probe)
    assert probed.status == 200
    assert await state(gateway, admin, "booking") == "CLOSED"
    assert await metric(gateway, "gateway_circuit_breaker_state", upstream="booking") == 0
    assert (await gateway.get("/api/bookings", headers=bearer(customer))).status == 200
    assert len(booking.hits) == 6


async def test_a_failed_probe_opens_the_breaker_again(make_gateway, customer, admin, stand_ins):
    gateway = await make_gateway(**BREAKER, GATEWAY_BREAKER_RESET_TIMEOUT="0.5")
    booking = stand_ins["booking"]
    await open_booking_breaker(gateway, customer, stand_ins)
    booking.status = 500

    async def half_open() -> bool:
        return await state(gateway, admin, "booking") == "HALF_OPEN"

    await eventually(half_open, message="the breaker half-opens")
    probed = await gateway.get("/api/bookings", headers=bearer(customer))
    after = await gateway.get("/api/bookings", headers=bearer(customer))

    assert probed.status == 500
    await assert_circuit_open(after)
    assert await state(gateway, admin, "booking") == "OPEN"
    assert len(booking.hits) == 5


async def test_catalog_reads_fall_back_to_the_last_good_answer(make_gateway, admin, stand_ins):
    gateway = await make_gateway(**BREAKER)
    catalog = stand_ins["catalog"]
    fresh = await gateway.get("/api/tours?q=alps")
    assert fresh.status == 200
    catalog.status = 503

    failing = [await gateway.get("/api/tours?q=alps") for _ in range(6)]
    assert await state(gateway, admin, "catalog") == "OPEN"
    calls_when_opened = len(catalog.hits)
    while_open = [await gateway.get("/api/tours?q=alps") for _ in range(3)]
    never_cached = await gateway.get("/api/tours?q=lakes")

    for response in failing + while_open:
        assert response.status == 200
        assert await response.read() == await fresh.read()
        assert response.headers["X-Cache"] == "stale"
        assert response.headers["Content-Type"].startswith("application/json")
        assert response.headers["X-Served-By"] == "gateway-cache"
    assert len(catalog.hits) == calls_when_opened
    await assert_circuit_open(never_cached)


async def test_admins_see_every_breaker(make_gateway, customer, admin):
    gateway = await make_gateway()

    anonymous = await gateway.get("/circuit-breaker/status")
    as_customer = await gateway.get("/circuit-breaker/status", headers=bearer(customer))
    status = await breaker(gateway, admin)

    assert anonymous.status == 401
    assert as_customer.status == 403
    assert set(status["circuitBreakers"]) == set(SERVICES)
    assert {b["state"] for b in status["circuitBreakers"].values()} == {"CLOSED"}
    assert {"fires", "successes", "failures", "rejects", "timeouts", "latencyMean"} \
        <= set(status["circuitBreakers"]["catalog"])
    assert status["summary"] == {"total": 7, "open": 0, "halfOpen": 0, "closed": 7}


async def test_an_admin_resets_an_open_breaker(make_gateway, customer, admin, stand_ins):
    gateway = await make_gateway(**BREAKER)
    await open_booking_breaker(gateway, customer, stand_ins)

    as_customer = await gateway.post("/circuit-breaker/reset/booking", headers=bearer(customer))
    unknown = await gateway.post("/circuit-breaker/reset/nowhere", headers=bearer(admin))
    reset = await gateway.post("/circuit-breaker/reset/booking", headers=bearer(admin))
    after = await gateway.get("/api/bookings", headers=bearer(customer))

    assert as_customer.status == 403
    assert unknown.status == 404
    assert (await unknown.json())["error"] == "UNKNOWN_SERVICE"
    assert reset.status == 200
    assert (await reset.json())["service"] == "booking"
    assert (await reset.json())["state"] == "CLOSED"
    assert after.status == 200
    assert len(stand_ins["booking"].hits) == 5


async def test_breaker_health_is_public_and_503_while_one_is_open(make_gateway, customer,
                                                                 stand_ins):
    gateway = await make_gateway(**BREAKER)
    healthy = await gateway.get("/circuit-breaker/health")
    await open_booking_breaker(gateway, customer, stand_ins)
    degraded = await gateway.get("/circuit-breaker/health")

    assert healthy.status == 200
    assert (await healthy.json())["openCircuits"] == []
    assert degraded.status == 503
    body = await degraded.json()
    assert (body["status"], body["openCircuits"]) == ("degraded", ["booking"])


async def test_a_clients_oversized_upload_does_not_count(make_gateway, customer, admin,
                                                        stand_ins):
    gateway = await make_gateway(**BREAKER, GATEWAY_MAX_UPLOAD_BYTES="2048")

    async def too_large():  # chunked: no Content-Length announces the size
        for _ in range(10):
            yield b"x" * 1000

    statuses = [(await gateway.post("/api/bookings", data=too_large(),
                                    headers=bearer(customer))).status for _ in range(6)]

    assert statuses == [413] * 6
    assert await state(gateway, admin, "booking") == "CLOSED"
    assert (await gateway.get("/api/bookings", headers=bearer(customer))).status == 200


@pytest.mark.parametrize(("name", "breaker_name"), [
    ("auth-service", "auth"), ("tour-catalog-service", "catalog"), ("tours", "catalog"),
    ("booking-service", "booking"), ("booking-management-service", "booking"),
    ("bookings", "booking"), ("payment-service", "payments"),
    ("notification-service", "notify"), ("websocket-server", "realtime"),
])
async def test_the_originals_service_names_reset_our_breakers(make_gateway, admin, name,
                                                             breaker_name):
    gateway = await make_gateway()
    reset = await gateway.post(f"/circuit-breaker/reset/{name}", headers=bearer(admin))
    assert reset.status == 200
    assert (await reset.json())["service"] == breaker_name


async def test_resetting_without_a_name_closes_every_breaker(make_gateway, customer, admin,
                                                            stand_ins):
    gateway = await make_gateway(**BREAKER)
    await open_booking_breaker(gateway, customer, stand_ins)

    anonymous = await gateway.post("/circuit-breaker/reset")
    as_customer = await gateway.post("/circuit-breaker/reset", headers=bearer(customer))
    reset = await gateway.post("/circuit-breaker/reset", headers=bearer(admin))

    assert (anonymous.status, as_customer.status, reset.status) == (401, 403, 200)
    body = await reset.json()
    assert body["services"] == dict.fromkeys(sorted(SERVICES), "CLOSED")
    assert {b["state"] for b in (await breaker(gateway, admin))["circuitBreakers"].values()} \
        == {"CLOSED"}
    assert (await gateway.get("/api/bookings", headers=bearer(customer))).status == 200
