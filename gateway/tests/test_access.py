"""Tokens and rules at the gateway, requests sent byte for byte: a distinct 401 for missing,
expired, invalid and revoked tokens, managers' and admins' routes however the path is spelled,
and the identity forwarded upstream is the token's, never the client's own headers."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from auth.keys import load_private_key
from auth.tokens import TokenSigner
from common.testing import TEST_PASSWORD, bearer, eventually, register
from gateway.table import Rules
from gateway.tests.conftest import MakeGateway, StandIn, raw_request

TOUR = "3f2b8a8e-6c1d-4c49-9f0e-2d4a1b7c9e10"


def _sign(key: Ed25519PrivateKey, ttl: int, role: str = "customer") -> str:
    signer = TokenSigner(key, issuer="tourbook-auth", audience="tourbook", ttl=ttl)
    return signer.access_token(user_id="0b9c7a52-5a57-4d0e-8f43-4ce1d1f0a7a1",
                               email="someone@example.com", role=role, session_id="s1")


def _unsigned(claims: dict[str, Any]) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


def _with_role(token: str, role: str) -> str:
    """The same signature over a payload that claims another role."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    forged = base64.urlsafe_b64encode(json.dumps({**claims, "role": role}).encode())
    return f"{header}.{forged.rstrip(b'=').decode()}.{signature}"


def _error(response: Any) -> tuple[int, str]:
    return response.status, response.json()["error"]


# --- public routes -------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "target"), [
    ("GET", "/api/tours"), ("GET", "/api/tours?q=alps&sort=-price"), ("GET", f"/api/tours/{TOUR}"),
    ("HEAD", "/api/tours"), ("GET", "/api/categories"), ("GET", "/api/destinations/lisbon"),
])
async def test_public_catalog_reads_pass_without_a_token(gateway: TestClient,
                                                         stand_ins: dict[str, StandIn],
                                                         method: str, target: str) -> None:
    response = await raw_request(gateway.server.port, method, target)
    assert response.status == 200
    assert response.headers["X-Served-By"] == "catalog"
    [hit] = stand_ins["catalog"].hits
    assert (hit["method"], hit["path"]) == (method, target)
    assert not {"X-User-Id", "X-User-Email", "X-User-Role"} & set(hit["headers"])


async def test_a_public_route_called_with_a_token_forwards_the_identity(
        gateway: TestClient, stand_ins: dict[str, StandIn], customer: dict[str, Any]) -> None:
    response = await gateway.get("/api/tours", headers=bearer(customer))
    assert response.status == 200
    received = (await response.json())["headers"]
    assert received["X-User-Id"] == customer["user"]["id"]
    assert received["X-User-Role"] == "customer"


# --- 401: missing, expired, invalid ---------------------------------------------------------


async def test_a_protected_route_without_a_token_is_401_token_missing(
        gateway: TestClient, stand_ins: dict[str, StandIn]) -> None:
    for method, target in [("GET", "/api/bookings"), ("HEAD", "/api/bookings"),
                           ("POST", "/api/bookings"), ("GET", "/api/auth/profile")]:
        response = await raw_request(gateway.server.port, method, target)
        assert response.status == 401, target
        if method != "HEAD":
            assert response.json() == {"status": 401, "error": "AUTH_TOKEN_MISSING",
                                       "message": "An access token is required"}
    assert stand_ins["booking"].hits == []


async def test_an_expired_token_is_401_token_expired(
        gateway: TestClient, stand_ins: dict[str, StandIn], key_files: tuple[Path, Path]) -> None:
    expired = _sign(load_private_key(key_files[0]), ttl=-120)
    response = await gateway.get("/api/bookings", headers={"Authorization": f"Bearer {expired}"})
    assert response.status == 401
    assert (await response.json())["error"] == "AUTH_TOKEN_EXPIRED"
    assert stand_ins["booking"].hits == []


