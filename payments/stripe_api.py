"""Stripe, as payments uses it: the official SDK's `StripeClient` on its aiohttp HTTP client (async,
on our pooled session, a timeout on every try, network retries), its answers turned into small
typed records, and its failures into two errors: Stripe unreachable (retry later) or Stripe
refusing the request (it will not change its mind).

`STRIPE_API_BASE` points the same SDK at another server (the local stand-in in development and
tests); unset, it talks to the real Stripe.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import stripe
import structlog

from common.errors import AppError, Unavailable

log = structlog.get_logger(__name__)


class StripeUnavailable(Unavailable):
    """Stripe could not be reached, timed out, failed (5xx), rate-limited us or refused our key:
    the outcome of the call is unknown or the call can be tried again later."""

    code = "PAYMENT_PROVIDER_UNAVAILABLE"
    message = "The payment provider cannot be reached right now; try again shortly"


class StripeRefused(AppError):
    """Stripe answered and refused the request (4xx): the same request will be refused again."""

    status, code = 502, "PAYMENT_PROVIDER_REFUSED"
    message = "The payment provider refused the request"

    def __init__(self, message: str, *, stripe_code: str | None) -> None:
        super().__init__(message, details={"stripeCode": stripe_code} if stripe_code else None)
        self.stripe_code = stripe_code


class BadSignature(Exception):
    """A webhook's body and signature do not check out; the message says why (for the log)."""


def _id_of(value: Any) -> str | None:
    """An expandable field: the id string, or the expanded object's id."""
    if isinstance(value, Mapping):
        return str(value["id"]) if value.get("id") else None
    return str(value) if value else None


@dataclass(frozen=True)
class Intent:
    """What payments needs of a PaymentIntent, from an API answer or a webhook's snapshot."""

    id: str
    status: str
    amount: int
    currency: str
    metadata: Mapping[str, str] = field(default_factory=dict)
    client_secret: str | None = field(default=None, repr=False)
    failure_message: str | None = None
    latest_charge: str | None = None
    payment_method: str | None = None

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Intent:
        error = obj.get("last_payment_error")
        failure = None
        if isinstance(error, Mapping):
            failure = str(error.get("message") or error.get("decline_code")
                          or error.get("code") or "The payment failed")
        return cls(id=str(obj["id"]), status=str(obj["status"]), amount=int(obj["amount"]),
                   currency=str(obj["currency"]).upper(),
                   metadata={str(k): str(v) for k, v in (obj.get("metadata") or {}).items()},
                   client_secret=obj.get("client_secret"), failure_message=failure,
                   latest_charge=_id_of(obj.get("latest_charge")),
                   payment_method=_id_of(obj.get("payment_method")))


@dataclass(frozen=True)
class Refund:
    """What payments needs of a Refund."""

    id: str
    amount: int
    status: str
    payment_intent: str | None
    reason: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    failure_reason: str | None = None

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Refund:
        return cls(id=str(obj["id"]), amount=int(obj["amount"]), status=str(obj["status"]),
                   payment_intent=_id_of(obj.get("payment_intent")), reason=obj.get("reason"),
                   metadata={str(k): str(v) for k, v in (obj.get("metadata") or {}).items()},
                   failure_reason=obj.get("failure_reason"))


@dataclass(frozen=True)
class Charge:
    """A charge as `charge.refunded` carries it: how much of it is refunded, and the refunds
    when the payload includes them (older API versions do; newer ones leave them out)."""

    id: str
    payment_intent: str | None
    amount_refunded: int
    refunds: tuple[Refund, ...]

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Charge:
        listed = obj.get("refunds")
        refunds: tuple[Refund, ...] = ()
        if isinstance(listed, Mapping) and isinstance(listed.get("data"), list):
            refunds = tuple(Refund.from_json(r) for r in listed["data"])
        return cls(id=str(obj["id"]), payment_intent=_id_of(obj.get("payment_intent")),
                   amount_refunded=int(obj.get("amount_refunded") or 0), refunds=refunds)


def _signed_at(header: str) -> int:
    """The `t=` of a header the SDK has verified (it read the same item)."""
    return int(next(item.split("=", 2)[1] for item in header.split(",")
                    if item.split("=", 2)[0] == "t"))


def as_json(obj: Any) -> dict[str, Any]:
    """An SDK object as plain JSON data."""
    data: dict[str, Any] = obj.to_dict()
    return data


