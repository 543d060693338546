"""What managers do with bookings (every booking read, listed with filters, moved and cancelled;
payment reconciliation stays with admins), and auth's list of one user's bookings over
`/internal`."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from booking.tests.conftest import Catalog, book
from common.auth import SERVICE_HEADER
from common.testing import bearer, register
from conftest import INTERNAL_TOKEN

SERVICE = {SERVICE_HEADER: INTERNAL_TOKEN}


async def test_a_manager_reads_and_lists_every_booking_with_the_moves_staff_may_make(
        booking: TestClient, catalog: Catalog, customer: dict[str, Any],
        manager: dict[str, Any], admin: dict[str, Any]) -> None:
    created = await book(booking, customer, await catalog.departure())

    one = await booking.get(f"/api/bookings/{created['id']}", headers=bearer(manager))
    listed = await booking.get("/api/bookings", headers=bearer(manager),
                               params={"email": customer["user"]["email"]})

    assert one.status == 200
    by_admin = await (await booking.get(f"/api/bookings/{created['id']}",
                                        headers=bearer(admin))).json()
    seen = await one.json()
    # The same booking, with the status moves of staff and none of the admins' payment moves.
    assert seen | {"allowedTransitions": None} == by_admin | {"allowedTransitions": None}
    assert seen["allowedTransitions"] == {"status": by_admin["allowedTransitions"]["status"],
                                          "paymentStatus": []}
    assert by_admin["allowedTransitions"]["paymentStatus"] != []
    assert created["id"] in [b["id"] for b in (await listed.json())["items"]]
    assert {b["userId"] for b in (await listed.json())["items"]} == {customer["user"]["id"]}


async def test_a_manager_moves_a_status_and_cancels_anyones_booking(
        booking: TestClient, catalog: Catalog, customer: dict[str, Any],
        manager: dict[str, Any]) -> None:
    departure = await catalog.departure()
    first, second = await book(booking, customer, departure), await book(booking, customer,
                                                                          departure)

    moved = await booking.patch(f"/api/bookings/{first['id']}/status", headers=bearer(manager),
                                json={"status": "confirmed"})
    cancelled = await booking.post(f"/api/bookings/{second['id']}/cancel",
                                   headers=bearer(manager), json={})

    assert (moved.status, (await moved.json())["status"]) == (200, "confirmed")
    assert cancelled.status == 200
    assert (await cancelled.json())["cancellationReason"] == "cancelled by an administrator"


async def test_payment_reconciliation_is_for_admins_and_status_moves_for_staff(
        booking: TestClient, catalog: Catalog, customer: dict[str, Any],
        manager: dict[str, Any]) -> None:
    created = await book(booking, customer, await catalog.departure())
    path = f"/api/bookings/{created['id']}"

    by_manager = await booking.patch(f"{path}/payment-status", headers=bearer(manager),
                                     json={"paymentStatus": "paid"})
    by_customer = await booking.patch(f"{path}/status", headers=bearer(customer),
                                      json={"status": "confirmed"})

    assert (by_manager.status, (await by_manager.json())["error"]) == (
        403, "FORBIDDEN_ADMIN_ONLY")
    assert (by_customer.status, (await by_customer.json())["error"]) == (403, "FORBIDDEN_ROLE")
    assert (await (await booking.get(path, headers=bearer(customer))).json())["status"] == \
        "pending"


async def test_a_service_lists_one_users_bookings_newest_first(
        booking: TestClient, catalog: Catalog, auth_url: str,
        other_customer: dict[str, Any]) -> None:
    traveller = register(auth_url, "Lisa")
    departure = await catalog.departure()
    made = [await book(booking, traveller, departure) for _ in range(3)]
    await book(booking, other_customer, departure)

    resp = await booking.get("/internal/bookings", headers=SERVICE,
                             params={"userId": traveller["user"]["id"], "limit": "2"})

    assert resp.status == 200, await resp.text()
    body = await resp.json()
    assert (body["page"], body["limit"], body["total"]) == (1, 2, 3)
    assert [b["id"] for b in body["items"]] == [made[2]["id"], made[1]["id"]]
    # Each as an administrator sees it, like GET /internal/bookings/{id}.
    one = await booking.get(f"/internal/bookings/{made[2]['id']}", headers=SERVICE)
    assert body["items"][0] == await one.json()


@pytest.mark.parametrize("who", ["customer", "admin", "nobody"])
async def test_a_users_bookings_are_for_services_only(booking: TestClient,
                                                      customer: dict[str, Any],
                                                      admin: dict[str, Any], who: str) -> None:
    headers = {"customer": bearer(customer), "admin": bearer(admin), "nobody": {}}[who]
    resp = await booking.get("/internal/bookings", headers=headers,
                             params={"userId": customer["user"]["id"]})
    assert (resp.status, (await resp.json())["error"]) == (401, "SERVICE_CREDENTIAL_INVALID")


@pytest.mark.parametrize("query", [{}, {"userId": "not-a-uuid"}, {"userId": "", "limit": "101"}])
async def test_a_users_bookings_need_a_user_id(booking: TestClient,
                                               query: dict[str, str]) -> None:
    resp = await booking.get("/internal/bookings", headers=SERVICE, params=query)
    assert (resp.status, (await resp.json())["error"]) == (400, "VALIDATION_ERROR")
