"""Profile reading and editing, the JWKS document and the `/internal` contact lookup."""

from __future__ import annotations

import uuid

import jwt

from auth.tests.conftest import Register, bearer
from common.auth import ALGORITHM


async def test_profile_patch_changes_only_what_is_sent(client, register: Register):
    user = await register(phone="+441234567890")
    headers = bearer(user["accessToken"])
    resp = await client.patch("/api/auth/profile", headers=headers, json={
        "firstName": "  Grace ", "notificationPreferences": {"sms": True}})
    assert resp.status == 200
    body = await resp.json()
    assert body["firstName"] == "Grace"
    assert body["lastName"] == "Lovelace"
    assert body["phone"] == "+441234567890"
    assert body["notificationPreferences"] == {"email": True, "sms": True}
    again = await (await client.get("/api/auth/profile", headers=headers)).json()
    assert again == body


async def test_profile_phone_can_be_cleared_unless_sms_is_on(client, register: Register):
    user = await register(phone="+441234567890")
    headers = bearer(user["accessToken"])
    cleared = await client.patch("/api/auth/profile", headers=headers, json={"phone": None})
    assert (await cleared.json())["phone"] is None
    refused = await client.patch("/api/auth/profile", headers=headers,
                                 json={"notificationPreferences": {"sms": True}})
    assert refused.status == 400
    body = await refused.json()
    assert body["error"] == "VALIDATION_ERROR"
    assert body["details"][0]["field"] == "notificationPreferences.sms"
    # Nothing was half-written.
    profile = await (await client.get("/api/auth/profile", headers=headers)).json()
    assert profile["notificationPreferences"]["sms"] is False


async def test_profile_patch_rejects_bad_values(client, register: Register):
    user = await register()
    headers = bearer(user["accessToken"])
    cases = [
        ({}, "body"),
        ({"phone": "12345"}, "phone"),
        ({"firstName": "   "}, "firstName"),
        ({"firstName": "x" * 101}, "firstName"),
        ({"notificationPreferences": {"email": "maybe"}}, "notificationPreferences.email"),
        ({"notificationPreferences": {"sms": 0}}, "notificationPreferences.sms"),
        ({"notificationPreferences": {"email": "false"}}, "notificationPreferences.email"),
        ({"email": "new@example.com"}, "email"),
    ]
    for body, field in cases:
        resp = await client.patch("/api/auth/profile", headers=headers, json=body)
        assert resp.status == 400, body
        details = (await resp.json())["details"]
        assert field in [d["field"] for d in details], (body, details)
    # No body at all says the same as an empty object (it once reached the model unguarded: 500).
    resp = await client.patch("/api/auth/profile", headers=headers)
    assert resp.status == 400
    assert [d["field"] for d in (await resp.json())["details"]] == ["body"]


async def test_jwks_publishes_the_key_that_verifies_access_tokens(client, register: Register):
    user = await register()
    resp = await client.get("/api/auth/.well-known/jwks.json")
    assert resp.status == 200
    assert "max-age" in resp.headers["Cache-Control"]
    keys = (await resp.json())["keys"]
    assert len(keys) == 1 and keys[0]["kty"] == "OKP" and keys[0]["alg"] == ALGORITHM
    assert "d" not in keys[0]  # never the private part
    header = jwt.get_unverified_header(user["accessToken"])
    assert header["kid"] == keys[0]["kid"]
    key = jwt.PyJWK(keys[0]).key
    claims = jwt.decode(user["accessToken"], key, algorithms=[ALGORITHM], audience="tourbook")
    assert claims["sub"] == user["user"]["id"]
    assert claims["role"] == "customer"
    assert claims["exp"] - claims["iat"] == 900
    assert {"sub", "email", "role", "jti", "exp", "iat", "iss", "aud"} <= claims.keys()


async def test_internal_contact_lookup_needs_the_service_credential(client, register: Register):
    user = await register(phone="+33612345678")
    path = f"/internal/users/{user['user']['id']}"
    with_user_token = await client.get(path, headers=bearer(user["accessToken"]))
    assert (with_user_token.status, (await with_user_token.json())["error"]) == (
        401, "SERVICE_CREDENTIAL_INVALID")
    wrong = await client.get(path, headers={"X-Internal-Token": "guess"})
    assert wrong.status == 401
    ok = await client.get(path, headers={"X-Internal-Token": "test-internal-token"})
    assert ok.status == 200
    body = await ok.json()
    assert body["email"] == user["user"]["email"] and body["phone"] == "+33612345678"
    assert "role" not in body
    for missing in (str(uuid.uuid4()), "not-a-uuid"):
        resp = await client.get(f"/internal/users/{missing}",
                                headers={"X-Internal-Token": "test-internal-token"})
        assert (resp.status, (await resp.json())["error"]) == (404, "USER_NOT_FOUND")
