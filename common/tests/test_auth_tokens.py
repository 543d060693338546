"""Access-token verification as a service sees it: distinct 401 codes, EdDSA only, keys from a file
or from a JWKS URL (served here by a real local server, with key rotation and forged-kid floods);
role, owner and service-credential checks."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import aiohttp
import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from common.auth import (
    JwksKeys,
    StaticKeys,
    TokenExpired,
    TokenInvalid,
    TokenVerifier,
    key_id,
    public_jwk,
)
from common.config import load_config
from common.errors import Unavailable
from common.testing import eventually
from common.tests import demo_service
from common.tests.support import AUDIENCE, ISSUER, SERVICE_TOKENS, FakeClock, Keys, demo_env


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    values = {"sub": "user-1", "email": "user-1@example.com", "role": "customer",
              "sid": "session-1", "jti": str(uuid.uuid4()), "iat": now, "exp": now + 600,
              "iss": ISSUER, "aud": AUDIENCE, "type": "access", **overrides}
    return {k: v for k, v in values.items() if v is not None}


def signed(key: Ed25519PrivateKey, payload: dict[str, Any], **header: Any) -> str:
    header.setdefault("kid", key_id(key.public_key()))
    return jwt.encode(payload, key, algorithm="EdDSA", headers=header)


def encoded(header: dict[str, Any], payload: dict[str, Any]) -> str:
    return f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"


def unsigned(header: dict[str, Any], payload: dict[str, Any], signature: bytes = b"") -> str:
    return f"{encoded(header, payload)}.{b64(signature)}"


def signed_raw(key: Ed25519PrivateKey, header: dict[str, Any], payload: dict[str, Any]) -> str:
    """A really signed token whose header PyJWT would refuse to write."""
    signing_input = encoded(header, payload)
    return f"{signing_input}.{b64(key.sign(signing_input.encode()))}"


def hs256_with_public_key(keys: Keys) -> str:
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT",
                             "kid": key_id(keys.private.public_key())}).encode())
    payload = b64(json.dumps(claims(role="admin")).encode())
    mac = hmac.new(keys.public_file.read_bytes(), f"{header}.{payload}".encode(), hashlib.sha256)
    return f"{header}.{payload}.{b64(mac.digest())}"


def forged_claims(keys: Keys) -> str:
    head, _, signature = keys.token().split(".")
    return f"{head}.{b64(json.dumps(claims(role='admin')).encode())}.{signature}"


def now() -> int:
    return int(time.time())


BAD_TOKENS: dict[str, tuple[str, Callable[[Keys], str]]] = {
    "expired": ("AUTH_TOKEN_EXPIRED",
                lambda k: signed(k.private, claims(iat=now() - 3600, exp=now() - 60))),
    "garbage": ("AUTH_TOKEN_INVALID", lambda k: "garbage"),
    "three garbage parts": ("AUTH_TOKEN_INVALID", lambda k: "a.b.c"),
    "forged claims": ("AUTH_TOKEN_INVALID", forged_claims),
    "alg none": ("AUTH_TOKEN_INVALID",
                 lambda k: unsigned({"alg": "none", "typ": "JWT"}, claims(role="admin"))),
    "HS256 keyed with the public key": ("AUTH_TOKEN_INVALID", hs256_with_public_key),
    "RS256 header": ("AUTH_TOKEN_INVALID",
                     lambda k: unsigned({"alg": "RS256", "kid": key_id(k.private.public_key())},
                                        claims(), b"x" * 256)),
    "another key claiming our kid": (
        "AUTH_TOKEN_INVALID",
        lambda k: signed(Ed25519PrivateKey.generate(), claims(),
                         kid=key_id(k.private.public_key()))),
    "another key with its own kid": (
        "AUTH_TOKEN_INVALID", lambda k: signed(Ed25519PrivateKey.generate(), claims())),
    "wrong issuer": ("AUTH_TOKEN_INVALID", lambda k: signed(k.private, claims(iss="evil-auth"))),
    "wrong audience": ("AUTH_TOKEN_INVALID", lambda k: signed(k.private, claims(aud="other"))),
    "no email claim": ("AUTH_TOKEN_INVALID", lambda k: signed(k.private, claims(email=None))),
    "no expiry": ("AUTH_TOKEN_INVALID", lambda k: signed(k.private, claims(exp=None))),
    "issued in the future": ("AUTH_TOKEN_INVALID",
                             lambda k: signed(k.private, claims(iat=now() + 3600,
                                                                exp=now() + 7200))),
    "a refresh-type token": ("AUTH_TOKEN_INVALID",
                             lambda k: signed(k.private, claims(type="refresh"))),
    "a version that is not a number": ("AUTH_TOKEN_INVALID",
                                       lambda k: signed(k.private, claims(ver="1"))),
    "kid that is not a string": (
        "AUTH_TOKEN_INVALID",
        lambda k: signed_raw(k.private, {"alg": "EdDSA", "kid": ["a", "b"]}, claims())),
}


async def test_a_valid_token_identifies_the_caller(client, keys):
    resp = await client.get("/api/me", headers={"Authorization": f"Bearer {keys.token('u-7')}"})
    assert resp.status == 200
    assert await resp.json() == {"userId": "u-7", "role": "customer"}


async def test_the_bearer_scheme_is_case_insensitive(client, keys):
    resp = await client.get("/api/me", headers={"Authorization": f"bearer {keys.token()}"})
    assert resp.status == 200


async def test_no_token_is_401_auth_token_missing(client):
    resp = await client.get("/api/me")
    assert resp.status == 401
    assert await resp.json() == {"status": 401, "error": "AUTH_TOKEN_MISSING",
                                 "message": "An access token is required"}


@pytest.mark.parametrize("case", BAD_TOKENS)
async def test_a_bad_token_is_401_with_a_distinct_code(client, keys, case):
    code, make = BAD_TOKENS[case]
    resp = await client.get("/api/me", headers={"Authorization": f"Bearer {make(keys)}"})
    assert resp.status == 401
    body = await resp.json()
    assert (body["status"], body["error"]) == (401, code)


@pytest.mark.parametrize("header", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "Bearer a b",
                                    "Token abc"])
async def test_a_malformed_authorization_header_is_401_invalid(client, header):
    resp = await client.get("/api/me", headers={"Authorization": header})
    assert (resp.status, (await resp.json())["error"]) == (401, "AUTH_TOKEN_INVALID")


async def test_admin_routes_want_the_admin_role(client, keys):
    path = "/api/admin/report"
    assert (await client.get(path)).status == 401
    customer = await client.get(path, headers={"Authorization": f"Bearer {keys.token()}"})
    assert customer.status == 403
    assert (await customer.json())["error"] == "FORBIDDEN_ADMIN_ONLY"
    admin = await client.get(path, headers={
        "Authorization": f"Bearer {keys.token('boss', role='admin')}"})
    assert (admin.status, await admin.json()) == (200, {"reportFor": "boss"})


async def test_admin_routes_refuse_managers(client, keys):
    manager = await client.get("/api/admin/report", headers={
        "Authorization": f"Bearer {keys.token('lead', role='manager')}"})
    assert (manager.status, (await manager.json())["error"]) == (403, "FORBIDDEN_ADMIN_ONLY")


async def test_manager_routes_want_a_manager_or_an_admin(client, keys):
    path = "/api/manager/report"
    assert (await client.get(path)).status == 401
    customer = await client.get(path, headers={"Authorization": f"Bearer {keys.token()}"})
    assert customer.status == 403
    assert await customer.json() == {
        "status": 403, "error": "FORBIDDEN_ROLE",
        "message": "This action is reserved to managers and administrators"}
    for who, role in (("lead", "manager"), ("boss", "admin")):
        resp = await client.get(path, headers={"Authorization": f"Bearer {keys.token(who, role)}"})
        assert (resp.status, await resp.json()) == (200, {"reportFor": who})


async def test_owner_routes_serve_the_owner_and_staff_only(client, keys):
    path = "/api/users/user-1/widgets"
    callers = {"owner": keys.token("user-1"), "stranger": keys.token("user-2"),
               "manager": keys.token("lead", role="manager"),
               "admin": keys.token("boss", role="admin")}
    statuses = {who: (await client.get(path, headers={"Authorization": f"Bearer {token}"})).status
                for who, token in callers.items()}
    assert statuses == {"owner": 200, "stranger": 403, "manager": 200, "admin": 200}


async def test_internal_routes_want_a_service_credential_not_a_user_token(client, keys):
    user_token = keys.token("boss", role="admin")
    refused = [
        {},
        {"Authorization": f"Bearer {user_token}"},
        {"X-Internal-Token": user_token},
        {"X-Internal-Token": "guess"},
        {"X-Internal-Token": SERVICE_TOKENS[0][:-1]},
        {"X-Internal-Token": SERVICE_TOKENS[0] + "x"},
        {"X-Internal-Token": ",".join(SERVICE_TOKENS)},
    ]
    for headers in refused:
        resp = await client.get("/internal/ping", headers=headers)
        assert resp.status == 401, headers
        assert (await resp.json())["error"] == "SERVICE_CREDENTIAL_INVALID"
    # Every listed credential works, so a new one can be rolled out before the old is retired.
    for token in SERVICE_TOKENS:
        resp = await client.get("/internal/ping", headers={"X-Internal-Token": token})
        assert (resp.status, await resp.json()) == (200, {"pong": True})


async def test_a_character_of_the_default_credential_is_not_a_credential(aiohttp_client, keys):
    config = load_config(demo_service.Config, {**demo_env(keys), "INTERNAL_TOKENS": ""})
    client = await aiohttp_client(demo_service.create_app(config))
    guess = await client.get("/internal/ping", headers={"X-Internal-Token": "d"})
    assert guess.status == 401
    whole = await client.get("/internal/ping",
                             headers={"X-Internal-Token": config.internal_tokens[0]})
    assert whole.status == 200


class JwksServer:
    """auth's JWKS endpoint, as far as verifiers can tell: the keys it serves, and a hit count."""

    def __init__(self) -> None:
        self.keys: list[Keys] = []
        self.hits = 0
        self.failing = False
        self.extra: list[dict[str, Any]] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/api/auth/.well-known/jwks.json", self.serve)
        return app

    async def serve(self, request: web.Request) -> web.Response:
        self.hits += 1
        if self.failing:
            return web.json_response({"error": "down"}, status=503)
        return web.json_response(
            {"keys": [*self.extra, *(public_jwk(k.private.public_key()) for k in self.keys)]})