@pytest.mark.parametrize("authorization", [
    "Bearer not-a-jwt",
    "Bearer " + _sign(Ed25519PrivateKey.generate(), ttl=600),  # a key auth never had
    "Bearer " + _unsigned({"sub": "x", "email": "x@example.com", "role": "admin", "jti": "j",
                           "iat": 1, "exp": 4102444800, "iss": "tourbook-auth",
                           "aud": "tourbook"}),
    "Basic YWRtaW46YWRtaW4=",
], ids=["garbage", "foreign-key", "alg-none", "basic-scheme"])
async def test_an_invalid_token_is_401_token_invalid(gateway: TestClient,
                                                     stand_ins: dict[str, StandIn],
                                                     authorization: str) -> None:
    response = await gateway.get("/api/bookings", headers={"Authorization": authorization})
    assert response.status == 401
    assert (await response.json())["error"] == "AUTH_TOKEN_INVALID"
    assert stand_ins["booking"].hits == []


async def test_a_token_whose_role_was_edited_is_401_token_invalid(
        gateway: TestClient, stand_ins: dict[str, StandIn], customer: dict[str, Any]) -> None:
    forged = _with_role(customer["accessToken"], "admin")
    response = await gateway.post("/api/tours", headers={"Authorization": f"Bearer {forged}"})
    assert response.status == 401
    assert (await response.json())["error"] == "AUTH_TOKEN_INVALID"
    assert stand_ins["catalog"].hits == []


# --- staff-only and admin-only routes -------------------------------------------------------


@pytest.mark.parametrize(("method", "target"), [
    ("POST", "/api/tours"), ("POST", "/api/tours/"), ("POST", "/api/tours?draft=1"),
    ("PUT", f"/api/tours/{TOUR}"), ("PATCH", f"/api/tours/{TOUR}"),
    ("DELETE", f"/api/tours/{TOUR}"), ("PATCH", f"/api/tours/{TOUR}/"),
    ("POST", f"/api/tours/{TOUR}/departures"), ("DELETE", "/api/tours/alps-trek"),
    ("POST", "/api/%74ours"), ("PATCH", f"/api/tours/{TOUR}%3Fx"),
    ("POST", "/api/categories"), ("DELETE", "/api/destinations/lisbon"),
    ("PATCH", f"/api/bookings/{TOUR}/status"),
])
async def test_a_customer_cannot_use_a_managers_route(gateway: TestClient,
                                                      stand_ins: dict[str, StandIn],
                                                      customer: dict[str, Any],
                                                      method: str, target: str) -> None:
    response = await raw_request(gateway.server.port, method, target, bearer(customer),
                                 body=b'{"title": "Mine now"}')
    assert _error(response) == (403, "FORBIDDEN_ROLE")
    assert all(s.hits == [] for s in stand_ins.values())


ADMIN_ONLY = [
    ("PATCH", f"/api/bookings/{TOUR}/payment-status"), ("POST", f"/api/payments/{TOUR}/refund"),
    ("GET", "/api/admin/users"), ("GET", "/api/admin/users?role=admin"),
    ("GET", f"/api/admin/users/{TOUR}"), ("HEAD", f"/api/admin/users/{TOUR}"),
    ("PATCH", f"/api/admin/users/{TOUR}"), ("PATCH", f"/api/%61dmin/users/{TOUR}"),
]


@pytest.mark.parametrize("who", ["customer", "manager"])
@pytest.mark.parametrize(("method", "target"), ADMIN_ONLY)
async def test_only_an_admin_uses_an_admin_route(*, gateway: TestClient,
                                                 stand_ins: dict[str, StandIn],
                                                 customer: dict[str, Any],
                                                 manager: dict[str, Any], who: str,
                                                 method: str, target: str) -> None:
    caller = {"customer": customer, "manager": manager}[who]
    response = await raw_request(gateway.server.port, method, target, bearer(caller),
                                 body=b'{"role": "admin"}')
    assert response.status == 403
    if method != "HEAD":
        assert response.json()["error"] == "FORBIDDEN_ADMIN_ONLY"
    assert all(s.hits == [] for s in stand_ins.values())


