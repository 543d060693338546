"""What each event tells whom: the messages (channel, template, recipient, data) it calls for.

booking.* messages go to the booking's contact carried by the event; payment.* ones to the
contact of the booking, read from booking; both follow the account's opt-ins at auth (e-mail
on, SMS only when opted in and a phone is known: the booking's, else the account's). Operators'
alerts go to the configured address. A message not to be sent is still listed, with the reason
it is skipped, so that the delivery log says why nothing went out.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from notify import events
from notify.config import Config
from notify.events import AvailabilityData, BookingData, BookingUpdatedData, Data, PaymentData
from notify.recipients import Accounts, Booking, Bookings, Preferences

Channel = Literal["email", "sms"]

OPTED_OUT_EMAIL = "the traveller turned e-mail notifications off"
OPTED_OUT_SMS = "the traveller has not opted in to SMS"
NO_PHONE = "no phone number is known"
SMS_OFF = "SMS is turned off on this server (NOTIFY_SMS_PROVIDER=off)"
# booking's and payments' statuses that mean money was taken and (some of it) not returned yet.
PAID = frozenset({"paid", "partially_refunded"})
# The fields of booking.updated that are the booking's contact.
_CONTACT = frozenset({"userName", "userEmail", "userPhone"})


@dataclass(frozen=True)
class Notice:
    channel: Channel
    template: str
    recipient: str  # '' when there is nobody to send it to (then it is skipped)
    context: dict[str, Any]
    user_id: uuid.UUID | None
    booking_id: uuid.UUID | None
    skip: str | None = None  # why it is not sent, when it is not


@dataclass
class _Audience:
    """One traveller: where their e-mail and SMS go, and whether they want them."""

    user_id: uuid.UUID
    booking_id: uuid.UUID
    email: str
    phone: str | None
    preferences: Preferences
    sms_enabled: bool
    skip_all: str | None = None
    notices: list[Notice] = field(default_factory=list)

    def email_notice(self, template: str, context: dict[str, Any]) -> None:
        skip = self.skip_all or (None if self.preferences.email else OPTED_OUT_EMAIL)
        self.notices.append(Notice("email", template, self.email, context, self.user_id,
                                   self.booking_id, skip))

    def sms_notice(self, template: str, context: dict[str, Any]) -> None:
        phone = self.phone or self.preferences.phone
        skip = self.skip_all or (
            SMS_OFF if not self.sms_enabled
            else OPTED_OUT_SMS if not self.preferences.sms
            else NO_PHONE if not phone else None)
        self.notices.append(Notice("sms", template, phone or "", context, self.user_id,
                                   self.booking_id, skip))


class Notices:
    def __init__(self, accounts: Accounts, bookings: Bookings, config: Config, *,
                 sms_enabled: bool) -> None:
        self.accounts = accounts
        self.bookings = bookings
        self.public_url = config.public_url
        self.operator_email = config.operator_email
        self.sms_enabled = sms_enabled
        self._plans: dict[str, Callable[[Any], Awaitable[list[Notice]]]] = {
            events.BOOKING_CONFIRMED: self._booking_confirmed,
            events.BOOKING_CANCELLED: self._booking_cancelled,
            events.BOOKING_COMPLETED: self._booking_completed,
            events.BOOKING_UPDATED: self._booking_updated,
            events.PAYMENT_SUCCEEDED: self._payment_succeeded,
            events.PAYMENT_FAILED: self._payment_failed,
            events.PAYMENT_REFUNDED: self._payment_refunded,
            events.AVAILABILITY_LOW: self._availability_low,
        }

    async def of(self, event_type: str, data: Data) -> list[Notice]:
        """The messages of one event; raises UpstreamUnavailable when auth or booking cannot
        say who to tell right now."""
        return await self._plans[event_type](data)

    # -- booking.* -----------------------------------------------------------------------------

    async def _traveller(self, data: BookingData) -> _Audience:
        return _Audience(data.user_id, data.booking_id, data.user_email, data.user_phone,
                         await self.accounts.preferences(data.user_id), self.sms_enabled)

    def _booking_context(self, data: BookingData) -> dict[str, Any]:
        return {"name": data.user_name or "traveller", "booking_id": str(data.booking_id),
                "tour_id": str(data.tour_id), "tour_title": data.tour_title,
                "tour_date": data.tour_date, "participants": data.participants,
                "total_amount": data.total_amount, "currency": data.currency,
                "paid": data.payment_status == "paid", "public_url": self.public_url,
                "booking_url": f"{self.public_url}/bookings/{data.booking_id}"}

    async def _booking_confirmed(self, data: BookingData) -> list[Notice]:
        who, context = await self._traveller(data), self._booking_context(data)
        who.email_notice("booking_confirmed", context)
        who.sms_notice("sms_booking_confirmed", context)
        return who.notices

    async def _booking_cancelled(self, data: BookingData) -> list[Notice]:
        who, context = await self._traveller(data), self._booking_context(data)
        # The refund itself is announced by its own e-mail (payment.refunded), with the amount
        # payments actually refunded; this one only says whether one is coming.
        refund = ("coming" if data.payment_status in PAID
                  else "done" if data.payment_status == "refunded" else None)
        context |= {"reason": data.cancellation_reason, "cancelled_at": data.cancelled_at,
                    "expired": data.cancellation_reason == "expired", "refund": refund}
        who.email_notice("booking_cancelled", context)
        who.sms_notice("sms_booking_cancelled", context)
        return who.notices

    async def _booking_completed(self, data: BookingData) -> list[Notice]:
        who, context = await self._traveller(data), self._booking_context(data)
        context["review_url"] = f"{self.public_url}/tours/{data.tour_id}#reviews"
        who.email_notice("booking_completed", context)
        return who.notices

    async def _booking_updated(self, data: BookingUpdatedData) -> list[Notice]:
        # To the contact as the change left it: a new e-mail address hears at once.
        who, context = await self._traveller(data), self._booking_context(data)
        changed = set(data.changed)
        context |= {
            "participants_before": (data.previous.participants if "participants" in changed
                                    else None),
            "total_before": data.previous.total_amount if "totalAmount" in changed else None,
            "contact_changed": bool(changed & _CONTACT),
            "contact_name": data.user_name, "contact_email": data.user_email,
            "contact_phone": data.user_phone,
            "special_requests_changed": "specialRequests" in changed,
            "special_requests": data.special_requests,
            "unpaid": data.status == "pending" and data.payment_status not in PAID}
        who.email_notice("booking_updated", context)
        return who.notices

    # -- payment.* -----------------------------------------------------------------------------

    async def _payer(self, data: PaymentData) -> tuple[_Audience, Booking, dict[str, Any]]:
        booking = await self.bookings.get(data.booking_id)
        who = _Audience(data.user_id, data.booking_id, booking.contact_email,
                        booking.contact_phone, await self.accounts.preferences(data.user_id),
                        self.sms_enabled)
        context = {"name": booking.contact_name or "traveller",
                   "booking_id": str(booking.id), "tour_title": booking.tour_title,
                   "tour_date": booking.tour_date, "participants": booking.participants,
                   "booking_status": booking.status, "amount": data.amount,
                   "currency": data.currency, "public_url": self.public_url,
                   "booking_url": f"{self.public_url}/bookings/{booking.id}"}
        return who, booking, context

    async def _payment_succeeded(self, data: PaymentData) -> list[Notice]:
        who, booking, context = await self._payer(data)
        # Money that arrived for a booking cancelled meanwhile (its hold expired as the
        # traveller paid) goes back; the e-mail says so rather than welcome them aboard.
        context["cancelled"] = booking.status == "cancelled"
        who.email_notice("payment_succeeded", context)
        return who.notices

    async def _payment_failed(self, data: PaymentData) -> list[Notice]:
        who, booking, context = await self._payer(data)
        if booking.status != "pending":
            who.skip_all = f"the booking is {booking.status}: nothing is left to pay"
        elif booking.payment_status == "paid":  # another attempt succeeded meanwhile
            who.skip_all = "the booking is paid: nothing is left to pay"
        elif booking.expires_at <= datetime.now(UTC):
            who.skip_all = "the booking's hold has expired: nothing is left to pay"
        context |= {"failure_message": data.failure_message, "expires_at": booking.expires_at,
                    "pay_url": context["booking_url"]}
        who.email_notice("payment_failed", context)
        who.sms_notice("sms_payment_failed", context)
        return who.notices

    async def _payment_refunded(self, data: PaymentData) -> list[Notice]:
        who, _, context = await self._payer(data)
        context |= {"refunded_amount": data.refunded_amount,
                    "fully": data.refunded_amount >= data.amount,
                    "remaining": max(data.amount - data.refunded_amount, 0)}
        who.email_notice("payment_refunded", context)
        return who.notices

    # -- tour.availability.low -----------------------------------------------------------------

    async def _availability_low(self, data: AvailabilityData) -> list[Notice]:
        context = {"tour_id": str(data.tour_id), "tour_title": data.tour_title,
                   "tour_date": data.tour_date, "available_seats": data.available_seats,
                   "capacity": data.capacity, "threshold": data.threshold,
                   "booked_percent": round(100 * (data.capacity - data.available_seats)
                                           / data.capacity),
                   "public_url": self.public_url,
                   "tour_url": f"{self.public_url}/tours/{data.tour_id}"}
        return [Notice("email", "availability_low", self.operator_email, context, user_id=None,
                       booking_id=None)]
