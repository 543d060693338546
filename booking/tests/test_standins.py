"""booking's tests put a small server in payments' place (`payments` in conftest.py): it answers
`PUT /internal/payments/booking/{bookingId}/amount` as payments' own OpenAPI document says, in
each of its modes, and what booking sends it is a body payments would accept."""

from __future__ import annotations

import uuid
from typing import Any

import aiohttp
import pytest

from booking.tests.conftest import Catalog, MakeBooking, PaymentsStandIn, book
from common.config import load_config
from common.testing import bearer
from common.tests.contracts import PeerContract, served_document
from conftest import INTERNAL_TOKEN
from payments.app import create_app as create_payments_app
from payments.config import Config as PaymentsConfig

AMOUNT = "/internal/payments/booking/{bookingId}/amount"


@pytest.fixture
async def contract() -> PeerContract:
    app = create_payments_app(load_config(PaymentsConfig, {"APP_ENV": "test"}))
    return PeerContract("payments", await served_document(app))


@pytest.mark.parametrize(("mode", "status"), [
    ("updated", 200), ("none", 200), ("in_progress", 409), ("unavailable", 503)])
async def test_the_stand_in_answers_a_new_amount_as_payments_documents_it(
        payments: PaymentsStandIn, contract: PeerContract, mode: str, status: int) -> None:
    payments.answer = mode
    url = f"{payments.url}/internal/payments/booking/{uuid.uuid4()}/amount"

    async with aiohttp.ClientSession() as http:
        answered, body = await contract.answer(
            http, "PUT", AMOUNT, url, json={"amount": 13500, "currency": "EUR"},
            headers={"X-Internal-Token": INTERNAL_TOKEN})

    assert answered == status
    if status == 200:
        assert (body["amount"], body["action"]) == (13500, mode)


async def test_the_stand_in_refuses_a_call_without_the_service_credential_as_payments_does(
        payments: PaymentsStandIn, contract: PeerContract) -> None:
    url = f"{payments.url}/internal/payments/booking/{uuid.uuid4()}/amount"

    async with aiohttp.ClientSession() as http:
        answered, body = await contract.answer(http, "PUT", AMOUNT, url,
                                               json={"amount": 13500, "currency": "EUR"})

    assert (answered, body["error"]) == (401, "SERVICE_CREDENTIAL_INVALID")


async def test_what_booking_sends_for_a_new_total_is_what_payments_accepts(
        make_booking: MakeBooking, catalog: Catalog, payments: PaymentsStandIn,
        contract: PeerContract, customer: dict[str, Any]) -> None:
    booking = await make_booking(CATALOG_URL=catalog.url, PAYMENTS_URL=payments.url)
    created = await book(booking, customer, await catalog.departure(price=4500))

    resp = await booking.patch(f"/api/bookings/{created['id']}", json={"participants": 3},
                               headers={**bearer(customer), "If-Match": '"1"'})

    assert resp.status == 200, await resp.text()
    [(booking_id, body)] = payments.calls
    assert booking_id == created["id"]
    contract.request_body("PUT", AMOUNT, body)