async def test_a_manager_runs_the_catalog_and_moves_bookings(
        gateway: TestClient, stand_ins: dict[str, StandIn], manager: dict[str, Any]) -> None:
    for method, target, service in [("POST", "/api/tours", "catalog"),
                                    ("DELETE", f"/api/tours/{TOUR}/departures/{TOUR}", "catalog"),
                                    ("PATCH", "/api/categories/food", "catalog"),
                                    ("PATCH", f"/api/bookings/{TOUR}/status", "booking")]:
        response = await gateway.request(method, target, json={}, headers=bearer(manager))
        assert (response.status, response.headers["X-Served-By"]) == (200, service), target
        received = (await response.json())["headers"]
        assert (received["X-User-Role"], received["X-User-Id"]) == (
            "manager", manager["user"]["id"])


async def test_the_admins_user_pages_are_served_by_auth(gateway: TestClient,
                                                        admin: dict[str, Any],
                                                        manager: dict[str, Any]) -> None:
    listed = await gateway.get("/api/admin/users", headers=bearer(admin),
                               params={"q": manager["user"]["email"]})
    assert (listed.status, listed.headers["X-Served-By"]) == (200, "auth")
    assert [u["role"] for u in (await listed.json())["items"]] == ["manager"]
    one = await gateway.get(f"/api/admin/users/{manager['user']['id']}", headers=bearer(admin))
    assert (await one.json())["user"]["email"] == manager["user"]["email"]


@pytest.mark.parametrize(("method", "target"), [
    ("POST", "//api/tours"), ("POST", "/api//tours"), ("POST", "/api/tours//"),
    ("PATCH", f"/api/tours%2F{TOUR}"), ("PATCH", f"/api/tours%2f{TOUR}"),
    ("POST", "/api/./tours"), ("POST", "/api/tours/."), ("POST", "/api/bookings/../tours"),
    ("PATCH", f"/api/bookings/%2e%2e/tours/{TOUR}"), ("PATCH", f"/api/bookings/.%2E/tours/{TOUR}"),
    ("POST", "/api/tours%5C"), ("POST", "/api/tours\\x"), ("POST", "/api/tours#x"),
    ("POST", "/api/bookings/..;/tours"),
])
async def test_ambiguous_spellings_of_a_path_are_refused_before_any_rule(
        gateway: TestClient, stand_ins: dict[str, StandIn], customer: dict[str, Any],
        method: str, target: str) -> None:
    response = await raw_request(gateway.server.port, method, target, bearer(customer))
    assert response.json() == {"status": 400, "error": "INVALID_PATH",
                               "message": "The path is not in canonical form"}
    assert all(s.hits == [] for s in stand_ins.values())


@pytest.mark.parametrize("target", ["/API/tours", "/api/Tours", "/api/TOURS/x", "/api/tours;x"])
async def test_other_cases_of_a_prefix_are_no_route_at_all(gateway: TestClient,
                                                           stand_ins: dict[str, StandIn],
                                                           customer: dict[str, Any],
                                                           target: str) -> None:
    response = await raw_request(gateway.server.port, "POST", target, bearer(customer))
    if target.startswith("/api/"):
        assert _error(response) == (404, "NOT_FOUND")
    else:
        assert response.headers["X-Served-By"] == "web"  # a page's path, for web to answer
    assert all(s.hits == [] for name, s in stand_ins.items() if name != "web")


@pytest.mark.parametrize("method", ["PROPFIND", "TRACE", "MKCOL", "PURGE", "LINK"])
async def test_methods_the_rules_do_not_name_are_405(gateway: TestClient,
                                                     stand_ins: dict[str, StandIn],
                                                     customer: dict[str, Any],
                                                     method: str) -> None:
    response = await raw_request(gateway.server.port, method, "/api/tours", bearer(customer))
    assert _error(response) == (405, "METHOD_NOT_ALLOWED")
    assert response.headers["Allow"] == "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT"
    assert all(s.hits == [] for s in stand_ins.values())


