"""Every bad input gets the error envelope with a clear message, and nothing is written."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid

import asyncpg
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from auth.keys import load_private_key
from auth.tests.conftest import PASSWORD, Register, bearer
from common.auth import key_id


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims_for(user: dict, **overrides) -> dict:
    now = int(time.time())
    return {"sub": user["user"]["id"], "email": user["user"]["email"], "role": "admin",
            "jti": str(uuid.uuid4()), "iat": now, "exp": now + 600, "iss": "tourbook-auth",
            "aud": "tourbook", **overrides}


@pytest.mark.parametrize(("body", "fields"), [
    ({}, {"email", "password", "firstName", "lastName"}),
    ({"email": "a@example.com", "password": PASSWORD, "firstName": "A"}, {"lastName"}),
    ({"email": 42, "password": PASSWORD, "firstName": "A", "lastName": "B"}, {"email"}),
    ({"email": "not-an-email", "password": PASSWORD, "firstName": "A", "lastName": "B"}, {"email"}),
    ({"email": "a@example.com", "password": "Short1", "firstName": "A", "lastName": "B"},
     {"password"}),
    ({"email": "a@example.com", "password": "alllowercase1", "firstName": "A", "lastName": "B"},
     {"password"}),
    ({"email": "a@example.com", "password": "NoDigitsHere", "firstName": "A", "lastName": "B"},
     {"password"}),
    ({"email": "a@example.com", "password": "Aa1" + "x" * 126, "firstName": "A", "lastName": "B"},
     {"password"}),
    ({"email": "a@example.com", "password": PASSWORD, "firstName": ["A"], "lastName": None},
     {"firstName", "lastName"}),
    ({"email": "a@example.com", "password": PASSWORD, "firstName": "A", "lastName": "B",
      "phone": "call me"}, {"phone"}),
])
async def test_register_validation_names_each_bad_field(client, body, fields):
    resp = await client.post("/api/auth/register", json=body)
    assert resp.status == 400
    payload = await resp.json()
    assert payload["status"] == 400 and payload["error"] == "VALIDATION_ERROR"
    assert {d["field"] for d in payload["details"]} == fields
    assert all(d["message"] for d in payload["details"])


async def test_failed_registration_writes_nothing(client, auth_database):
    email = f"nothing-{uuid.uuid4().hex}@example.com"
    await client.post("/api/auth/register", json={
        "email": email, "password": "weak", "firstName": "A", "lastName": "B"})
    conn = await asyncpg.connect(auth_database)
    count = await conn.fetchval("SELECT count(*) FROM users WHERE email = $1", email)
    await conn.close()
    assert count == 0


@pytest.mark.parametrize("raw", [b"{", b"not json", b'{"email": "a@b.c",}', b"\xff\xfe"])
async def test_malformed_json_is_400(client, raw):
    resp = await client.post("/api/auth/login", data=raw,
                             headers={"Content-Type": "application/json"})
    assert resp.status == 400
    assert (await resp.json())["error"] == "MALFORMED_JSON"


@pytest.mark.parametrize("raw", [b"", b"[]", b'"text"', b"null"])
async def test_body_must_be_a_json_object(client, raw):
    resp = await client.post("/api/auth/login", data=raw,
                             headers={"Content-Type": "application/json"})
    assert resp.status == 400
    body = await resp.json()
    assert body["error"] == "VALIDATION_ERROR" and body["details"][0]["field"] == "body"


async def test_oversized_body_is_413(client):
    resp = await client.post("/api/auth/register", data=b"{" + b" " * (2 * 1024 * 1024) + b"}",
                             headers={"Content-Type": "application/json"})
    assert resp.status == 413
    assert (await resp.json())["error"] == "PAYLOAD_TOO_LARGE"


async def test_unknown_route_and_wrong_method(client):
    missing = await client.get("/api/auth/nope")
    assert (missing.status, (await missing.json())["error"]) == (404, "NOT_FOUND")
    wrong = await client.get("/api/auth/login")
    assert (wrong.status, (await wrong.json())["error"]) == (405, "METHOD_NOT_ALLOWED")
    assert "POST" in wrong.headers["Allow"]


async def test_profile_token_problems_have_distinct_codes(client, register: Register, key_files):
    user = await register()
    key = load_private_key(key_files[0])
    kid = key_id(key.public_key())
    stranger = Ed25519PrivateKey.generate()
    header_none = b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    payload = b64(json.dumps(claims_for(user)).encode())
    public_pem = key_files[1].read_bytes()
    hs_header = b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    hs_sig = b64(hmac.new(public_pem, f"{hs_header}.{payload}".encode(), hashlib.sha256).digest())
    valid = user["accessToken"]
    head, _, sig = valid.split(".")
    forged_body = b64(json.dumps({**jwt.decode(valid, options={"verify_signature": False}),
                                  "role": "admin"}).encode())
    cases = {
        "missing": (None, "AUTH_TOKEN_MISSING"),
        "expired": (jwt.encode(claims_for(user, iat=int(time.time()) - 3600,
                                          exp=int(time.time()) - 60),
                               key, algorithm="EdDSA", headers={"kid": kid}), "AUTH_TOKEN_EXPIRED"),
        "garbage": ("garbage", "AUTH_TOKEN_INVALID"),
        "forged claims": (f"{head}.{forged_body}.{sig}", "AUTH_TOKEN_INVALID"),
        "alg none": (f"{header_none}.{payload}.", "AUTH_TOKEN_INVALID"),
        "hs256 with the public key": (f"{hs_header}.{payload}.{hs_sig}", "AUTH_TOKEN_INVALID"),
        "wrong key": (jwt.encode(claims_for(user), stranger, algorithm="EdDSA",
                                 headers={"kid": kid}), "AUTH_TOKEN_INVALID"),
        "wrong audience": (jwt.encode(claims_for(user, aud="other"), key, algorithm="EdDSA",
                                      headers={"kid": kid}), "AUTH_TOKEN_INVALID"),
        "wrong issuer": (jwt.encode(claims_for(user, iss="evil"), key, algorithm="EdDSA",
                                    headers={"kid": kid}), "AUTH_TOKEN_INVALID"),
    }
    for name, (token, code) in cases.items():
        headers = bearer(token) if token else {}
        resp = await client.get("/api/auth/profile", headers=headers)
        assert (resp.status, (await resp.json())["error"]) == (401, code), name
    basic = await client.get("/api/auth/profile", headers={"Authorization": f"Basic {valid}"})
    assert (await basic.json())["error"] == "AUTH_TOKEN_INVALID"
