"""The seat model: holds taken, resized, confirmed and released by booking id, each change applied
at most once, and `held + booked <= capacity` on every departure under any concurrency.

Every function runs in its caller's transaction (a request's, or the consumer's that records the
event as processed) and writes its availability events there too. Seats are only ever added by a
conditional UPDATE (`db.take_seats`, `db.book_free_seats`); a hold's state only changes with its
row locked, so two changes of one booking run one after the other. Locks are always taken hold
first, then departure, so these transactions cannot deadlock one another.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg
import structlog

from catalog import db
from catalog.errors import (
    DepartureInPast,
    DepartureNotFound,
    HoldNotFound,
    HoldReleased,
    InsufficientAvailability,
    TourNotFound,
    invalid,
)
from catalog.events import Counters, record_availability
from catalog.schemas import HoldIn

log = structlog.get_logger(__name__)

# The furthest `expiresAt` a hold may have. booking holds for at most a day (BOOKING_HOLD_TTL);
# the margin absorbs clock skew. Without a bound, a hold whose booking died would keep its seats
# for as long as it says, out of the sweeper's reach (and year 9999 would not even be storable).
LONGEST_HOLD = timedelta(days=7)


@dataclass(frozen=True)
class Outcome:
    """The hold as it is now (`db.hold_view`) and what this call changed: "held", "booked",
    "released", or None when the call found the change already made; `moved` counts the seats
    that changed when they are not the hold's all (a resize)."""

    hold: asyncpg.Record
    change: str | None
    moved: int | None = None

    @property
    def seats(self) -> int:
        seats: int = self.hold["seats"] if self.moved is None else self.moved
        return seats


async def hold(conn: asyncpg.Connection, request: HoldIn, *, now: datetime) -> Outcome:
    """Take the seats for a new booking id, or answer the hold it already has."""
    existing = await db.hold_view(conn, request.booking_id)
    if existing is not None:
        return _repeated(existing, request)
    tour = await db.bookable_tour(conn, request.tour_id)
    if tour is None:
        raise TourNotFound(details={"tourId": str(request.tour_id)})
    if request.tour_date <= now.date():
        raise DepartureInPast(request.tour_date)
    departure = await db.departure_on(conn, tour["id"], request.tour_date)
    if departure is None or not departure["is_active"]:
        raise _no_departure(request)
    if not 1 <= request.seats <= tour["max_group_size"]:
        raise invalid("participants", f"must be between 1 and {tour['max_group_size']} "
                                      "(the most one booking may take on this tour)")
    if request.expires_at <= now:
        raise invalid("expiresAt", "must be in the future")
    if request.expires_at > now + LONGEST_HOLD:
        raise invalid("expiresAt", f"must be at most {LONGEST_HOLD.days} days from now")
    if not await db.insert_hold(conn, booking_id=request.booking_id,
                                departure_id=departure["id"], seats=request.seats,
                                unit_price=tour["price"], currency=tour["currency"],
                                expires_at=request.expires_at):
        # A request with this booking id committed while we were checking: answer its hold.
        return _repeated(await get(conn, request.booking_id), request)
    taken = await db.take_seats(conn, departure["id"], request.seats)
    if taken is None:
        # Raising rolls the hold row back with the caller's transaction.
        current = Counters.of(await db.departure_counters(conn, departure["id"]))
        if not current.is_active:
            raise _no_departure(request)
        raise InsufficientAvailability(current.available, request.seats, request.tour_date)
    after = Counters.of(taken)
    await record_availability(conn, after.before(held=request.seats), after)
    return Outcome(await get(conn, request.booking_id), "held")


async def confirm(conn: asyncpg.Connection, booking_id: uuid.UUID) -> Outcome:
    """The booking is paid: its held seats become booked.

    A hold the sweeper released as an orphan takes its seats again only if they are still free;
    otherwise InsufficientAvailability and nothing changes: a paid booking without seats is
    refunded, a departure is never overbooked. A hold released because booking cancelled it
    stays released (HoldReleased): a confirmation arriving after the cancellation (a retried
    message overtaken by the next one) must not book seats for a cancelled booking.
    """
    locked = await db.lock_hold(conn, booking_id)
    if locked is None:
        raise HoldNotFound(details={"bookingId": str(booking_id)})
    seats, departure_id = locked["seats"], locked["departure_id"]
    if locked["state"] == "booked":
        return Outcome(await get(conn, booking_id), None)
    if locked["state"] == "held":
        after = Counters.of(await db.book_held_seats(conn, departure_id, seats))
        before = after.before(held=-seats, booked=seats)
    elif locked["release_reason"] == "expired":
        booked = await db.book_free_seats(conn, departure_id, seats)
        if booked is None:
            current = Counters.of(await db.departure_counters(conn, departure_id))
            raise InsufficientAvailability(current.available, seats, current.date)
        after = Counters.of(booked)
        before = after.before(booked=seats)
        log.warning("expired_hold_booked_again", bookingId=str(booking_id), seats=seats)
    else:
        raise HoldReleased(details={"bookingId": str(booking_id)})
    await db.set_hold_state(conn, booking_id, "booked")
    await record_availability(conn, before, after)
    return Outcome(await get(conn, booking_id), "booked")