@pytest.fixture
async def jwks(aiohttp_server) -> tuple[JwksServer, str]:
    server = JwksServer()
    running = await aiohttp_server(server.app())
    return server, str(running.make_url("/api/auth/.well-known/jwks.json"))


@pytest.fixture
async def session():
    async with aiohttp.ClientSession() as http:
        yield http


def jwks_verifier(url: str, session: aiohttp.ClientSession, clock: FakeClock) -> TokenVerifier:
    keys = JwksKeys(url, session, ttl=300, min_refresh=10, clock=clock)
    return TokenVerifier(keys, issuer=ISSUER, audience=AUDIENCE)


async def test_a_key_rotated_in_is_accepted_after_one_refetch(jwks, session, tmp_path):
    server, url = jwks
    old, new = Keys.create(tmp_path), Keys.create(tmp_path)
    server.keys = [old]
    clock = FakeClock()
    verifier = jwks_verifier(url, session, clock)
    assert (await verifier.verify(old.token("u-1"))).user_id == "u-1"
    assert server.hits == 1
    server.keys = [old, new]  # auth publishes the new key and starts signing with it
    clock.advance(1)
    with pytest.raises(TokenInvalid):  # too soon after the last fetch to look again
        await verifier.verify(new.token("u-2"))
    assert server.hits == 1
    clock.advance(10)
    assert (await verifier.verify(new.token("u-2"))).user_id == "u-2"
    assert server.hits == 2
    assert (await verifier.verify(old.token("u-1"))).user_id == "u-1"
    assert server.hits == 2


