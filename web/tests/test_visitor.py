"""web in front of an API that records what it is asked: the visitor's address reaches the API
(so that its limits apply per visitor), tokens stay on the server, and the session cookie is
HttpOnly, SameSite=Lax and Secure when the visitor came over HTTPS."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from common.config import load_config
from web.app import create_app
from web.config import Config
from web.sessions import SessionStore

BOOKING_ID = str(uuid.uuid4())
PENDING = {"id": BOOKING_ID, "tourId": str(uuid.uuid4()), "tourTitle": "Harbour walk",
           "tourDate": "2031-05-17", "participants": 2, "unitPrice": 4500, "totalAmount": 9000,
           "currency": "EUR", "status": "pending", "paymentStatus": "unpaid",
           "expiresAt": "2099-01-01T00:00:00Z", "contact": {"name": "Ada", "email": "a@x.org"},
           "allowedTransitions": {"status": ["cancelled"], "paymentStatus": []}}
# What the API answers, beyond logging in: a pending booking, and payments with a real key.
ANSWERS: dict[str, Any] = {
    f"/api/bookings/{BOOKING_ID}": PENDING,
    "/api/payments/config": {"publishableKey": "pk_test_51Realkey", "mode": "test"},
    "/api/payments/create-intent": {"clientSecret": "pi_1_secret_2", "paymentIntentId": "pi_1",
                                    "paymentId": str(uuid.uuid4()), "amount": 9000,
                                    "currency": "EUR"},
}


@pytest.fixture
async def api() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """A recording stand-in for the gateway: login succeeds, a few reads answer, the rest 404."""
    seen: list[dict[str, Any]] = []

    async def answer(request: web.Request) -> web.Response:
        seen.append({"path": request.path, "headers": dict(request.headers)})
        if request.path in ANSWERS:
            return web.json_response(ANSWERS[request.path])
        if request.path == "/api/auth/login":
            return web.json_response({
                "user": {"id": str(uuid.uuid4()), "email": "ada@example.com",
                         "firstName": "Ada", "lastName": "L", "role": "customer"},
                "accessToken": "access-token-secret", "refreshToken": "refresh-token-secret"})
        return web.json_response({"status": 404, "error": "NOT_FOUND", "message": "no"},
                                 status=404)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    server = TestServer(app)
    await server.start_server()
    yield str(server.make_url("")).rstrip("/"), seen
    await server.close()


@pytest.fixture
async def site(api: tuple[str, list[dict[str, Any]]], redis_url: str,
               redis_prefix: str) -> AsyncIterator[TestClient]:
    config = load_config(Config, {"WEB_API_URL": api[0], "REDIS_URL": redis_url,
                                  "REDIS_PREFIX": f"{redis_prefix}web-unit:",
                                  "LOG_LEVEL": "WARNING", "LOG_FORMAT": "json"})
    client = TestClient(TestServer(create_app(config)))
    await client.start_server()
    yield client
    await client.close()


async def _log_in(site: TestClient, headers: dict[str, str]) -> Any:
    page = await site.get("/login", headers={"Accept": "text/html", **headers})
    token = re.search(r'name="csrf" value="([^"]+)"', await page.text())
    assert token is not None
    # The cookie is Secure (the visitor came over HTTPS): this client, on plain HTTP to web,
    # sends it back by hand as the visitor's browser would.
    cookie = page.cookies["tb_session"]
    return await site.post("/login", allow_redirects=False, headers={
        **headers, "Cookie": f"tb_session={cookie.value}"}, data={
        "csrf": token.group(1), "email": "ada@example.com", "password": "Secret123",
        "next": "/bookings"})


async def test_the_api_sees_the_visitor_behind_the_trusted_gateway(
        site: TestClient, api: tuple[str, list[dict[str, Any]]]) -> None:
    behind = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}
    answer = await _log_in(site, behind)
    assert (answer.status, answer.headers["Location"]) == (303, "/bookings")
    [login] = [s for s in api[1] if s["path"] == "/api/auth/login"]
    assert login["headers"]["X-Forwarded-For"] == "203.0.113.9"
    cookie = answer.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" in cookie
    assert "access-token-secret" not in cookie and "refresh-token-secret" not in cookie


async def test_a_form_without_its_csrf_token_is_refused(site: TestClient) -> None:
    answer = await site.post("/login", data={"email": "a@example.com", "password": "x"},
                             headers={"Accept": "text/html"})
    assert answer.status == 403
    assert "the form expired" in (await answer.text())


async def test_a_request_that_changed_its_session_keeps_tokens_another_one_rotated(
        redis_url: str, redis_prefix: str) -> None:
    client = aioredis.from_url(redis_url)
    store = SessionStore(client, f"{redis_prefix}web-race:", 60)
    first = await store.load(None)
    first.sign_in({"id": "u", "email": "a@example.com"}, {"accessToken": "a1",
                                                          "refreshToken": "r1"})
    session_id = await store.save(first)
    slow, quick = await store.load(session_id), await store.load(session_id)
    quick.store_tokens({"accessToken": "a2", "refreshToken": "r2"})  # a refresh, meanwhile
    await store.save(quick)
    slow.set("flash", [{"kind": "info", "text": "Saved"}])  # this one only shows a message
    await store.save(slow)

    kept = await store.load(session_id)
    assert (kept.get("access"), kept.get("refresh"), kept.get("flash")) == (
        "a2", "r2", [{"kind": "info", "text": "Saved"}])
    await client.aclose()


async def test_with_a_real_publishable_key_the_checkout_is_stripes_payment_element(
        site: TestClient) -> None:
    answer = await _log_in(site, {})
    assert answer.status == 303
    cookie = answer.cookies["tb_session"].value
    page = await site.get(f"/checkout?booking={BOOKING_ID}", headers={
        "Accept": "text/html", "Cookie": f"tb_session={cookie}"})
    text = await page.text()
    assert page.status == 200
    assert '<script src="https://js.stripe.com/v3/"></script>' in text
    assert 'data-key="pk_test_51Realkey"' in text and 'data-secret="pi_1_secret_2"' in text
    assert "Test mode" not in text
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self' https://js.stripe.com;" in csp
    assert "frame-src https://js.stripe.com;" in csp
