"""Managers read every payment, as administrators do; refunds stay with administrators."""

from __future__ import annotations

from typing import Any

from common.testing import bearer
from payments.tests.conftest import Flow


async def test_a_manager_reads_every_payment_but_refunds_none(
        flow: Flow, customer: dict[str, Any], manager: dict[str, Any]) -> None:
    created, intent = await flow.paid_booking(customer)

    for path in (f"/api/payments/{intent['paymentId']}",
                 f"/api/payments/booking/{created['id']}"):
        resp = await flow.payments.get(path, headers=bearer(manager))
        assert resp.status == 200, path
    listed = await flow.payments.get("/api/payments", params={"bookingId": created["id"]},
                                     headers=bearer(manager))
    assert listed.status == 200
    assert [p["id"] for p in (await listed.json())["items"]] == [intent["paymentId"]]
    refund = await flow.payments.post(f"/api/payments/{intent['paymentId']}/refund",
                                      headers=bearer(manager), json={"amount": 100})

    assert (refund.status, (await refund.json())["error"]) == (403, "FORBIDDEN_ADMIN_ONLY")
    assert (await flow.payment(customer, intent["paymentId"]))["status"] == "succeeded"