async def test_a_flood_of_unknown_kids_refetches_at_most_once_per_interval(jwks, session,
                                                                           tmp_path):
    server, url = jwks
    server.keys = [Keys.create(tmp_path)]
    clock = FakeClock()
    verifier = jwks_verifier(url, session, clock)
    await verifier.verify(server.keys[0].token())
    clock.advance(11)

    def forged() -> str:
        return signed(Ed25519PrivateKey.generate(), claims(), kid=str(uuid.uuid4()))

    results = await asyncio.gather(*(verifier.verify(forged()) for _ in range(50)),
                                   return_exceptions=True)
    assert all(isinstance(r, TokenInvalid) for r in results)
    assert server.hits == 2  # fifty unknown kids at once: one shared refetch
    for _ in range(50):
        with pytest.raises(TokenInvalid):
            await verifier.verify(forged())
    assert server.hits == 2
    clock.advance(11)
    with pytest.raises(TokenInvalid):
        await verifier.verify(forged())
    assert server.hits == 3


async def test_keys_are_refreshed_after_their_ttl_and_kept_while_auth_is_down(jwks, session,
                                                                             tmp_path):
    server, url = jwks
    signer = Keys.create(tmp_path)
    server.keys = [signer]
    clock = FakeClock()
    verifier = jwks_verifier(url, session, clock)
    await verifier.verify(signer.token())
    clock.advance(301)
    await verifier.verify(signer.token())
    assert server.hits == 2
    server.failing = True
    clock.advance(301)
    assert (await verifier.verify(signer.token("u-3"))).user_id == "u-3"  # the cached key
    assert server.hits == 3
    await verifier.verify(signer.token())
    assert server.hits == 3  # a failed fetch is not retried on every request


async def test_keys_that_are_not_usable_ed25519_keys_are_skipped(jwks, session, tmp_path):
    server, url = jwks
    server.keys = [Keys.create(tmp_path)]
    server.extra = [{"kty": "RSA", "kid": "rsa-1", "n": "AQAB", "e": "AQAB"},
                    {"kty": "OKP", "crv": "Ed25519", "kid": "broken", "x": "!!"},
                    "not a key"]
    verifier = jwks_verifier(url, session, FakeClock())
    assert (await verifier.verify(server.keys[0].token("u-4"))).user_id == "u-4"


