"""Reading payments: GET /api/payments/{id}, /api/payments/booking/{bookingId} and
/api/payments/me show a payment to its owner and to administrators; to anyone else it does not
exist."""

from __future__ import annotations

from typing import Any

from common.testing import bearer
from payments.tests.conftest import Flow


async def test_reading_payments_is_for_their_owner_and_admins(
        flow: Flow, customer: dict[str, Any], other_customer: dict[str, Any],
        admin: dict[str, Any]) -> None:
    created = await flow.pending_booking(customer)
    intent = await flow.create_intent(customer, created)
    paths = [f"/api/payments/{intent['paymentId']}", f"/api/payments/booking/{created['id']}"]

    for path in paths:
        owner = await flow.payments.get(path, headers=bearer(customer))
        administrator = await flow.payments.get(path, headers=bearer(admin))
        stranger = await flow.payments.get(path, headers=bearer(other_customer))
        assert (owner.status, administrator.status) == (200, 200), path
        assert stranger.status == 404, path
        assert (await stranger.json())["error"] == "PAYMENT_NOT_FOUND"
    [attempt] = (await (await flow.payments.get(paths[1], headers=bearer(customer))).json())[
        "items"]
    assert attempt["id"] == intent["paymentId"]

    mine = await (await flow.payments.get("/api/payments/me", headers=bearer(customer))).json()
    theirs = await (await flow.payments.get("/api/payments/me",
                                            headers=bearer(other_customer))).json()
    assert intent["paymentId"] in [p["id"] for p in mine["items"]]
    assert intent["paymentId"] not in [p["id"] for p in theirs["items"]]
    assert (await flow.payments.get("/api/payments/not-a-uuid",
                                    headers=bearer(customer))).status == 404
