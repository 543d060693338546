"""auth's tests put a small server in booking's place (`booking_server`): it answers
`GET /internal/bookings?userId=&limit=` as booking's own OpenAPI document says, and what auth asks
it is a query booking reads."""

from __future__ import annotations

import uuid
from typing import Any

import aiohttp
import pytest

from auth.tests.conftest import MakeAccount, MakeClient, Register, bearer
from booking.app import create_app as create_booking_app
from booking.config import Config as BookingConfig
from common.config import load_config
from common.tests.contracts import PeerContract, served_document
from conftest import INTERNAL_TOKEN

BOOKINGS = "/internal/bookings"


@pytest.fixture
async def contract() -> PeerContract:
    app = create_booking_app(load_config(BookingConfig, {"APP_ENV": "test"}))
    return PeerContract("booking", await served_document(app))


async def test_the_stand_in_answers_a_user_s_bookings_as_booking_documents_it(
        booking_server: tuple[str, list[dict[str, Any]]], contract: PeerContract) -> None:
    url, _ = booking_server

    async with aiohttp.ClientSession() as http:
        listed = await contract.answer(http, "GET", BOOKINGS,
                                       f"{url}{BOOKINGS}?userId={uuid.uuid4()}&limit=10",
                                       headers={"X-Internal-Token": INTERNAL_TOKEN})
        refused = await contract.answer(http, "GET", BOOKINGS,
                                        f"{url}{BOOKINGS}?userId={uuid.uuid4()}&limit=10")

    assert (listed[0], len(listed[1]["items"])) == (200, 3)
    assert (refused[0], refused[1]["error"]) == (401, "SERVICE_CREDENTIAL_INVALID")


async def test_what_auth_asks_for_a_user_s_bookings_is_what_booking_reads(
        make_client: MakeClient, make_account: MakeAccount, register: Register,
        booking_server: tuple[str, list[dict[str, Any]]], contract: PeerContract) -> None:
    url, seen = booking_server
    client = await make_client(BOOKING_URL=url)
    admin, ada = await make_account("admin"), await register()

    resp = await client.get(f"/api/admin/users/{ada['user']['id']}",
                            headers=bearer(admin["accessToken"]))

    assert resp.status == 200
    [asked] = seen
    contract.query("GET", BOOKINGS, asked["query"])