async def release(conn: asyncpg.Connection, booking_id: uuid.UUID, *,
                  reason: str = "cancelled") -> Outcome:
    """Give the seats back, held or booked: booking cancelled it ("cancelled"), or the sweeper
    found it orphaned ("expired").

    booking's release of a hold the sweeper already released changes no seat, but it does make
    the release final: an expired hold may still be confirmed (the payment landed late), a
    cancelled one never, and a confirmation retried from before the cancellation can arrive
    after it.
    """
    locked = await db.lock_hold(conn, booking_id)
    if locked is None:
        raise HoldNotFound(details={"bookingId": str(booking_id)})
    if locked["state"] == "released":
        if reason == "cancelled" and locked["release_reason"] == "expired":
            await db.set_hold_state(conn, booking_id, "released", release_reason="cancelled")
        return Outcome(await get(conn, booking_id), None)
    seats = locked["seats"]
    held, booked = (seats, 0) if locked["state"] == "held" else (0, seats)
    after = Counters.of(await db.free_seats(conn, locked["departure_id"], held=held,
                                            booked=booked))
    await db.set_hold_state(conn, booking_id, "released", release_reason=reason)
    await record_availability(conn, after.before(held=-held, booked=-booked), after)
    return Outcome(await get(conn, booking_id), "released")


async def resize(conn: asyncpg.Connection, booking_id: uuid.UUID, seats: int, *,
                 now: datetime) -> Outcome:
    """The booking holds `seats` from now on, in the state its hold is in (held, or booked once
    paid): more only if they are free on the departure, still active and ahead; fewer always.
    The target is absolute, so asking for the same size again changes nothing.
    """
    locked = await db.lock_hold(conn, booking_id)
    if locked is None:
        raise HoldNotFound(details={"bookingId": str(booking_id)})
    if locked["state"] == "released":
        raise HoldReleased(details={"bookingId": str(booking_id)})
    hold = await get(conn, booking_id)
    delta = seats - locked["seats"]
    if delta == 0:
        return Outcome(hold, None)
    if not 1 <= seats <= hold["max_group_size"]:
        raise invalid("participants", f"must be between 1 and {hold['max_group_size']} "
                                      "(the most one booking may take on this tour)")
    held = locked["state"] == "held"
    more_held, more_booked = (delta, 0) if held else (0, delta)
    if delta > 0:
        if hold["tour_date"] <= now.date():
            raise DepartureInPast(hold["tour_date"])
        added = await db.add_seats(conn, locked["departure_id"], held=more_held,
                                   booked=more_booked)
        if added is None:
            current = Counters.of(await db.departure_counters(conn, locked["departure_id"]))
            if not current.is_active:
                raise DepartureNotFound(
                    f"The departure on {current.date.isoformat()} is closed to new seats",
                    details={"tourId": str(current.tour_id),
                             "tourDate": current.date.isoformat()})
            raise InsufficientAvailability(current.available, delta, current.date)
        after = Counters.of(added)
    else:
        after = Counters.of(await db.free_seats(conn, locked["departure_id"],
                                                held=-more_held, booked=-more_booked))
    await db.set_hold_seats(conn, booking_id, seats)
    await record_availability(conn, after.before(held=more_held, booked=more_booked), after)
    change = "released" if delta < 0 else "held" if held else "booked"
    return Outcome(await get(conn, booking_id), change, moved=abs(delta))


async def get(conn: asyncpg.Connection, booking_id: uuid.UUID) -> asyncpg.Record:
    view = await db.hold_view(conn, booking_id)
    if view is None:
        raise HoldNotFound(details={"bookingId": str(booking_id)})
    return view


def _repeated(existing: asyncpg.Record, request: HoldIn) -> Outcome:
    if existing["state"] == "released":
        raise HoldReleased(details={"bookingId": str(request.booking_id)})
    if (existing["tour_id"], existing["tour_date"], existing["seats"]) != (
            request.tour_id, request.tour_date, request.seats):
        # Booking ids are booking's UUIDs: a different request under one means a bug there.
        # The first request's hold stands; booking sees what it holds in the answer.
        log.warning("hold_repeated_with_other_values", bookingId=str(request.booking_id))
    return Outcome(existing, None)


def _no_departure(request: HoldIn) -> DepartureNotFound:
    return DepartureNotFound(
        f"The tour has no active departure on {request.tour_date.isoformat()}",
        details={"tourId": str(request.tour_id), "tourDate": request.tour_date.isoformat()})
