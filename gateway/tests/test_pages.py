"""The web site behind the gateway: every path no API route takes goes to the pages (a `+page`
route), which are public here (they check their own session) and judge their own methods, under
a rate-limit policy of their own; the pages' static files are never limited; a WebSocket
handshake on `/` stays realtime's; an unknown API path stays the gateway's 404 (`/api=-`)."""

from __future__ import annotations

from typing import Any

from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient

from common.testing import bearer, eventually
from gateway.config import DEFAULT_ROUTES
from gateway.table import RouteTable
from gateway.tests.conftest import MakeGateway, StandIn
from gateway.tests.test_methods import CATALOG, document

# Decisions of the shared buckets, counted: Redis gets time on a loaded machine.
PATIENT_LIMITS = {"GATEWAY_RATE_LIMIT_TIMEOUT": "5"}


async def test_a_page_reaches_web_without_a_token_and_learns_no_identity(
        gateway: TestClient, stand_ins: dict[str, StandIn], customer: dict[str, Any]) -> None:
    for target, headers in [("/", {}), ("/tours/paris?page=2", {}),
                            ("/bookings/123", bearer(customer))]:
        response = await gateway.get(target, headers={**headers, "X-User-Id": "forged"})
        assert response.status == 200, target
        assert response.headers["X-Served-By"] == "web"
    seen = stand_ins["web"].hits
    assert [h["path"] for h in seen] == ["/", "/tours/paris?page=2", "/bookings/123"]
    assert all("X-User-Id" not in h["headers"] for h in seen)


async def test_a_form_posted_to_a_page_reaches_web(gateway: TestClient,
                                                   stand_ins: dict[str, StandIn]) -> None:
    response = await gateway.post("/login", data={"email": "a@example.com"})
    assert response.status == 200
    assert stand_ins["web"].hits[-1]["method"] == "POST"


async def test_an_unknown_api_path_is_the_gateways_404_and_reaches_no_one(
        gateway: TestClient, stand_ins: dict[str, StandIn], customer: dict[str, Any]) -> None:
    for target in ["/api", "/api/nothing", "/api/toursx/1"]:
        response = await gateway.get(target, headers=bearer(customer))
        assert (response.status, (await response.json())["error"]) == (404, "NOT_FOUND"), target
    assert all(s.hits == [] for s in stand_ins.values())


async def test_reading_pages_does_not_spend_the_apis_budget(make_gateway: MakeGateway) -> None:
    gateway = await make_gateway(**PATIENT_LIMITS, GATEWAY_RATE_LIMITS="/=5/3600,/api=3/3600")

    pages = [(await gateway.get("/tours")).status for _ in range(5)]
    api = [(await gateway.get("/api/tours")).status for _ in range(4)]

    assert pages == [200] * 5
    assert api == [200, 200, 200, 429]
    assert (await gateway.get("/tours")).status == 429  # the pages have a budget too


async def test_the_pages_static_files_are_never_limited(make_gateway: MakeGateway,
                                                        stand_ins: dict[str, StandIn]) -> None:
    gateway = await make_gateway(**PATIENT_LIMITS, GATEWAY_RATE_LIMITS="/=1/3600")
    statuses = [(await gateway.get("/static/css/site.0123abcd.css")).status for _ in range(5)]
    assert statuses == [200] * 5
    assert "RateLimit-Limit" not in (await gateway.get("/static/x.js")).headers


def test_the_default_table_sends_pages_to_web_and_keeps_api_paths_off_it() -> None:
    table = RouteTable.parse(DEFAULT_ROUTES, ["auth", "catalog", "booking", "payments", "notify",
                                              "realtime", "web"], default_timeout=5)
    paths = ["/", "/tours/x", "/login", "/api/tours", "/api/nope", "/ws", "/webhooks/stripe"]
    served = {path: getattr(table.match(path), "service", None) for path in paths}
    assert served == {"/": "web", "/tours/x": "web", "/login": "web", "/api/tours": "catalog",
                      "/api/nope": None, "/ws": "realtime", "/webhooks/stripe": "payments"}
    handshake = table.match("/", upgrade=True)
    assert handshake is not None and (handshake.service, handshake.upgrade) == ("realtime", True)
    assert "web" not in table.api_services()


