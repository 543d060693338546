"""Stripe, as payments uses it: the official SDK's `StripeClient` on its aiohttp HTTP client (async,
on our pooled session, a timeout on every try, network retries), its answers read by the models
of `stripe_objects`, and its failures into two errors: Stripe unreachable (retry later) or Stripe
refusing the request (it will not change its mind).

`STRIPE_API_BASE` points the same SDK at another server (the local stand-in in development and
tests); unset, it talks to the real Stripe.
"""

from __future__ import annotations

import time
from typing import Any, TypeVar

import aiohttp
import stripe
import structlog
from pydantic import ValidationError

from common.errors import AppError, Unavailable
from payments.stripe_objects import Intent, Refund, StripeObject

log = structlog.get_logger(__name__)

T = TypeVar("T", bound=StripeObject)


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


def _signed_at(header: str) -> int:
    """The `t=` of a header the SDK has verified (it read the same item)."""
    return int(next(item.split("=", 2)[1] for item in header.split(",")
                    if item.split("=", 2)[0] == "t"))


def _read(model: type[T], operation: str, data: dict[str, Any]) -> T:
    """Stripe's answer as the model reads it; an answer it cannot read is Stripe failing."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        log.error("stripe_answer_invalid", operation=operation,
                  errors=exc.errors(include_url=False, include_input=False))
        raise StripeUnavailable() from None


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
        return _read(Intent, "create_intent", await self._call(
            "create_intent", self._client.v1.payment_intents.create_async(
                params, {"idempotency_key": idempotency_key})))

    async def retrieve_intent(self, intent_id: str) -> Intent:
        return _read(Intent, "retrieve_intent", await self._call(
            "retrieve_intent", self._client.v1.payment_intents.retrieve_async(intent_id)))

    async def update_intent_amount(self, intent_id: str, *, amount: int,
                                   currency: str) -> Intent:
        """The amount an intent asks. Stripe allows it while the intent awaits its payment
        (requires_payment_method, requires_confirmation, requires_action) and refuses it
        otherwise (`payment_intent_unexpected_state`)."""
        params: Any = {"amount": amount, "currency": currency.lower()}
        return _read(Intent, "update_intent", await self._call(
            "update_intent", self._client.v1.payment_intents.update_async(intent_id, params)))

    async def cancel_intent(self, intent_id: str) -> Intent:
        """Stripe refuses (`payment_intent_unexpected_state`) when the intent already succeeded,
        is processing, or is canceled: the caller then reads the intent to learn which."""
        return _read(Intent, "cancel_intent", await self._call(
            "cancel_intent", self._client.v1.payment_intents.cancel_async(intent_id)))

    async def create_refund(self, *, payment_intent: str, amount: int, reason: str | None,
                            metadata: dict[str, str], idempotency_key: str) -> Refund:
        params: Any = {"payment_intent": payment_intent, "amount": amount, "metadata": metadata}
        if reason is not None:
            params["reason"] = reason
        return _read(Refund, "create_refund", await self._call(
            "create_refund", self._client.v1.refunds.create_async(
                params, {"idempotency_key": idempotency_key})))

    async def list_refunds(self, payment_intent: str) -> list[Refund]:
        page = await self._call("list_refunds", self._client.v1.refunds.list_async(
            {"payment_intent": payment_intent, "limit": 100}))
        return [_read(Refund, "list_refunds", item) for item in page.get("data", [])]

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
