"""Every call booking makes to another service: catalog's seat holds, payments' amount of a
pending booking, auth's contact details; each through `common.http.upstream` (a pooled session, a
timeout and a circuit breaker), its answers turned into booking's types and errors."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import aiohttp
import structlog

from booking.config import Config
from booking.errors import (
    CatalogRefused,
    CatalogUnavailable,
    PaymentInProgress,
    PaymentsUnanswered,
    PaymentsUnavailable,
)
from common.auth import SERVICE_HEADER, Identity
from common.errors import AppError
from common.http.upstream import Upstream, UpstreamDown, upstream_breaker

log = structlog.get_logger(__name__)


# -- catalog: the seats a booking holds ---------------------------------------------------------


@dataclass(frozen=True)
class Hold:
    """Seats catalog holds for one booking, and the tour facts booking keeps from it."""

    booking_id: uuid.UUID
    tour_id: uuid.UUID
    departure_id: uuid.UUID
    tour_date: date
    seats: int
    state: str
    expires_at: datetime
    tour_title: str
    unit_price: int
    currency: str

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Hold:
        return cls(
            booking_id=uuid.UUID(body["bookingId"]), tour_id=uuid.UUID(body["tourId"]),
            departure_id=uuid.UUID(body["departureId"]),
            tour_date=date.fromisoformat(body["tourDate"]), seats=int(body["seats"]),
            state=str(body["state"]),
            expires_at=datetime.fromisoformat(body["expiresAt"]),
            tour_title=str(body["tourTitle"]), unit_price=int(body["unitPrice"]),
            currency=str(body["currency"]))


# Catalog says `seats`; booking's clients sent `participants`. Their error details use our names.
_FIELD_NAMES = {"seats": "participants"}
_CATALOG_REFUSALS = frozenset({400, 404, 409, 422})


class CatalogClient(Upstream):
    """catalog's `/internal/holds`. Its refusals (400, 404, 409, 422) are the traveller's business
    and pass through unchanged (`CatalogRefused`), never opening the circuit; catalog down, slow,
    failing or refusing our credential is booking's problem: `CatalogUnavailable` (503)."""

    def __init__(self, session: aiohttp.ClientSession, config: Config) -> None:
        super().__init__(session, config.catalog_url, upstream_breaker(
            "catalog", config.catalog_timeout, config.breaker_reset_timeout),
            headers={SERVICE_HEADER: config.internal_tokens[0]})

    async def hold(self, *, booking_id: uuid.UUID, tour_id: uuid.UUID, tour_date: date,
                   seats: int, expires_at: datetime) -> Hold:
        """Hold `seats` for the booking; the same booking id again returns the same hold."""
        body = {"bookingId": str(booking_id), "tourId": str(tour_id),
                "tourDate": tour_date.isoformat(), "seats": seats,
                "expiresAt": expires_at.isoformat().replace("+00:00", "Z")}
        status, answer = await self._call("POST", "/internal/holds", body)
        if status in (200, 201):
            return self._hold(answer)
        raise self._refusal(status, answer)

    async def resize(self, booking_id: uuid.UUID, seats: int) -> Hold:
        """The booking holds `seats` from now on (held, or booked once paid); the same size
        again changes nothing. Refusals (not enough seats, a released hold) pass through."""
        status, answer = await self._call("POST", f"/internal/holds/{booking_id}/resize",
                                          {"seats": seats})
        if status == 200:
            return self._hold(answer)
        raise self._refusal(status, answer)

    async def release(self, booking_id: uuid.UUID) -> Hold | None:
        """Give the booking's seats back; None when catalog never held any for it."""
        status, answer = await self._call("POST", f"/internal/holds/{booking_id}/release")
        if status == 200:
            return self._hold(answer)
        if status == 404:
            return None
        raise self._refusal(status, answer)

    async def _call(self, method: str, path: str,
                    body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        try:
            status, answer = await self.request(method, path, json=body)
        except UpstreamDown as exc:
            if exc.retry_after is None:
                log.warning("catalog_unreachable", method=method, path=path, error=str(exc))
            raise CatalogUnavailable(headers=exc.headers) from None
        answer = answer or {}
        if status >= 500:
            log.warning("catalog_failed", method=method, path=path, status=status,
                        error=answer.get("error"))
            raise CatalogUnavailable()
        return status, answer

    def _hold(self, answer: dict[str, Any]) -> Hold:
        try:
            return Hold.from_json(answer)
        except (KeyError, TypeError, ValueError) as exc:
            log.error("catalog_answer_invalid", error=repr(exc))
            raise CatalogUnavailable() from None

    def _refusal(self, status: int, answer: dict[str, Any]) -> AppError:
        if status not in _CATALOG_REFUSALS or not isinstance(answer.get("error"), str):
            # 401/403: our service credential is wrong; the client can do nothing about it.
            log.error("catalog_refused_booking", status=status, error=answer.get("error"))
            return CatalogUnavailable()
        return CatalogRefused(status, answer["error"], str(answer.get("message") or ""),
                              _rename_fields(answer.get("details")))


def _rename_fields(details: Any) -> Any:
    if not isinstance(details, list):
        return details
    return [{**item, "field": _FIELD_NAMES.get(item["field"], item["field"])}
            if isinstance(item, dict) and isinstance(item.get("field"), str) else item
            for item in details]


# -- payments: the amount a pending booking's open payment asks ---------------------------------


@dataclass(frozen=True)
class AmountSet:
    """What payments did: `none` (no open intent), `updated` or `replaced` (the open intent now
    asks the new amount)."""

    booking_id: uuid.UUID
    amount: int
    currency: str
    payment_intent_id: str | None
    action: str

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> AmountSet:
        intent = body.get("paymentIntentId")
        return cls(booking_id=uuid.UUID(body["bookingId"]), amount=int(body["amount"]),
                   currency=str(body["currency"]),
                   payment_intent_id=None if intent is None else str(intent),
                   action=str(body["action"]))


class PaymentsClient(Upstream):
    """payments' `PUT /internal/payments/booking/{bookingId}/amount`: a pending booking's new
    total reaches its open PaymentIntent before it can be paid. Payments' 4xx answers (409
    PAYMENT_IN_PROGRESS) are healthy answers and never open the circuit."""

    def __init__(self, session: aiohttp.ClientSession, config: Config) -> None:
        super().__init__(session, config.payments_url, upstream_breaker(
            "payments", config.payments_timeout, config.breaker_reset_timeout),
            headers={SERVICE_HEADER: config.internal_tokens[0]}, forward_correlation_id=True)

    async def set_amount(self, booking_id: uuid.UUID, amount: int, currency: str) -> AmountSet:
        """The booking's open intent, if any, asks `amount` from now on; the same amount again
        changes nothing. Raises PaymentInProgress when an intent of the booking is processing
        or has succeeded, PaymentsUnavailable when payments (or Stripe behind it) cannot say."""
        path = f"/internal/payments/booking/{booking_id}/amount"
        try:
            status, answer = await self.request("PUT", path,
                                                json={"amount": amount, "currency": currency})
        except UpstreamDown as exc:
            if exc.retry_after is not None:  # the open circuit let no call through
                raise PaymentsUnavailable(headers=exc.headers) from None
            log.warning("payments_unreachable", bookingId=str(booking_id), error=str(exc))
            raise PaymentsUnanswered() from None
        answer = answer or {}
        if status == 200:
            try:
                return AmountSet.from_json(answer)
            except (KeyError, TypeError, ValueError) as exc:
                log.error("payments_answer_invalid", bookingId=str(booking_id), error=repr(exc))
                raise PaymentsUnanswered() from None
        if status == 409 and answer.get("error") == PaymentInProgress.code:
            raise PaymentInProgress()
        # 503: Stripe cannot be reached; anything else (our credential refused, a 5xx) is ours
        # to fix, not the traveller's.
        (log.warning if status == 503 else log.error)(
            "payments_refused_amount", bookingId=str(booking_id), status=status,
            error=answer.get("error"))
        raise PaymentsUnavailable()


# -- auth: who to contact about a booking -------------------------------------------------------


@dataclass(frozen=True)
class Contact:
    name: str
    email: str
    phone: str | None


def fallback_contact(identity: Identity) -> Contact:
    """The token's e-mail, and its local part as the name (better than no name in an e-mail)."""
    return Contact(name=identity.email.partition("@")[0] or identity.email,
                   email=identity.email, phone=None)


class AuthClient(Upstream):
    """auth's `/internal/users/{id}`: the account's name and phone, for a booking whose request
    names no contact. A convenience, never a reason to refuse a booking: when auth is slow, down
    or does not know the user, the token's e-mail is the contact and the failure is logged."""

    def __init__(self, session: aiohttp.ClientSession, config: Config) -> None:
        super().__init__(session, config.auth_url, upstream_breaker(
            "auth", config.auth_timeout, config.breaker_reset_timeout),
            headers={SERVICE_HEADER: config.internal_tokens[0]})

    async def contact(self, identity: Identity) -> Contact:
        try:
            status, user = await self.request("GET", f"/internal/users/{identity.user_id}")
        except UpstreamDown as exc:
            return _without_lookup(identity, str(exc))
        if status != 200 or user is None:
            return _without_lookup(identity, f"auth answered {status}")
        name = " ".join(str(user[part]) for part in ("firstName", "lastName") if user.get(part))
        phone = user.get("phone")
        return Contact(name=name or fallback_contact(identity).name, email=identity.email,
                       phone=phone if isinstance(phone, str) and phone else None)


def _without_lookup(identity: Identity, error: str) -> Contact:
    log.warning("contact_lookup_failed", error=error)
    return fallback_contact(identity)