async def test_head_and_options_are_no_way_around_the_rules(gateway: TestClient,
                                                            stand_ins: dict[str, StandIn],
                                                            customer: dict[str, Any]) -> None:
    port = gateway.server.port
    # HEAD is read as GET: public where GET is, protected where GET is.
    assert (await raw_request(port, "HEAD", "/api/bookings")).status == 401
    # A preflight is answered by the gateway itself: it grants nothing and reaches no one.
    preflight = await raw_request(port, "OPTIONS", "/api/tours", {
        "Origin": "http://localhost:5173", "Access-Control-Request-Method": "POST"})
    assert preflight.status == 204
    # Any other OPTIONS is an ordinary request: it needs a token like any non-public route.
    assert _error(await raw_request(port, "OPTIONS", "/api/tours")) == (401, "AUTH_TOKEN_MISSING")
    assert stand_ins["catalog"].hits == [] and stand_ins["booking"].hits == []
    # And a customer's write stays refused whatever method-override header rides along.
    response = await raw_request(port, "POST", f"/api/tours/{TOUR}", {
        **bearer(customer), "X-HTTP-Method-Override": "GET"})
    assert _error(response) == (403, "FORBIDDEN_ROLE")


async def test_method_override_headers_never_reach_a_service(gateway: TestClient,
                                                             stand_ins: dict[str, StandIn],
                                                             customer: dict[str, Any]) -> None:
    response = await raw_request(gateway.server.port, "GET", f"/api/tours/{TOUR}", {
        **bearer(customer), "X-HTTP-Method-Override": "DELETE", "X-HTTP-Method": "DELETE",
        "X-Method-Override": "DELETE"})
    assert response.status == 200
    [hit] = stand_ins["catalog"].hits
    assert hit["method"] == "GET"
    assert not {"X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override"} & set(
        hit["headers"])


async def test_an_admin_may_write_tours_and_the_service_learns_who(
        gateway: TestClient, stand_ins: dict[str, StandIn], admin: dict[str, Any]) -> None:
    created = await gateway.post("/api/tours", json={"title": "Alps"}, headers=bearer(admin))
    changed = await gateway.patch(f"/api/tours/{TOUR}", json={"price": 8999},
                                  headers=bearer(admin))
    assert (created.status, changed.status) == (200, 200)
    assert [(h["method"], h["path"], h["headers"]["X-User-Role"], h["headers"]["X-User-Id"])
            for h in stand_ins["catalog"].hits] == [
        ("POST", "/api/tours", "admin", admin["user"]["id"]),
        ("PATCH", f"/api/tours/{TOUR}", "admin", admin["user"]["id"])]


async def test_a_customer_reaches_the_routes_any_user_may_call(
        gateway: TestClient, stand_ins: dict[str, StandIn], customer: dict[str, Any]) -> None:
    for method, target, service in [("GET", f"/api/bookings/{TOUR}", "booking"),
                                    ("POST", f"/api/bookings/{TOUR}/cancel", "booking"),
                                    ("GET", "/api/payments/me", "payments"),
                                    ("GET", "/api/notifications", "notify")]:
        response = await gateway.request(method, target, headers=bearer(customer))
        assert response.status == 200, target
        assert response.headers["X-Served-By"] == service


# --- identity headers -----------------------------------------------------------------------

FORGED = {"X-User-Id": "00000000-0000-0000-0000-000000000000", "X-User-Email": "root@evil.test",
          "X-User-Role": "admin", "X_User_Role": "admin", "x-user-id": "someone-else"}


async def test_forged_identity_headers_are_dropped_without_a_token(
        gateway: TestClient, stand_ins: dict[str, StandIn]) -> None:
    response = await raw_request(gateway.server.port, "GET", "/api/tours", FORGED)
    assert response.status == 200
    received = {k.lower().replace("_", "-") for k in stand_ins["catalog"].hits[0]["headers"]}
    assert not {"x-user-id", "x-user-email", "x-user-role"} & received


async def test_forged_identity_headers_are_replaced_by_the_tokens(
        gateway: TestClient, stand_ins: dict[str, StandIn], customer: dict[str, Any]) -> None:
    response = await raw_request(gateway.server.port, "POST", "/api/bookings",
                                 {**FORGED, **bearer(customer)})
    assert response.status == 200
    received = response.json()["headers"]
    assert {k: v for k, v in received.items() if k.lower().replace("_", "-").startswith(
        "x-user-")} == {"X-User-Id": customer["user"]["id"],
                        "X-User-Email": customer["user"]["email"], "X-User-Role": "customer"}


