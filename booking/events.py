"""The events booking publishes: `booking.confirmed`, `booking.cancelled`, `booking.completed` (a
status change) and `booking.updated` (a pending booking changed); their data is the contract its
consumers read (docs/booking.md, "Events")."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from common.bus import Event
from common.bus.envelope import utc_timestamp


def booking_event(event_type: str, booking: asyncpg.Record) -> Event:
    """The event of a status change, with the data of the catalog/booking contract: catalog keys
    its handling on `tourId:tourDate`, notify writes to `userEmail` and `userPhone`."""
    return Event.new(event_type, booking_event_data(booking))


def booking_event_data(booking: asyncpg.Record) -> dict[str, Any]:
    return {
        "bookingId": str(booking["id"]),
        "tourId": str(booking["tour_id"]),
        "departureId": str(booking["departure_id"]),
        "tourTitle": booking["tour_title"],
        "tourDate": booking["tour_date"].isoformat(),
        "userId": str(booking["user_id"]),
        # The booking's contact: by default the account's name, e-mail and phone.
        "userName": booking["contact_name"],
        "userEmail": booking["contact_email"],
        "userPhone": booking["contact_phone"],
        "participants": booking["participants"],
        "totalAmount": booking["total_amount"],
        "currency": booking["currency"],
        "status": booking["status"],
        "paymentStatus": booking["payment_status"],
        "cancelledAt": _timestamp(booking["cancelled_at"]),
        "cancellationReason": booking["cancellation_reason"],
    }


# What booking.updated may name as changed: fields of the event data a change can move.
CHANGEABLE = ("participants", "totalAmount", "userName", "userEmail", "userPhone",
              "specialRequests")


def booking_updated_event(before: asyncpg.Record, after: asyncpg.Record) -> Event:
    """A pending booking changed (participants, contact, special requests): the status events'
    data and `specialRequests`, `version`, the names of what `changed` and their `previous`
    values, so that a consumer need not remember the booking."""
    old, new = _updated_data(before), _updated_data(after)
    changed = [name for name in CHANGEABLE if old[name] != new[name]]
    return Event.new("booking.updated", {
        **new, "version": after["version"], "changed": changed,
        "previous": {name: old[name] for name in changed}})


def _updated_data(booking: asyncpg.Record) -> dict[str, Any]:
    return {**booking_event_data(booking), "specialRequests": booking["special_requests"]}


def _timestamp(moment: datetime | None) -> str | None:
    return None if moment is None else utc_timestamp(moment)