async def test_a_handshake_on_the_root_reaches_realtime_and_a_page_load_reaches_web(
        gateway: TestClient, stand_ins: dict[str, StandIn]) -> None:
    async with gateway.ws_connect("/") as ws:
        assert (await ws.receive(timeout=10)).type is WSMsgType.TEXT
    page = await gateway.get("/", headers={"Accept": "text/html"})

    assert (page.status, page.headers["X-Served-By"]) == (200, "web")
    assert [h["path"] for h in stand_ins["realtime"].hits] == ["/ws"]
    assert [h["path"] for h in stand_ins["web"].hits] == ["/"]


async def test_pages_answer_their_own_methods_and_stay_out_of_the_api_document(
        make_gateway: MakeGateway, stand_ins: dict[str, StandIn]) -> None:
    """web's document (were it to publish one) is never read: a form posted to a page that the
    document says has only GET still reaches web, which judges it."""
    stand_ins["catalog"].document = CATALOG
    stand_ins["web"].document = document({"/tours": ["get"], "/bookings/{id}": ["get"]})
    gateway = await make_gateway()

    async def learnt() -> bool:
        return (await gateway.request("PUT", "/api/tours/t1")).status == 405

    await eventually(learnt, message="the gateway reads catalog's document")
    answers = [(await gateway.request(method, path)).status
               for method, path in [("POST", "/tours"), ("DELETE", "/bookings/b1")]]

    assert answers == [200, 200]
    assert [(h["method"], h["path"]) for h in stand_ins["web"].hits] == [
        ("POST", "/tours"), ("DELETE", "/bookings/b1")]
    merged = await (await gateway.get("/openapi.json")).json()
    assert "/api/tours" in merged["paths"]
    assert not {"/tours", "/bookings/{id}"} & set(merged["paths"])


async def test_the_access_rules_do_not_reach_pages(make_gateway: MakeGateway,
                                                   stand_ins: dict[str, StandIn]) -> None:
    """A visitor's browser holds no token to show: pages check their own session."""
    gateway = await make_gateway(GATEWAY_MANAGER_ROUTES="GET /operator/**",
                                 GATEWAY_ADMIN_ROUTES="POST /operator/breakers/**")
    statuses = [(await gateway.get("/operator/status")).status,
                (await gateway.post("/operator/breakers/auth/reset")).status]
    assert statuses == [200, 200]
    assert len(stand_ins["web"].hits) == 2


async def test_the_reads_web_makes_for_a_page_are_not_charged_but_its_writes_are(
        make_gateway: MakeGateway, customer: dict[str, Any]) -> None:
    # The test client stands for web here: its address is a page client's.
    gateway = await make_gateway(**PATIENT_LIMITS, GATEWAY_PAGE_CLIENTS="127.0.0.1/32",
                                 GATEWAY_TRUSTED_PROXIES="127.0.0.1/32",
                                 GATEWAY_RATE_LIMITS="/=100/3600,/api=2/3600,/api/auth=1/3600")
    visitor = {"X-Forwarded-For": "203.0.113.7"}

    reads = [(await gateway.get("/api/tours", headers=visitor)).status for _ in range(5)]
    own = [(await gateway.get("/api/bookings", headers={**visitor, **bearer(customer)})).status
           for _ in range(5)]
    logins = [(await gateway.post("/api/auth/login", headers=visitor,
                                  json={"email": "x@example.com", "password": "x"})).status
              for _ in range(2)]

    assert reads == [200] * 5 and own == [200] * 5
    assert logins[1] == 429  # the login form spends the visitor's /api/auth budget