async def test_answers_are_remembered_per_method_not_per_path(
        gateway: TestClient, stand_ins: dict[str, StandIn], customer: dict[str, Any]) -> None:
    for _ in range(3):
        read = await gateway.get(f"/api/tours/{TOUR}")
        write = await gateway.patch(f"/api/tours/{TOUR}", json={"title": "Mine now"},
                                    headers=bearer(customer))
        assert (read.status, write.status) == (200, 403)


def test_the_rules_memory_stays_bounded_and_right() -> None:
    rules = Rules.parse(["GET /api/tours/**", "POST /api/auth/login"])
    rules_with_small_memory = Rules(rules.rules, memory=8)
    for i in range(100):
        assert rules_with_small_memory.any("GET", f"/api/tours/{i}")
        assert not rules_with_small_memory.any("DELETE", f"/api/tours/{i}")
        assert len(rules_with_small_memory) <= 8


# --- revoked tokens ---------------------------------------------------------------------------


async def refused_within(gateway: TestClient, token: str, seconds: float) -> float:
    """How long until the gateway answers 401 AUTH_TOKEN_REVOKED to `token` (at most
    `seconds`, else the test fails)."""
    started = time.monotonic()

    async def revoked() -> bool:
        response = await gateway.get("/api/bookings", headers={"Authorization": f"Bearer {token}"})
        return response.status == 401 and (await response.json())["error"] == "AUTH_TOKEN_REVOKED"

    await eventually(revoked, timeout=seconds, interval=0.05, message="the token refused")
    return time.monotonic() - started


async def test_a_logged_out_token_stops_at_the_gateway_within_five_seconds(
        make_gateway: MakeGateway, stand_ins: dict[str, StandIn], auth_url: str,
        redis_prefix: str) -> None:
    # auth and this gateway share the run's Redis prefix, as every service of a deployment does.
    gateway = await make_gateway(REDIS_PREFIX=redis_prefix)
    user = register(auth_url, "Lou")
    assert (await gateway.get("/api/bookings", headers=bearer(user))).status == 200

    logout = await gateway.post("/api/auth/logout", headers=bearer(user))

    assert logout.status == 204
    await refused_within(gateway, user["accessToken"], 5)
    assert len(stand_ins["booking"].hits) == 1


async def test_a_disabled_or_demoted_users_tokens_stop_at_the_gateway_within_five_seconds(
        make_gateway: MakeGateway, stand_ins: dict[str, StandIn], auth_url: str,
        redis_prefix: str, admin: dict[str, Any]) -> None:
    gateway = await make_gateway(REDIS_PREFIX=redis_prefix)
    disabled, demoted = register(auth_url, "Dee"), register(auth_url, "Dem")
    promoted = await gateway.patch(f"/api/admin/users/{demoted['user']['id']}",
                                   json={"role": "manager"}, headers=bearer(admin))
    assert promoted.status == 200
    login = await gateway.post("/api/auth/login", json={
        "email": demoted["user"]["email"], "password": TEST_PASSWORD})
    lead = await login.json()
    assert (await gateway.post("/api/tours", json={}, headers=bearer(lead))).status == 200

    for user, change in ((disabled, {"isActive": False}), (lead, {"role": "customer"})):
        response = await gateway.patch(f"/api/admin/users/{user['user']['id']}", json=change,
                                       headers=bearer(admin))
        assert response.status == 200
        await refused_within(gateway, user["accessToken"], 5)
    # The demoted user's next token carries the new role: a customer's.
    refreshed = await gateway.post("/api/auth/refresh",
                                   json={"refreshToken": lead["refreshToken"]})
    token = (await refreshed.json())["accessToken"]
    refused = await gateway.post("/api/tours", json={},
                                 headers={"Authorization": f"Bearer {token}"})
    assert (refused.status, (await refused.json())["error"]) == (403, "FORBIDDEN_ROLE")