async def test_a_service_verifies_tokens_with_the_keys_from_the_jwks_url(aiohttp_client, jwks,
                                                                          tmp_path):
    server, url = jwks
    signer = Keys.create(tmp_path)
    server.keys = [signer]
    config = load_config(demo_service.Config, {
        **demo_env(signer), "JWT_PUBLIC_KEY_FILE": str(tmp_path / "absent.pem"), "JWKS_URL": url})
    client = await aiohttp_client(demo_service.create_app(config))
    resp = await client.get("/api/me", headers={"Authorization": f"Bearer {signer.token('u-5')}"})
    assert (resp.status, (await resp.json())["userId"]) == (200, "u-5")
    assert server.hits == 1


async def test_without_any_key_a_valid_token_is_503_not_401(aiohttp_client, jwks, tmp_path):
    server, url = jwks
    server.failing = True
    signer = Keys.create(tmp_path)
    config = load_config(demo_service.Config, {
        **demo_env(signer), "JWT_PUBLIC_KEY_FILE": str(tmp_path / "absent.pem"), "JWKS_URL": url})
    client = await aiohttp_client(demo_service.create_app(config))
    resp = await client.get("/api/me", headers={"Authorization": f"Bearer {signer.token()}"})
    assert (resp.status, (await resp.json())["error"]) == (503, "SERVICE_UNAVAILABLE")


async def test_keys_that_cannot_be_fetched_raise_unavailable(session, unused_tcp_port):
    keys = JwksKeys(f"http://127.0.0.1:{unused_tcp_port}/jwks.json", session, timeout=5)
    with pytest.raises(Unavailable):
        await keys.get("some-kid")


# The verified-token memory: one signature check per token, never at the cost of correctness.

def static_verifier(keys: Keys, **options: Any) -> TokenVerifier:
    return TokenVerifier(StaticKeys.from_files(keys.public_file), issuer=ISSUER,
                         audience=AUDIENCE, **options)


async def test_a_remembered_token_still_expires_at_its_exp(tmp_path):
    keys = Keys.create(tmp_path)
    verifier = static_verifier(keys, leeway=0)
    token = signed(keys.private, claims(exp=int(time.time()) + 1))
    assert (await verifier.verify(token)).user_id == "user-1"
    assert (await verifier.verify(token)).user_id == "user-1"  # from memory
    assert len(verifier) == 1

    async def refused() -> bool:
        try:
            await verifier.verify(token)
        except TokenExpired:
            return True
        return False

    await eventually(refused, timeout=5, message="the remembered token to expire")
    assert len(verifier) == 0


async def test_a_remembered_token_dies_with_the_key_rotated_out(jwks, session, tmp_path):
    server, url = jwks
    old, new = Keys.create(tmp_path), Keys.create(tmp_path)
    server.keys = [old]
    clock = FakeClock()
    verifier = jwks_verifier(url, session, clock)
    token = old.token("u-6")
    assert (await verifier.verify(token)).user_id == "u-6"
    server.keys = [new]  # the old key leaked: auth withdraws it
    clock.advance(301)  # the next fetch is due
    with pytest.raises(TokenInvalid):
        await verifier.verify(token)
    assert (await verifier.verify(new.token("u-7"))).user_id == "u-7"


async def test_a_tampered_copy_of_a_remembered_token_is_refused(tmp_path):
    keys = Keys.create(tmp_path)
    verifier = static_verifier(keys)
    token = keys.token("u-8")
    await verifier.verify(token)
    header, _payload, signature = token.split(".")
    forged_payload = b64(json.dumps(claims(sub="u-admin", role="admin")).encode())
    with pytest.raises(TokenInvalid):
        await verifier.verify(f"{header}.{forged_payload}.{signature}")
    assert len(verifier) == 1


async def test_the_memory_is_bounded_and_never_holds_refused_tokens(tmp_path):
    keys, stranger = Keys.create(tmp_path), Keys.create(tmp_path)
    verifier = static_verifier(keys, cache_size=3)
    tokens = [keys.token(f"u-{i}") for i in range(5)]
    for token in tokens:
        await verifier.verify(token)
    assert len(verifier) == 3
    for _ in range(10):
        with pytest.raises(TokenInvalid):
            await verifier.verify(stranger.token())
    assert len(verifier) == 3
    # The evicted tokens are still good: they are simply checked in full again.
    assert [(await verifier.verify(t)).user_id for t in tokens] == [f"u-{i}" for i in range(5)]
