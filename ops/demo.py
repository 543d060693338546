"""`./ops/dev demo`: a newcomer's journey through a running tourbook, step by step: register, log
in, search, book, pay with a test card, wait for the confirmation, and show what moved.

It talks to the gateway like any client would. Only the card payment goes elsewhere: in a browser
Stripe.js confirms the PaymentIntent with Stripe; here the payments service's own Stripe settings
(the local stand-in, or Stripe's test mode) confirm it with a test card, as the browser would.
"""

from __future__ import annotations

import importlib
import json
import secrets
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

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
    sign_up(journey)
    tour, departure = find_departure(journey, query)
    booking = book_and_pay(journey, tour, departure)
    wait_for_confirmation(journey, booking, within)
    show_outcome(journey, tour, departure)


def sign_up(journey: Journey) -> None:
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

    journey.title("The notification sent")
    sent = journey.call("GET", "/api/notifications")
    if sent.status == 200:
        for item in sent.body.get("items", []):
            journey.say(f"   {item.get('channel')} {item.get('template') or item.get('type')}: "
                        f"{item.get('status')}")
    else:
        journey.say(f"   notify answered {sent.status}: it is not running in this checkout yet")


def _create_intent(journey: Journey, booking_id: str) -> dict[str, Any]:
    answer = journey.call("POST", "/api/payments/create-intent", {"bookingId": booking_id},
                          headers={"Idempotency-Key": str(uuid.uuid4())})
    status = 201 if answer.status == 201 else 200
    return dict(journey.expect(answer, status, "create the payment"))
