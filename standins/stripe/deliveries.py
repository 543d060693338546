"""Webhook deliveries as Stripe makes them: each event POSTed as JSON to every endpoint that wants
it, signed `Stripe-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<payload>">` with the
endpoint's secret, and retried with exponential backoff until a 2xx or the last attempt.
Deliveries run concurrently, in no guaranteed order, as Stripe's do."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import structlog

from standins.stripe.webhook_endpoints import Endpoints

Obj = dict[str, Any]
log = structlog.get_logger("stripe.webhooks")
USER_AGENT = "Stripe/1.0 (+https://stripe.com/docs/webhooks)"


@dataclass(frozen=True)
class Policy:
    attempts: int = 10
    backoff: float = 1.0
    """Seconds before the first retry; each retry waits twice as long, up to `backoff_max`."""
    backoff_max: float = 60.0
    timeout: float = 10.0
    """Seconds an endpoint has to answer one attempt."""

    def delay(self, attempt: int) -> float:
        """The wait after failed attempt number `attempt` (1, 2...)."""
        return float(min(self.backoff * 2 ** (attempt - 1), self.backoff_max))


def sign(payload: bytes, secret: str, timestamp: int) -> str:
    """The `Stripe-Signature` header value for `payload`, as Stripe computes it."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


class Deliveries:
    def __init__(self, endpoints: Endpoints, policy: Policy) -> None:
        self._endpoints = endpoints
        self._policy = policy
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def open(self) -> None:
        self._session = aiohttp.ClientSession()

    async def close(self) -> None:
        """Stop: deliveries still waiting for a retry are dropped (the state is in memory)."""
        if self._tasks:
            log.info("webhook_deliveries_dropped", count=len(self._tasks))
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()

    @property
    def in_flight(self) -> int:
        """Deliveries not finished yet: being sent, or waiting for their next attempt."""
        return len(self._tasks)

    def dispatch(self, event: Obj) -> int:
        """Start delivering `event`; how many endpoints it goes to (its `pending_webhooks`)."""
        targets = self._endpoints.wanting(event["type"])
        if self._session is None:
            return 0
        for endpoint in targets:
            task = asyncio.get_running_loop().create_task(self._deliver(event, endpoint["id"]))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return len(targets)

    async def _deliver(self, event: Obj, endpoint_id: str) -> None:
        attempts = self._policy.attempts
        for attempt in range(1, attempts + 1):
            endpoint = self._endpoints.endpoints.get(endpoint_id)
            if endpoint is None or endpoint["status"] != "enabled":
                log.info("webhook_endpoint_gone", eventId=event["id"], endpoint=endpoint_id)
                return
            context = {"eventId": event["id"], "eventType": event["type"],
                       "url": endpoint["url"], "attempt": attempt}
            problem = await self._post(event, endpoint)
            if problem is None:
                event["pending_webhooks"] -= 1
                log.info("webhook_delivered", **context)
                return
            if attempt == attempts:
                log.warning("webhook_abandoned", problem=problem, **context)
                return
            delay = self._policy.delay(attempt)
            log.info("webhook_failed", problem=problem, retryIn=delay, **context)
            await asyncio.sleep(delay)

    async def _post(self, event: Obj, endpoint: Obj) -> str | None:
        """None once the endpoint answered 2xx, else what went wrong. Redirects are failures,
        as with Stripe."""
        assert self._session is not None
        # Stripe sends the event pretty-printed; the signature covers these exact bytes.
        payload = json.dumps(event, indent=2, ensure_ascii=False).encode()
        headers = {
            "Content-Type": "application/json; charset=utf-8", "User-Agent": USER_AGENT,
            "Accept": "*/*; q=0.5, application/xml", "Cache-Control": "no-cache",
            "Stripe-Signature": sign(payload, self._endpoints.secret(endpoint["id"]),
                                     int(time.time())),
        }
        try:
            async with self._session.post(
                    endpoint["url"], data=payload, headers=headers, allow_redirects=False,
                    timeout=aiohttp.ClientTimeout(total=self._policy.timeout)) as response:
                if 200 <= response.status < 300:
                    return None
                return f"answered {response.status}"
        except (aiohttp.ClientError, TimeoutError) as exc:
            return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
