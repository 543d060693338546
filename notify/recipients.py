"""Who is told, and how they want to be told: a traveller's opt-ins and account phone from auth
(`GET /internal/users/{id}`), and the booking a payment is about from booking
(`GET /internal/bookings/{id}`), whose contact receives the payment's e-mail.

An account auth no longer knows (404) gets the defaults of a new account: e-mail on, SMS off.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import structlog

from notify.events import normal_phone
from notify.upstream import InternalApi, UpstreamUnavailable

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Preferences:
    email: bool
    sms: bool
    phone: str | None  # the account's own number, used when the booking names none


DEFAULT_PREFERENCES = Preferences(email=True, sms=False, phone=None)


@dataclass(frozen=True)
class Booking:
    """What payment messages say about the booking, and where they go."""

    id: uuid.UUID
    user_id: uuid.UUID
    tour_title: str
    tour_date: date
    participants: int
    total_amount: int
    currency: str
    status: str
    payment_status: str
    expires_at: datetime
    cancellation_reason: str | None
    contact_name: str | None
    contact_email: str
    contact_phone: str | None

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Booking:
        contact = body["contact"]
        return cls(
            id=uuid.UUID(body["id"]), user_id=uuid.UUID(body["userId"]),
            tour_title=str(body["tourTitle"]), tour_date=date.fromisoformat(body["tourDate"]),
            participants=int(body["participants"]), total_amount=int(body["totalAmount"]),
            currency=str(body["currency"]), status=str(body["status"]),
            payment_status=str(body["paymentStatus"]),
            expires_at=datetime.fromisoformat(body["expiresAt"]),
            cancellation_reason=body.get("cancellationReason"),
            contact_name=contact.get("name"), contact_email=str(contact["email"]),
            contact_phone=normal_phone(contact.get("phone")))


class Accounts:
    def __init__(self, api: InternalApi) -> None:
        self.api = api

    async def preferences(self, user_id: uuid.UUID) -> Preferences:
        body = await self.api.get(f"/internal/users/{user_id}")
        if body is None:
            log.warning("account_unknown", userId=str(user_id), using="defaults")
            return DEFAULT_PREFERENCES
        try:
            chosen = body["notificationPreferences"]
            return Preferences(email=bool(chosen["email"]), sms=bool(chosen["sms"]),
                               phone=normal_phone(body.get("phone")))
        except (KeyError, TypeError) as exc:
            raise UpstreamUnavailable(f"auth's answer has no preferences: {exc!r}") from None


class Bookings:
    def __init__(self, api: InternalApi) -> None:
        self.api = api

    async def get(self, booking_id: uuid.UUID) -> Booking:
        body = await self.api.get(f"/internal/bookings/{booking_id}")
        if body is None:
            # payments only pays bookings booking knows: this is a fault somewhere, for an
            # operator to see in the dead-letter queue once the retries are spent.
            raise UpstreamUnavailable(f"booking does not know booking {booking_id}")
        try:
            return Booking.from_json(body)
        except (KeyError, TypeError, ValueError) as exc:
            raise UpstreamUnavailable(f"booking's answer is not a booking: {exc!r}") from None
