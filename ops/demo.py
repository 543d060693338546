"""`./ops/dev demo`: a newcomer's journey through a running tourbook, step by step: register, log
in, search, watch the tour live on a WebSocket, book, pay with a test card, wait for the
confirmation, and show what moved: the seats, the frames pushed to the browser, the e-mail sent.

It talks to the gateway like any client would. Only the card payment goes elsewhere: in a browser
Stripe.js confirms the PaymentIntent with Stripe; here the payments service's own Stripe settings
(the local stand-in, or Stripe's test mode) confirm it with a test card, as the browser would.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import secrets
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import aiohttp

from common.config import load_config
from ops import standins
from ops.errors import OpsError

PASSWORD = "Demo-Traveller-1"  # noqa: S105 - a throw-away account the demo registers
TEST_CARD = "pm_card_visa"  # Stripe's test PaymentMethod for a Visa that always succeeds
PARTICIPANTS = 2


@dataclass
class Answer:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


class Journey:
    """One traveller's calls through the gateway, each printed with its result."""

    def __init__(self, gateway: str, say: Callable[[str], None]) -> None:
        self.gateway, self.say = gateway.rstrip("/"), say
        self.token: str | None = None
        self.step = 0

    def call(self, method: str, path: str, body: Any = None,
             headers: dict[str, str] | None = None) -> Answer:
        sent = {"Content-Type": "application/json", **(headers or {})}
        if self.token:
            sent["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(  # noqa: S310 - the gateway's URL, from settings
            self.gateway + path, method=method, headers=sent,
            data=None if body is None else json.dumps(body).encode())
        try:
            with urllib.request.urlopen(request, timeout=30) as resp:  # noqa: S310 - same URL
                raw, status, got = resp.read(), resp.status, dict(resp.headers)
        except urllib.error.HTTPError as exc:
            raw, status, got = exc.read(), exc.code, dict(exc.headers)
        except OSError as exc:
            raise OpsError(f"{method} {self.gateway}{path}: {exc} (is ./ops/dev up running?)"
                           ) from None
        return Answer(status, json.loads(raw) if raw else None, got)

    def expect(self, answer: Answer, status: int, what: str) -> Any:
        if answer.status != status:
            detail = answer.body.get("message") if isinstance(answer.body, dict) else answer.body
            raise OpsError(f"{what}: expected {status}, got {answer.status}: {detail}")
        return answer.body

    def title(self, text: str) -> None:
        self.step += 1
        self.say(f"\n{self.step}. {text}")


def confirm_with_test_card(payment_intent_id: str, return_url: str) -> str:
    """What Stripe.js does in the browser: confirm the intent with a card. The status after.
    (An intent open to every payment method needs the page to come back to, as in a browser.)"""
    payments = importlib.import_module("payments.config")
    config = load_config(payments.Config)
    stripe = importlib.import_module("stripe")
    # The same choice `up` made for payments: the local stand-in, unless real keys are set.
    stand_in = standins.stripe(config, return_url)
    api_base = stand_in.url if stand_in else config.stripe_api_base
    client = stripe.StripeClient(config.stripe_secret_key,
                                 base_addresses={"api": api_base} if api_base else None)
    try:
        intent = client.v1.payment_intents.confirm(payment_intent_id, params={
            "payment_method": TEST_CARD, "return_url": return_url})
    except stripe.StripeError as exc:
        raise OpsError(f"Stripe at {api_base or 'api.stripe.com'} refused the test card: "
                       f"{exc.user_message or exc}") from None
    return str(intent.status)


def departure_with_room(tour: dict[str, Any]) -> dict[str, Any] | None:
    today = datetime.now(UTC).date()
    for departure in tour.get("departures", []):
        if (departure["availableSeats"] >= PARTICIPANTS
                and date.fromisoformat(departure["date"]) > today):
            return dict(departure)
    return None


def run(gateway: str, query: str, say: Callable[[str], None], *, within: float = 30) -> None:
    journey = Journey(gateway, say)
    journey.title("The gateway and the services behind it")
    health = journey.call("GET", "/health").body or {}
    for name, check in sorted(health.get("services", {}).items()):
        say(f"   {name:<10} {check.get('status')}")
    email = sign_up(journey)
    tour, departure = find_departure(journey, query)
    with LiveFrames(journey, tour["id"]) as frames:
        booking = book_and_pay(journey, tour, departure)
        wait_for_confirmation(journey, booking, within)
        show_outcome(journey, tour, departure)
        show_frames(journey, frames, booking, within)
    show_notifications(journey, booking, email, within)


