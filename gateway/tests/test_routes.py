"""The original's paths and the route table's properties: `POST /api/webhooks/stripe` reaches
payments' webhook as `/webhooks/stripe` does (no token, the same rate-limit policy, per address
only); a WebSocket handshake on `/` reaches realtime's `/ws`, by an upgrade route, while a plain
`GET /` goes to the pages; which routes keep stale answers is the table's to say, not code's."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import pytest
from aiohttp import WSMsgType

from common.testing import bearer
from gateway.config import DEFAULT_RATE_LIMITS
from gateway.table import RouteTable
from gateway.tests.conftest import MakeGateway, StandIn
from gateway.tests.test_limits import PATIENT
from gateway.tests.test_proxy import STRIPE_SIGNATURE, WEBHOOK_BODY

SERVICES = ("auth", "catalog", "booking", "payments", "notify", "realtime", "web")


async def test_the_originals_webhook_path_reaches_payments_without_a_token(
        gateway: Any, stand_ins: dict[str, StandIn]) -> None:
    response = await gateway.post("/api/webhooks/stripe", data=WEBHOOK_BODY, headers={
        "Stripe-Signature": STRIPE_SIGNATURE, "Content-Type": "application/json"})
    assert (response.status, response.headers["X-Served-By"]) == (200, "payments")
    received = await response.json()
    assert received["path"] == "/api/webhooks/stripe"
    assert received["bodySha256"] == hashlib.sha256(WEBHOOK_BODY).hexdigest()
    assert received["headers"]["Stripe-Signature"] == STRIPE_SIGNATURE


async def test_it_has_the_webhook_policy_and_is_limited_per_address_only(
        make_gateway: MakeGateway, customer: dict[str, Any], admin: dict[str, Any]) -> None:
    gateway = await make_gateway(**PATIENT, GATEWAY_RATE_LIMITS=",".join(DEFAULT_RATE_LIMITS))
    answers = [await gateway.post(path, data=b"{}", headers=headers)
               for path in ("/webhooks/stripe", "/api/webhooks/stripe")
               for headers in (bearer(customer), bearer(admin), {})]
    # The same numbers as /webhooks; a token never buys another bucket.
    assert {r.headers["RateLimit-Limit"] for r in answers} == {"600"}
    assert [int(r.headers["RateLimit-Remaining"]) for r in answers] == [599, 598, 597] * 2


async def handshake_path(gateway: Any, target: str) -> str:
    async with gateway.ws_connect(target) as ws:
        message = await ws.receive(timeout=10)
        assert message.type is WSMsgType.TEXT
        await ws.send_str("hello")
        assert await ws.receive_str(timeout=10) == "echo:hello"
    return target


async def test_a_websocket_on_the_root_reaches_realtimes_ws(
        gateway: Any, stand_ins: dict[str, StandIn]) -> None:
    for target in ("/", "/?token=abc", "/ws"):
        await handshake_path(gateway, target)
    assert [h["path"] for h in stand_ins["realtime"].hits] == ["/ws", "/ws?token=abc", "/ws"]


async def test_a_plain_get_of_the_root_is_the_pages_not_realtimes(
        gateway: Any, stand_ins: dict[str, StandIn]) -> None:
    response = await gateway.get("/")
    assert (response.status, response.headers["X-Served-By"]) == (200, "web")
    assert [h["path"] for h in stand_ins["web"].hits] == ["/"]
    assert all(s.hits == [] for name, s in stand_ins.items() if name != "web")


async def test_stale_answers_are_kept_for_the_routes_the_table_marks(
        make_gateway: MakeGateway, stand_ins: dict[str, StandIn]) -> None:
    """Catalog's routes keep their last good answers because the default table says `+stale`;
    routed without it, catalog is a service like any other."""
    gateway = await make_gateway(GATEWAY_ROUTES="/api/tours=catalog,/api/bookings=booking")
    assert (await gateway.get("/api/tours?q=alps")).status == 200
    stand_ins["catalog"].status = 503

    response = await gateway.get("/api/tours?q=alps")

    assert response.status == 503
    assert "X-Cache" not in response.headers


@pytest.mark.parametrize(("line", "expected"), [
    ("upgrade:/=realtime/ws", ("/", "realtime", True, "/ws", False, False)),
    ("upgrade:/live=realtime:30", ("/live", "realtime", True, None, False, False)),
    ("/api/tours=catalog+stale", ("/api/tours", "catalog", False, None, True, False)),
    ("/api/tours=catalog:2+stale", ("/api/tours", "catalog", False, None, True, False)),
    ("/=web:10+page", ("/", "web", False, None, False, True)),
    ("/api=-", ("/api", "-", False, None, False, False)),
])
def test_a_route_line_says_its_kind_target_and_flags(line: str, expected: tuple[Any, ...]) -> None:
    [route] = RouteTable.parse([line], SERVICES, default_timeout=5.0).routes
    assert (route.prefix, route.service, route.upgrade, route.target, route.stale,
            route.page) == expected


@pytest.mark.parametrize(("lines", "error"), [
    ("upgrade:/=realtime/ws,upgrade:/=realtime", "upgrade:/ is routed twice"),
    ("/api=catalog+fresh", "unknown flag"),
    ("upgrade:/ws=realtime+stale", "flags are for plain routes"),
    ("upgrade:/=realtime/ws+page", "flags are for plain routes"),
    ("/=web+page+stale", "pages are never served stale"),
    ("/api=-:5", "serves nothing"),
    ("/api=-+page", "serves nothing"),
    ("upgrade:/api=-", "serves nothing"),
    ("/api=catalog/elsewhere", "only an upgrade route names a path"),
    ("upgrade:/=realtime/w s", "expected"),
])
def test_a_route_line_that_cannot_mean_one_thing_is_refused(lines: str, error: str) -> None:
    with pytest.raises(ValueError, match=re.escape(error)):
        RouteTable.parse(lines.split(","), SERVICES, default_timeout=5.0)


def test_a_plain_route_and_an_upgrade_route_may_share_a_prefix() -> None:
    table = RouteTable.parse(["/ws=realtime", "upgrade:/ws=realtime", "upgrade:/=realtime/ws"],
                             SERVICES, default_timeout=5.0)
    plain, upgrade = table.match("/ws"), table.match("/ws", upgrade=True)
    assert plain is not None and upgrade is not None
    assert (plain.upgrade, upgrade.upgrade) == (False, True)
    root = table.match("/", upgrade=True)
    assert root is not None and root.upstream_path("/?token=x") == "/ws?token=x"
    assert table.match("/") is None
