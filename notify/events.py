"""The events notify consumes and the data it needs of each, checked before anything is sent.

Data that lacks what a message needs (no bookingId, an invalid e-mail...) is malformed: `parse`
raises MalformedEventError, which the consumer runtime sends to the dead-letter queue at once
(reason `malformed`) instead of retrying what can never succeed. Unknown fields are ignored:
producers may add fields without breaking notify.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated

from email_validator import EmailNotValidError, validate_email
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)
from pydantic.alias_generators import to_camel

from common.bus import Event, MalformedEventError
from common.http.fields import normalise_phone

BOOKING_CONFIRMED = "booking.confirmed"
BOOKING_CANCELLED = "booking.cancelled"
BOOKING_COMPLETED = "booking.completed"
BOOKING_UPDATED = "booking.updated"
PAYMENT_SUCCEEDED = "payment.succeeded"
PAYMENT_FAILED = "payment.failed"
PAYMENT_REFUNDED = "payment.refunded"
AVAILABILITY_LOW = "tour.availability.low"

def _email(value: str) -> str:
    try:
        return validate_email(value.strip(), check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from None


def normal_phone(value: object) -> str | None:
    """A number in international format, or None: a missing or odd phone must not cost the
    traveller the e-mail, so it is treated as no phone at all."""
    if not isinstance(value, str):
        return None
    try:
        return normalise_phone(value)
    except ValueError:
        return None


Email = Annotated[str, StringConstraints(max_length=254), AfterValidator(_email)]
Phone = Annotated[str | None, BeforeValidator(normal_phone)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{3}$"),
                     AfterValidator(str.upper)]
Amount = Annotated[int, Field(ge=0, strict=True)]


class EventData(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore",
                              frozen=True)


class BookingData(EventData):
    """`booking.*`: the booking as it stands after the change, with its contact."""

    booking_id: uuid.UUID
    tour_id: uuid.UUID
    tour_title: Text
    tour_date: date
    user_id: uuid.UUID
    user_name: str | None = None
    user_email: Email
    user_phone: Phone = None
    participants: int = Field(ge=1)
    total_amount: Amount
    currency: Currency
    status: str
    payment_status: str | None = None
    cancelled_at: datetime | None = None
    cancellation_reason: str | None = None


class BookingBefore(EventData):
    """What a changed booking's fields were, of those `changed` names."""

    participants: int | None = Field(default=None, ge=1)
    total_amount: Amount | None = None


class BookingUpdatedData(BookingData):
    """`booking.updated`: a pending booking changed; `changed` names the fields that moved
    (`participants`, `totalAmount`, `userName`, `userEmail`, `userPhone`, `specialRequests`)."""

    special_requests: str | None = None
    changed: list[str] = Field(min_length=1)
    previous: BookingBefore = BookingBefore()


class PaymentData(EventData):
    """`payment.*`: one payment attempt; `refundedAmount` is the total refunded so far."""

    payment_id: uuid.UUID
    booking_id: uuid.UUID
    user_id: uuid.UUID
    amount: Amount
    currency: Currency
    status: str | None = None
    refunded_amount: Amount = 0
    failure_message: str | None = None
    payment_intent_id: str | None = None


class RefundData(PaymentData):
    refunded_amount: Amount = Field(gt=0)


class AvailabilityData(EventData):
    """`tour.availability.low`: a departure's free seats fell to the threshold or under."""

    tour_id: uuid.UUID
    departure_id: uuid.UUID | None = None
    tour_title: Text
    tour_date: date
    available_seats: int = Field(ge=0)
    capacity: int = Field(ge=1)
    threshold: int = Field(ge=0)


Data = BookingData | PaymentData | AvailabilityData

MODELS: dict[str, type[BookingData] | type[PaymentData] | type[AvailabilityData]] = {
    BOOKING_CONFIRMED: BookingData,
    BOOKING_CANCELLED: BookingData,
    BOOKING_COMPLETED: BookingData,
    BOOKING_UPDATED: BookingUpdatedData,
    PAYMENT_SUCCEEDED: PaymentData,
    PAYMENT_FAILED: PaymentData,
    PAYMENT_REFUNDED: RefundData,
    AVAILABILITY_LOW: AvailabilityData,
}


def parse(event: Event) -> Data:
    """The event's data as its type needs it; MalformedEventError says what is wrong."""
    model = MODELS.get(event.event_type)
    if model is None:
        raise MalformedEventError(f"notify handles no {event.event_type!r} events")
    try:
        return model.model_validate(event.data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or 'data'}: {error['msg']}"
            for error in exc.errors(include_url=False, include_input=False))
        raise MalformedEventError(f"{event.event_type} data: {problems}") from None


def ordering_key(event: Event) -> str:
    """The consumer's key function: one booking's events (and one departure's alerts) are
    handled in order. It reads the ids as they come; the handler checks the data (`parse`)."""
    if event.event_type == AVAILABILITY_LOW:
        return f"departure:{event.data.get('tourId')}:{event.data.get('tourDate')}"
    return f"booking:{event.data.get('bookingId')}"