def sign_up(journey: Journey) -> str:
    journey.title("Register a new traveller")
    email = f"demo-{secrets.token_hex(4)}@tourbook.example"
    registered = journey.expect(journey.call("POST", "/api/auth/register", {
        "email": email, "password": PASSWORD, "firstName": "Demo", "lastName": "Newcomer",
        "phone": "+33612345678"}), 201, "register")
    journey.say(f"   {email}, user {registered['user']['id']}")

    journey.title("Log in")
    session = journey.expect(journey.call("POST", "/api/auth/login", {
        "email": email, "password": PASSWORD}), 200, "log in")
    journey.token = session["accessToken"]
    journey.say(f"   an access token for {session['expiresIn'] // 60} minutes")
    return email


def find_departure(journey: Journey, query: str) -> tuple[dict[str, Any], dict[str, Any]]:
    journey.title(f"Search tours for {query!r}")
    found = journey.expect(journey.call("GET", f"/api/tours?q={query}"), 200, "search")
    for tour in found["items"]:
        journey.say(f"   {tour['title']} ({tour['price'] / 100:.2f} {tour['currency']}, "
                    f"next departure {tour.get('nextDepartureDate')})")
    for summary in found["items"]:
        tour = journey.expect(journey.call("GET", f"/api/tours/{summary['slug']}"), 200, "tour")
        departure = departure_with_room(tour)
        if departure is not None:
            journey.say(f"   chose {tour['title']} on {departure['date']}: "
                        f"{departure['availableSeats']} of {departure['capacity']} seats "
                        "available")
            return tour, departure
    if query:
        raise OpsError(f"no tour matching {query!r} has a departure with {PARTICIPANTS} seats "
                       "left (leave out --query to take any tour)")
    raise OpsError(f"no tour has a departure with {PARTICIPANTS} seats left: load the demo "
                   "tours with ./ops/dev seed")


def book_and_pay(journey: Journey, tour: dict[str, Any],
                 departure: dict[str, Any]) -> dict[str, Any]:
    journey.title(f"Book {PARTICIPANTS} seats")
    booking: dict[str, Any] = journey.expect(journey.call("POST", "/api/bookings", {
        "tourId": tour["id"], "tourDate": departure["date"], "participants": PARTICIPANTS},
        headers={"Idempotency-Key": str(uuid.uuid4())}), 201, "book")
    journey.say(f"   booking {booking['id']}: {booking['status']}, "
                f"{booking['totalAmount'] / 100:.2f} {booking['currency']}, "
                f"seats held until {booking['expiresAt']}")

    journey.title("Create the payment")
    intent = _create_intent(journey, booking["id"])
    journey.say(f"   PaymentIntent {intent['paymentIntentId']} for "
                f"{intent['amount'] / 100:.2f} {intent['currency'].upper()}")

    journey.title(f"Pay with the test card {TEST_CARD}")
    status = confirm_with_test_card(intent["paymentIntentId"], journey.gateway + "/")
    journey.say(f"   Stripe says: {status}")
    return booking


def wait_for_confirmation(journey: Journey, booking: dict[str, Any], within: float) -> None:
    journey.title("Wait for the booking to be confirmed")
    deadline = time.monotonic() + within
    while True:
        current = journey.expect(journey.call("GET", f"/api/bookings/{booking['id']}"), 200,
                                 "read the booking")
        if current["status"] == "confirmed":
            break
        if time.monotonic() > deadline:
            raise OpsError(f"the booking is still {current['status']} (payment "
                           f"{current['paymentStatus']}) after {within:g} s")
        time.sleep(0.5)  # a person refreshing the page, not a wait for a condition in a test
    journey.say(f"   {current['status']}, payment {current['paymentStatus']}, "
                f"confirmed at {current['confirmedAt']}")


def show_outcome(journey: Journey, tour: dict[str, Any], departure: dict[str, Any]) -> None:
    journey.title("The seats that moved")
    after = journey.expect(journey.call("GET", f"/api/tours/{tour['id']}"), 200, "tour")
    [now] = [d for d in after["departures"] if d["id"] == departure["id"]]
    journey.say(f"   {departure['date']}: {departure['availableSeats']} → "
                f"{now['availableSeats']} seats available ({now['bookedSeats']} booked, "
                f"{now['heldSeats']} held)")



