"""The operator's admin account and the demo seed."""

from __future__ import annotations

import uuid

import jwt
import pytest

from auth.admin import AdminError, ensure_admin
from auth.seed import DEMO_EMAIL, DEMO_PASSWORD, seed
from auth.tests.conftest import PASSWORD, Register


async def test_admin_is_created_once_and_can_log_in_as_admin(client, auth_config):
    email = f"Admin-{uuid.uuid4().hex[:8]}@Example.com"
    assert await ensure_admin(auth_config, email, PASSWORD) == "created"
    assert await ensure_admin(auth_config, email, "Another123") == "exists"
    resp = await client.post("/api/auth/login", json={"email": email, "password": PASSWORD})
    assert resp.status == 200
    body = await resp.json()
    assert body["user"]["role"] == "admin"
    claims = jwt.decode(body["accessToken"], options={"verify_signature": False})
    assert claims["role"] == "admin"


async def test_existing_customer_is_promoted(client, auth_config, register: Register):
    user = await register()
    assert await ensure_admin(auth_config, user["user"]["email"], PASSWORD) == "promoted"
    resp = await client.post("/api/auth/login",
                             json={"email": user["user"]["email"], "password": PASSWORD})
    assert (await resp.json())["user"]["role"] == "admin"


@pytest.mark.parametrize(("email", "password"), [("not-an-email", PASSWORD),
                                                 ("ok@example.com", "weak")])
async def test_admin_values_are_validated(auth_config, email, password):
    with pytest.raises(AdminError):
        await ensure_admin(auth_config, email, password)


async def test_seed_is_idempotent_and_the_demo_traveller_can_log_in(client, auth_config):
    await seed(auth_config)
    await seed(auth_config)
    resp = await client.post("/api/auth/login",
                             json={"email": DEMO_EMAIL, "password": DEMO_PASSWORD})
    assert resp.status == 200
