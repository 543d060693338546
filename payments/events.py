"""The events payments publishes (`payment.succeeded`, `payment.failed`, `payment.refunded`) and
the data of the `booking.cancelled` events it consumes (the handler is in `cancellations`)."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from common.bus import Event

SUCCEEDED, FAILED, REFUNDED = "payment.succeeded", "payment.failed", "payment.refunded"


def payment_event(event_type: str, payment: asyncpg.Record) -> Event:
    """The event of a payment's change, with the data booking and notify read: booking keys its
    handling on `bookingId` and records `refundedAmount` as the total refunded so far."""
    return Event.new(event_type, payment_event_data(payment))


def payment_event_data(payment: asyncpg.Record) -> dict[str, Any]:
    return {
        "paymentId": str(payment["id"]),
        "bookingId": str(payment["booking_id"]),
        "userId": str(payment["user_id"]),
        "amount": payment["amount"],
        "currency": payment["currency"],
        "status": payment["status"],
        "refundedAmount": payment["refunded_amount"],
        "failureMessage": payment["failure_message"],
        "paymentIntentId": payment["stripe_payment_intent_id"],
    }


class CancelledBooking(BaseModel):
    """The `data` of `booking.cancelled` that payments needs. `paymentStatus` is the booking's
    when it was cancelled: `paid` (or a refund of it) means it had been confirmed."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    booking_id: uuid.UUID
    payment_status: str | None = None
    cancellation_reason: str | None = None


def cancelled_booking(event: Event) -> CancelledBooking:
    """Raises ValueError (a pydantic.ValidationError) when the data has no valid bookingId."""
    return CancelledBooking.model_validate(event.data)