class StripeApi:
    """The calls payments makes. Every POST carries an idempotency key: ours where a retry must
    find the first call's result (intents, refunds), else the SDK's own for its network retries.
    """

    def __init__(self, client: stripe.StripeClient, webhook_secret: str,
                 webhook_tolerance: int) -> None:
        self._client = client
        self._webhook_secret = webhook_secret
        self._webhook_tolerance = webhook_tolerance

    @classmethod
    def build(cls, session: aiohttp.ClientSession, *, secret_key: str, api_base: str | None,
              timeout: float, max_retries: int, webhook_secret: str,
              webhook_tolerance: int) -> StripeApi:
        http_client = stripe.AIOHTTPClient(session=session,
                                           timeout=aiohttp.ClientTimeout(total=timeout))
        client = stripe.StripeClient(
            secret_key, http_client=http_client, max_network_retries=max_retries,
            base_addresses={"api": api_base.rstrip("/")} if api_base else None)
        return cls(client, webhook_secret, webhook_tolerance)

    async def create_intent(self, *, amount: int, currency: str, metadata: dict[str, str],
                            description: str, idempotency_key: str) -> Intent:
        params: Any = {"amount": amount, "currency": currency.lower(), "metadata": metadata,
                       "description": description,
                       "automatic_payment_methods": {"enabled": True}}
        return Intent.from_json(await self._call(
            "create_intent", self._client.v1.payment_intents.create_async(
                params, {"idempotency_key": idempotency_key})))

    async def retrieve_intent(self, intent_id: str) -> Intent:
        return Intent.from_json(await self._call(
            "retrieve_intent", self._client.v1.payment_intents.retrieve_async(intent_id)))

    async def cancel_intent(self, intent_id: str) -> Intent:
        """Stripe refuses (`payment_intent_unexpected_state`) when the intent already succeeded,
        is processing, or is canceled: the caller then reads the intent to learn which."""
        return Intent.from_json(await self._call(
            "cancel_intent", self._client.v1.payment_intents.cancel_async(intent_id)))

    async def create_refund(self, *, payment_intent: str, amount: int, reason: str | None,
                            metadata: dict[str, str], idempotency_key: str) -> Refund:
        params: Any = {"payment_intent": payment_intent, "amount": amount, "metadata": metadata}
        if reason is not None:
            params["reason"] = reason
        return Refund.from_json(await self._call(
            "create_refund", self._client.v1.refunds.create_async(
                params, {"idempotency_key": idempotency_key})))

    async def list_refunds(self, payment_intent: str) -> list[Refund]:
        page = await self._call("list_refunds", self._client.v1.refunds.list_async(
            {"payment_intent": payment_intent, "limit": 100}))
        return [Refund.from_json(item) for item in page.get("data", [])]

    async def ping(self) -> None:
        """Health check: Stripe answers, and accepts our key for what we use it for."""
        await self._call("ping", self._client.v1.payment_intents.list_async({"limit": 1}))

    def verify_webhook(self, payload: bytes, signature: str | None) -> str:
        """The body as text, once its signature (an HMAC-SHA256 of the raw body with our
        endpoint's secret) and its timestamp (within the tolerance, behind our clock or ahead of
        it) check out; raises BadSignature otherwise."""
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError:  # Stripe signs JSON text: these bytes were never signed
            raise BadSignature("The body is not UTF-8 text") from None
        try:
            stripe.WebhookSignature.verify_header(text, signature, self._webhook_secret,
                                                  tolerance=self._webhook_tolerance)
        except stripe.SignatureVerificationError as exc:
            raise BadSignature(str(exc).splitlines()[0][:200]) from None
        # The SDK bounds a signature's age only: one dated ahead would be replayable until then.
        signed_at = _signed_at(signature or "")
        if signed_at > time.time() + self._webhook_tolerance:
            raise BadSignature(f"Timestamp ahead of the tolerance zone ({signed_at})")
        return text

    async def _call(self, operation: str, call: Any) -> dict[str, Any]:
        try:
            return as_json(await call)
        except (stripe.APIConnectionError, aiohttp.ClientError, TimeoutError) as exc:
            # The SDK already retried; the request may or may not have reached Stripe.
            log.warning("stripe_unreachable", operation=operation,
                        error=str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            raise StripeUnavailable() from None
        except (stripe.AuthenticationError, stripe.PermissionError) as exc:
            log.error("stripe_refused_our_key", operation=operation, error=exc.user_message)
            raise StripeUnavailable() from None
        except stripe.RateLimitError:
            log.warning("stripe_rate_limited", operation=operation)
            raise StripeUnavailable(headers={"Retry-After": "2"}) from None
        except stripe.StripeError as exc:
            status = exc.http_status or 500
            # 409: another request with this idempotency key is still running at Stripe (the
            # SDK retried already); its outcome is not known yet, as with a 5xx.
            if status >= 500 or status == 409:
                log.warning("stripe_failed", operation=operation, status=status,
                            error=exc.user_message)
                raise StripeUnavailable() from None
            log.info("stripe_refused", operation=operation, status=status, code=exc.code,
                     error=exc.user_message)
            raise StripeRefused(exc.user_message or "refused", stripe_code=exc.code) from None
