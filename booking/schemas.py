"""booking's wire models: what requests must contain and what responses look like."""

from __future__ import annotations

import re
import unicodedata
import uuid
from datetime import date, datetime
from typing import Annotated, Self

import asyncpg
from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from booking.lifecycle import amount_paid, transitions_for
from booking.states import PaymentStatus, Status
from common.auth import Identity
from common.http import Schema
from common.http.fields import Email, Phone

# The tour's maxGroupSize, which catalog checks, is the real limit; this is only the largest one
# catalog accepts, so that booking never refuses a group the tour takes.
MAX_PARTICIPANTS = 10_000
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def iso_date(value: object) -> object:
    """`YYYY-MM-DD` and nothing else: a time with an offset may name another day in UTC and an
    epoch is not a date, so neither is guessed into one."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and _ISO_DATE.fullmatch(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise ValueError("must be a date as YYYY-MM-DD")


def no_control_characters(value: str) -> str:
    # A name goes into e-mail headers and SMS: a line break there could add recipients.
    if any(unicodedata.category(char) == "Cc" for char in value):
        raise ValueError("must not contain control characters such as line breaks")
    return value


Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
                 AfterValidator(no_control_characters),
                 Field(json_schema_extra={"pattern": r"^(?=.*\S)[^\u0000-\u001f\u007f-\u009f]*$"})]
Text = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
IsoDate = Annotated[date, BeforeValidator(iso_date)]


class ContactIn(Schema):
    name: Name
    email: Email
    phone: Phone = None


class BookingIn(Schema):
    tour_id: uuid.UUID
    tour_date: IsoDate
    participants: int = Field(strict=True, ge=1, le=MAX_PARTICIPANTS, description=(
        "At most the tour's maxGroupSize (catalog checks it)"))
    contact: ContactIn | None = Field(None, description=(
        "Defaults to the account: its e-mail, name and phone"))
    special_requests: Text | None = None


class BookingPatch(Schema):
    """A change of a pending booking: only what is sent changes; `specialRequests: null`
    clears them."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1})

    participants: int | None = Field(None, strict=True, ge=1, le=MAX_PARTICIPANTS, description=(
        "At most the tour's maxGroupSize; more seats only if the departure has them free"))
    contact: ContactIn | None = Field(None, description="Replaces the contact as a whole")
    special_requests: Text | None = None

    @model_validator(mode="after")
    def _something_not_null(self) -> Self:
        if not self.model_fields_set:
            raise ValueError("send at least one of participants, contact, specialRequests")
        for name in ("participants", "contact"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{to_camel(name)} cannot be null")
        return self


class ListQuery(Schema):
    page: int = Field(1, ge=1, le=100_000)
    limit: int = Field(20, ge=1, le=100)
    status: Status | None = None
    tour_id: uuid.UUID | None = None
    date_from: IsoDate | None = Field(None, alias="from", description="tourDate on or after")
    date_to: IsoDate | None = Field(None, alias="to", description="tourDate on or before")
    email: Annotated[str, StringConstraints(min_length=1, max_length=254)] | None = Field(
        None, description="Part of the contact e-mail, any case")

    @field_validator("date_to")
    @classmethod
    def _not_before_from(cls, date_to: date | None, info: ValidationInfo) -> date | None:
        date_from = info.data.get("date_from")
        if date_to is not None and date_from is not None and date_to < date_from:
            raise ValueError("must be on or after from")
        return date_to


class CancelIn(Schema):
    reason: Reason | None = None


class StatusIn(Schema):
    status: Status
    reason: Reason | None = None


class PaymentStatusIn(Schema):
    payment_status: PaymentStatus
    refunded_amount: int | None = Field(None, strict=True, ge=1, description=(
        "Minor units refunded so far: required with partially_refunded (more than before, "
        "less than paid); with refunded, everything paid (the default)"))

    @model_validator(mode="after")
    def _amount_with_refunds_only(self) -> Self:
        refunds = (PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED)
        if self.refunded_amount is not None and self.payment_status not in refunds:
            raise ValueError("refundedAmount goes only with refunded or partially_refunded")
        if self.refunded_amount is None and \
                self.payment_status is PaymentStatus.PARTIALLY_REFUNDED:
            raise ValueError("partially_refunded needs refundedAmount")
        return self


class ContactOut(Schema):
    name: str
    email: str
    phone: str | None


class TransitionsOut(Schema):
    status: list[Status]
    payment_status: list[PaymentStatus]


class BookingOut(Schema):
    id: uuid.UUID
    user_id: uuid.UUID
    tour_id: uuid.UUID
    departure_id: uuid.UUID
    tour_title: str
    tour_date: date
    participants: int
    unit_price: int = Field(description="Minor units, as catalog priced the tour")
    total_amount: int = Field(description="unitPrice x participants, minor units")
    currency: str
    contact: ContactOut
    special_requests: str | None
    status: Status
    payment_status: PaymentStatus
    paid_amount: int = Field(description="Minor units received (the total once paid; 0 before)")
    refunded_amount: int = Field(description="Minor units refunded so far")
    net_paid_amount: int = Field(description="paidAmount - refundedAmount: what the booking "
                                             "keeps")
    expires_at: datetime = Field(description="When a pending booking releases its seats")
    confirmed_at: datetime | None
    cancelled_at: datetime | None
    completed_at: datetime | None
    cancellation_reason: str | None
    created_at: datetime
    updated_at: datetime
    version: int = Field(description=(
        "Moves on with every change of the booking; its ETag, which PATCH needs in If-Match"))
    allowed_transitions: TransitionsOut = Field(description=(
        "The moves the caller may make from here: a traveller may only cancel, until the "
        "departure day (UTC); an administrator sees every move of the state machine"))


class BookingListOut(Schema):
    items: list[BookingOut]
    page: int
    limit: int
    total: int


def booking_out(booking: asyncpg.Record, viewer: Identity) -> BookingOut:
    """The booking as `viewer` sees it: its `allowedTransitions` are the moves they may make."""
    return BookingOut(
        id=booking["id"], user_id=booking["user_id"], tour_id=booking["tour_id"],
        departure_id=booking["departure_id"], tour_title=booking["tour_title"],
        tour_date=booking["tour_date"], participants=booking["participants"],
        unit_price=booking["unit_price"], total_amount=booking["total_amount"],
        currency=booking["currency"],
        contact=ContactOut(name=booking["contact_name"], email=booking["contact_email"],
                           phone=booking["contact_phone"]),
        special_requests=booking["special_requests"], status=booking["status"],
        payment_status=booking["payment_status"], paid_amount=amount_paid(booking),
        refunded_amount=booking["refunded_amount"],
        net_paid_amount=max(0, amount_paid(booking) - booking["refunded_amount"]),
        expires_at=booking["expires_at"], confirmed_at=booking["confirmed_at"],
        cancelled_at=booking["cancelled_at"], completed_at=booking["completed_at"],
        cancellation_reason=booking["cancellation_reason"], created_at=booking["created_at"],
        updated_at=booking["updated_at"], version=booking["version"],
        allowed_transitions=TransitionsOut.model_validate(transitions_for(booking, viewer)))


class UserBookingsQuery(Schema):
    user_id: uuid.UUID
    page: int = Field(1, ge=1, le=100_000)
    limit: int = Field(20, ge=1, le=100)
