"""The stand-in under test: its real app on a real loopback socket, driven by the official
`stripe` SDK (the sync client in a thread, the async client on the loop), and webhook receivers
that verify every delivery with `stripe.Webhook.construct_event`, as the payments service will.

Nothing of the stand-in is faked: deliveries go over HTTP to the receivers, with retry delays
made short through the stand-in's own settings.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import stripe
from aiohttp import web
from pytest_aiohttp import AiohttpServer

from common.config import load_config
from common.testing import eventually
from standins.stripe.app import create_app
from standins.stripe.app_keys import DELIVERIES
from standins.stripe.config import Config

API_KEY = "sk_test_standin"
WEBHOOK_SECRET = "whsec_test_standin_secret"
# Short retries, so that a receiver failing twice gets the event well within a test.
FAST_RETRIES = {"STRIPE_STANDIN_WEBHOOK_BACKOFF": "0.05",
                "STRIPE_STANDIN_WEBHOOK_BACKOFF_MAX": "0.2",
                "STRIPE_STANDIN_WEBHOOK_TIMEOUT": "5"}


@dataclass
class StandIn:
    url: str
    app: web.Application

    def client(self, api_key: str = API_KEY) -> stripe.StripeClient:
        """The sync SDK client, its API base the stand-in: call it through `sync()`."""
        return stripe.StripeClient(api_key, base_addresses={"api": self.url})

    @property
    def deliveries_in_flight(self) -> int:
        return self.app[DELIVERIES].in_flight


@dataclass
class Receiver:
    """A webhook endpoint: verifies each delivery's signature and answers 200, except to the
    first `failures` attempts at each event, which get a 500."""

    url: str = ""
    secret: str = WEBHOOK_SECRET
    failures: int = 0
    events: list[stripe.Event] = field(default_factory=list)
    attempts: Counter[str] = field(default_factory=Counter)
    rejected: list[str] = field(default_factory=list)
    raw: list[tuple[bytes, dict[str, str]]] = field(default_factory=list)
    """Each verified delivery as it came: its body and headers."""

    async def handle(self, request: web.Request) -> web.Response:
        payload = await request.read()
        header = request.headers.get("Stripe-Signature", "")
        event_id = json.loads(payload)["id"]
        self.attempts[event_id] += 1
        if self.attempts[event_id] <= self.failures:
            return web.Response(status=500, text="not now")
        try:
            event = stripe.Webhook.construct_event(payload, header, self.secret)
        except stripe.SignatureVerificationError as exc:
            self.rejected.append(str(exc))
            return web.Response(status=400, text="bad signature")
        self.raw.append((payload, dict(request.headers)))
        self.events.append(event)
        return web.Response(text="ok")

    def of(self, object_id: str) -> list[str]:
        """The types of the verified events about `object_id`, in arrival order."""
        return [event.type for event in self.events if event.data.object.id == object_id]

    async def wait_for(self, object_id: str, *types: str) -> list[stripe.Event]:
        """The events of these types about `object_id`, once all arrived (in any order)."""
        await eventually(lambda: set(types) <= set(self.of(object_id)),
                         message=f"events {types} for {object_id}")
        return [event for event in self.events
                if event.data.object.id == object_id and event.type in types]


MakeReceiver = Callable[..., Awaitable[Receiver]]
MakeStandIn = Callable[..., Awaitable[StandIn]]


@pytest.fixture
def make_receiver(aiohttp_server: AiohttpServer) -> MakeReceiver:
    async def make(*, failures: int = 0, secret: str = WEBHOOK_SECRET) -> Receiver:
        receiver = Receiver(secret=secret, failures=failures)
        app = web.Application()
        app.router.add_post("/webhooks/stripe", receiver.handle)
        server = await aiohttp_server(app, host="127.0.0.1")
        receiver.url = str(server.make_url("/webhooks/stripe"))
        return receiver

    return make


@pytest.fixture
def make_standin(aiohttp_server: AiohttpServer) -> MakeStandIn:
    """`await make_standin(receiver)`: a stand-in delivering every event to `receiver`;
    keyword arguments are more `STRIPE_STANDIN_*` settings (without the prefix)."""

    async def make(*receivers: Receiver, **settings: str) -> StandIn:
        env = {"LOG_LEVEL": "WARNING", **FAST_RETRIES,
               **{f"STRIPE_STANDIN_{name.upper()}": value for name, value in settings.items()}}
        if receivers:
            env["STRIPE_STANDIN_WEBHOOK_URL"] = ",".join(r.url for r in receivers)
            env["STRIPE_STANDIN_WEBHOOK_SECRET"] = WEBHOOK_SECRET
        app = create_app(load_config(Config, env))
        server = await aiohttp_server(app, host="127.0.0.1")
        return StandIn(str(server.make_url("")).rstrip("/"), app)

    return make


@pytest.fixture
async def receiver(make_receiver: MakeReceiver) -> Receiver:
    return await make_receiver()


@pytest.fixture
async def standin(make_standin: MakeStandIn, receiver: Receiver) -> StandIn:
    return await make_standin(receiver)


@pytest.fixture
def client(standin: StandIn) -> stripe.StripeClient:
    return standin.client()


@pytest.fixture
async def async_client(standin: StandIn) -> AsyncIterator[stripe.StripeClient]:
    """The SDK's async client (over aiohttp), its API base the stand-in."""
    http_client = stripe.AIOHTTPClient()
    yield stripe.StripeClient(API_KEY, base_addresses={"api": standin.url},
                              http_client=http_client)
    await http_client.close_async()


async def sync(call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """A blocking SDK call, run in a thread so that the stand-in (on this loop) can answer."""
    return await asyncio.to_thread(call, *args, **kwargs)


# Intents that a server confirms itself: no redirect-based payment methods, so no return_url.
CARD_ONLY: dict[str, Any] = {"automatic_payment_methods": {"enabled": True,
                                                           "allow_redirects": "never"}}