class LiveFrames:
    """A browser's WebSocket through the gateway, in a thread of its own: it presents the
    traveller's token, subscribes to the tour, and keeps every frame realtime pushes."""

    def __init__(self, journey: Journey, tour_id: str) -> None:
        self.journey = journey
        self.url = journey.gateway.replace("http", "ws", 1) + "/ws"
        self.token, self.tour_id, self.say = journey.token, tour_id, journey.say
        self.frames: list[dict[str, Any]] = []
        self.error: str | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=asyncio.run, args=(self._watch(),), daemon=True)

    def __enter__(self) -> LiveFrames:
        self.journey.title("Watch the tour live on a WebSocket, as its page in a browser does")
        self._thread.start()
        self._ready.wait(10)
        self.say(f"   {self.error}" if self.error else
                 f"   connected to {self.url}, subscribed to tour {self.tour_id}")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            with contextlib.suppress(RuntimeError):  # the loop already ended
                self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(5)

    async def _watch(self) -> None:
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        try:
            async with aiohttp.ClientSession() as session, session.ws_connect(
                    self.url, timeout=aiohttp.ClientWSTimeout(ws_close=5)) as ws:
                await ws.send_json({"type": "auth", "token": self.token})
                await ws.send_json({"type": "subscribe", "tourIds": [self.tour_id]})
                self._ready.set()
                stopping = asyncio.ensure_future(self._stop.wait())
                while not stopping.done():
                    receiving = asyncio.ensure_future(ws.receive())
                    await asyncio.wait({receiving, stopping},
                                       return_when=asyncio.FIRST_COMPLETED)
                    if not receiving.done():
                        receiving.cancel()
                        break
                    message = receiving.result()
                    if message.type != aiohttp.WSMsgType.TEXT:
                        break
                    self.frames.append(json.loads(message.data))
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            self.error = f"no WebSocket: {exc} (is realtime running?)"
        finally:
            self._ready.set()

    def first(self, kind: str, within: float) -> dict[str, Any] | None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline and self.error is None:
            found = next((f for f in list(self.frames) if f.get("type") == kind), None)
            if found is not None:
                return found
            time.sleep(0.1)  # a person watching the page, not a test waiting on a condition
        return None


def show_frames(journey: Journey, frames: LiveFrames, booking: dict[str, Any],
                within: float) -> None:
    journey.title("What the browser saw on its WebSocket")
    if frames.error:
        journey.say(f"   {frames.error}")
        return
    confirmed = frames.first("booking.confirmed", within)
    for frame in frames.frames:
        data = frame.get("data") or {}
        if frame.get("type") == "tour.availability.changed":
            journey.say(f"   tour.availability.changed: {data.get('tourDate')} now has "
                        f"{data.get('availableSeats')} of {data.get('capacity')} seats")
        elif frame.get("type") == "tour.availability.low":
            journey.say(f"   tour.availability.low: only {data.get('availableSeats')} seats "
                        f"left on {data.get('tourDate')}")
        elif str(frame.get("type", "")).startswith("booking."):
            journey.say(f"   {frame['type']}: booking {data.get('bookingId')} is "
                        f"{data.get('status')}, payment {data.get('paymentStatus')}")
        else:
            journey.say(f"   {frame.get('type')}")
    if confirmed is None:
        journey.say(f"   no booking.confirmed frame for {booking['id']} within {within:g} s")


def show_notifications(journey: Journey, booking: dict[str, Any], email: str,
                       within: float) -> None:
    journey.title("The e-mail sent")
    deadline = time.monotonic() + within
    while True:
        sent = journey.call("GET", f"/api/notifications?bookingId={booking['id']}")
        if sent.status != 200:
            journey.say(f"   notify answered {sent.status}: is it running?")
            return
        items = sent.body.get("items", [])
        # The confirmation's e-mail is the one to show; the payment's may be out before it.
        if any(i.get("template") == "booking_confirmed" and i.get("status") in ("sent", "skipped")
               for i in items) or time.monotonic() > deadline:
            break
        time.sleep(0.5)  # a person refreshing the page
    for item in items:
        journey.say(f"   {item.get('channel')} {item.get('template')} to {item.get('recipient')}:"
                    f" {item.get('status')}")
    if not items:
        journey.say(f"   no notification for booking {booking['id']} within {within:g} s")
    show_sink(journey, email)


def show_sink(journey: Journey, email: str) -> None:
    """The message in the local SMTP sink, when `up` runs one."""
    notify = importlib.import_module("notify.config")
    stand_in = standins.smtp(load_config(notify.Config))
    if stand_in is None:
        journey.say("   (notify sends through a real SMTP server: look in that mailbox)")
        return
    try:
        with urllib.request.urlopen(  # noqa: S310 - the local sink's URL
                f"{stand_in.url}/messages?to={urllib.parse.quote(email)}", timeout=10) as resp:
            messages = json.loads(resp.read())["items"]
    except (OSError, ValueError) as exc:
        journey.say(f"   the SMTP sink at {stand_in.url} did not answer: {exc}")
        return
    for message in messages:
        journey.say(f"   in the SMTP sink: \"{message['subject']}\" to {', '.join(message['to'])}")
    journey.say(f"   read them: {stand_in.url}/messages?to={email} or .run/mail/*.eml")


def _create_intent(journey: Journey, booking_id: str) -> dict[str, Any]:
    answer = journey.call("POST", "/api/payments/create-intent", {"bookingId": booking_id},
                          headers={"Idempotency-Key": str(uuid.uuid4())})
    status = 201 if answer.status == 201 else 200
    return dict(journey.expect(answer, status, "create the payment"))
