"""First light: a public catalog read and an authenticated auth call through the gateway."""

from __future__ import annotations

from common.testing import bearer


async def test_public_tours_and_profile_pass(gateway, customer, stand_ins):
    tours = await gateway.get("/api/tours?q=alps")
    assert tours.status == 200
    assert tours.headers["X-Served-By"] == "catalog"
    body = await tours.json()
    assert body["path"] == "/api/tours?q=alps"
    profile = await gateway.get("/api/auth/profile", headers=bearer(customer))
    assert profile.status == 200, await profile.text()
    assert (await profile.json())["id"] == customer["user"]["id"]
    assert profile.headers["X-Served-By"] == "auth"
