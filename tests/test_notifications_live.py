"""What a traveller and an operator see after a booking is paid, with every service a process:
the e-mails arrive in the SMTP sink, the delivery log lists them, and browsers connected through
the gateway's `/ws` see the seats move (and the traveller, their own booking) as it happens."""

from __future__ import annotations

import asyncio
import contextlib
import json
import urllib.parse
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from common.testing import eventually
from tests.conftest import call, register
from tests.test_booking_saga import create_tour
from tests.test_payment_saga import booking_of, create_intent, pay

OPERATOR_EMAIL = "ops@tourbook.example"


class Browser:
    """A WebSocket client through the gateway, keeping every frame it receives."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.frames: list[dict[str, Any]] = []
        self._reading = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self.ws:
            if message.type == aiohttp.WSMsgType.TEXT:
                self.frames.append(json.loads(message.data))

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [frame for frame in self.frames if frame.get("type") == kind]

    async def first(self, kind: str) -> dict[str, Any]:
        frames = await eventually(lambda: self.of(kind), timeout=30,
                                  message=f"a {kind} frame")
        return frames[0]

    async def close(self) -> None:
        await self.ws.close()
        await self._reading


@contextlib.asynccontextmanager
async def browser(gateway: str, token: str | None = None) -> AsyncIterator[Browser]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(gateway.replace("http", "ws", 1) + "/ws", headers=headers)
        client = Browser(ws)
        try:
            await client.first("connection")
            yield client
        finally:
            await client.close()


def mails_to(sink: str, address: str) -> list[dict[str, Any]]:
    status, body, _ = call("GET", f"{sink}/messages?to={urllib.parse.quote(address)}")
    assert status == 200, body
    return list(body["items"])


async def test_a_paid_booking_reaches_the_inbox_the_log_and_the_browsers(platform, admin_token):
    gateway, sink = platform["gateway"], platform["smtp"]
    # 4 of 5 seats booked leaves 1: at most ceil(20 %) of the capacity, so seats are "low".
    tour, when = create_tour(gateway, admin_token, capacity=5)
    traveller = register(gateway)
    token, email = traveller["accessToken"], traveller["user"]["email"]

    async with browser(gateway, token) as own, browser(gateway) as stranger:
        await own.ws.send_json({"type": "subscribe", "tourIds": [tour["id"]]})
        await own.first("subscribed")

        status, booking, _ = call("POST", gateway + "/api/bookings", {
            "tourId": tour["id"], "tourDate": when, "participants": 4}, token=token,
            headers={"Idempotency-Key": str(uuid.uuid4())})
        assert status == 201, booking
        intent = create_intent(gateway, token, booking["id"])
        assert pay(platform["stripe"], intent["paymentIntentId"],
                   "pm_card_visa").status == "succeeded"
        await eventually(lambda: booking_of(gateway, token, booking["id"])["status"]
                         == "confirmed", timeout=30, message="the booking to be confirmed")

        confirmed = await own.first("booking.confirmed")
        assert confirmed["data"]["bookingId"] == booking["id"]
        assert confirmed["data"]["status"] == "confirmed"
        assert "userEmail" not in confirmed["data"]  # no contact details on the wire
        changed = await eventually(
            lambda: [f for f in own.of("tour.availability.changed")
                     if f["data"]["availableSeats"] == 1], timeout=30,
            message="the seat count after the confirmation")
        assert changed[0]["data"]["tourId"] == tour["id"]
        low = await stranger.first("tour.availability.low")
        assert low["data"]["tourId"] == tour["id"] and low["data"]["availableSeats"] == 1
        assert (await own.first("tour.availability.low"))["eventId"] == low["eventId"]
        # The stranger neither subscribed to the tour nor owns the booking.
        assert stranger.of("tour.availability.changed") == []
        assert stranger.of("booking.confirmed") == []

    [mail] = await eventually(
        lambda: [m for m in mails_to(sink, email) if "confirmed" in m["subject"].lower()],
        timeout=30, message="the confirmation e-mail in the sink")
    assert tour["title"] in mail["subject"] or tour["title"] in mail["text"]
    assert tour["title"] in mail["html"]
    alert = await eventually(
        lambda: [m for m in mails_to(sink, OPERATOR_EMAIL) if tour["title"] in m["text"]],
        timeout=30, message="the low-availability alert to the operators")
    assert len(alert) == 1

    async def logged() -> list[dict[str, Any]]:
        status, body, _ = call("GET", f"{gateway}/api/notifications?bookingId={booking['id']}",
                               token=token)
        assert status == 200, body
        sent = [i for i in body["items"] if i["status"] == "sent" and i["channel"] == "email"]
        return sent if {"booking_confirmed", "payment_succeeded"} <= {
            i["template"] for i in sent} else []

    items = await eventually(logged, timeout=30, message="the deliveries in the log")
    assert {i["recipient"] for i in items} == {email}
    # Nothing went out twice for one event.
    assert len([m for m in mails_to(sink, email) if "confirmed" in m["subject"].lower()]) == 1
