"""GET /internal/bookings/{id}: other services (notify) read any booking with the service
credential; a user's token, even its owner's or an admin's, is not one."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from booking.tests.conftest import Catalog, book
from common.auth import SERVICE_HEADER
from common.testing import bearer
from conftest import INTERNAL_TOKEN

SERVICE = {SERVICE_HEADER: INTERNAL_TOKEN}


async def test_a_service_reads_any_booking_as_an_admin_sees_it(
        booking: TestClient, catalog: Catalog, customer: dict[str, Any],
        admin: dict[str, Any]) -> None:
    created = await book(booking, customer, await catalog.departure(), participants=3)

    resp = await booking.get(f"/internal/bookings/{created['id']}", headers=SERVICE)

    assert resp.status == 200, await resp.text()
    by_admin = await booking.get(f"/api/bookings/{created['id']}", headers=bearer(admin))
    assert await resp.json() == await by_admin.json()
    body = await resp.json()
    assert (body["userId"], body["participants"]) == (customer["user"]["id"], 3)
    assert body["contact"]["email"] == customer["user"]["email"]
    assert body["expiresAt"] == created["expiresAt"]


@pytest.mark.parametrize("who", ["customer", "admin", "nobody", "wrong-token"])
async def test_anything_but_a_service_credential_is_refused(
        booking: TestClient, catalog: Catalog, customer: dict[str, Any],
        admin: dict[str, Any], who: str) -> None:
    created = await book(booking, customer, await catalog.departure())
    headers = {"customer": bearer(customer), "admin": bearer(admin), "nobody": {},
               "wrong-token": {SERVICE_HEADER: "not-the-token"}}[who]

    resp = await booking.get(f"/internal/bookings/{created['id']}", headers=headers)

    assert resp.status == 401
    assert (await resp.json())["error"] == "SERVICE_CREDENTIAL_INVALID"


@pytest.mark.parametrize("booking_id", [str(uuid.uuid4()), "not-a-uuid"])
async def test_an_unknown_booking_is_404_to_a_service(booking: TestClient,
                                                      booking_id: str) -> None:
    resp = await booking.get(f"/internal/bookings/{booking_id}", headers=SERVICE)

    assert resp.status == 404
    assert (await resp.json())["error"] == "BOOKING_NOT_FOUND"
