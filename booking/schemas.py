"""booking's wire models: what requests must contain and what responses look like."""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime
from typing import Annotated

import asyncpg
from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, Field, StringConstraints

from booking.lifecycle import state_of
from booking.states import PaymentStatus, Status, allowed_transitions
from common.http import Schema

MAX_PARTICIPANTS = 50
_PHONE = re.compile(r"^\+[1-9]\d{6,14}$")


def normalise_email(value: str) -> str:
    try:
        return validate_email(value.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from None


def normalise_phone(value: str | None) -> str | None:
    if value is None:
        return None
    compact = re.sub(r"[\s().-]", "", value)
    if not _PHONE.match(compact):
        raise ValueError("must be an international number such as +33612345678")
    return compact


Email = Annotated[str, StringConstraints(max_length=254), AfterValidator(normalise_email),
                  Field(json_schema_extra={"format": "email"})]
Phone = Annotated[str | None, StringConstraints(max_length=32), AfterValidator(normalise_phone),
                  Field(json_schema_extra={"pattern": _PHONE.pattern.replace(r"\d", "[0-9]")})]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
                 Field(json_schema_extra={"pattern": r"[^\s\u0085]"})]
Text = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)]
Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


class ContactIn(Schema):
    name: Name
    email: Email
    phone: Phone = None


class BookingIn(Schema):
    tour_id: uuid.UUID
    tour_date: date
    participants: int = Field(ge=1, le=MAX_PARTICIPANTS, description=(
        "At most the tour's maxGroupSize too (catalog checks it)"))
    contact: ContactIn | None = Field(None, description=(
        "Defaults to the account: its e-mail, name and phone"))
    special_requests: Text | None = None


class ListQuery(Schema):
    page: int = Field(1, ge=1, le=100_000)
    limit: int = Field(20, ge=1, le=100)
    status: Status | None = None
    tour_id: uuid.UUID | None = None
    date_from: date | None = Field(None, alias="from", description="tourDate on or after")
    date_to: date | None = Field(None, alias="to", description="tourDate on or before")
    email: Annotated[str, StringConstraints(min_length=1, max_length=254)] | None = Field(
        None, description="Part of the contact e-mail, any case")


class CancelIn(Schema):
    reason: Reason | None = None


class StatusIn(Schema):
    status: Status
    reason: Reason | None = None


class PaymentStatusIn(Schema):
    payment_status: PaymentStatus


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
    refunded_amount: int
    expires_at: datetime = Field(description="When a pending booking releases its seats")
    confirmed_at: datetime | None
    cancelled_at: datetime | None
    completed_at: datetime | None
    cancellation_reason: str | None
    created_at: datetime
    updated_at: datetime
    allowed_transitions: TransitionsOut


class BookingListOut(Schema):
    items: list[BookingOut]
    page: int
    limit: int
    total: int


def booking_out(booking: asyncpg.Record) -> BookingOut:
    return BookingOut(
        id=booking["id"], user_id=booking["user_id"], tour_id=booking["tour_id"],
        departure_id=booking["departure_id"], tour_title=booking["tour_title"],
        tour_date=booking["tour_date"], participants=booking["participants"],
        unit_price=booking["unit_price"], total_amount=booking["total_amount"],
        currency=booking["currency"],
        contact=ContactOut(name=booking["contact_name"], email=booking["contact_email"],
                           phone=booking["contact_phone"]),
        special_requests=booking["special_requests"], status=booking["status"],
        payment_status=booking["payment_status"], refunded_amount=booking["refunded_amount"],
        expires_at=booking["expires_at"], confirmed_at=booking["confirmed_at"],
        cancelled_at=booking["cancelled_at"], completed_at=booking["completed_at"],
        cancellation_reason=booking["cancellation_reason"], created_at=booking["created_at"],
        updated_at=booking["updated_at"],
        allowed_transitions=TransitionsOut.model_validate(
            allowed_transitions(state_of(booking))))
