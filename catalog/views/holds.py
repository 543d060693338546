"""The seat API for booking (`/internal`, service credential only): hold, resize, confirm, release,
read.

Each call is one transaction: the hold row, the departure's counters and the availability events
commit together or not at all.
"""

from __future__ import annotations

import asyncpg
from aiohttp import web

from catalog import clock, seats
from catalog.app_keys import SEAT_METRICS
from catalog.errors import HoldNotFound, InsufficientAvailability
from catalog.schemas import HoldIn, HoldOut, HoldResizeIn
from catalog.views import available_seats, path_id
from common.db import POOL
from common.http import endpoint, json_response

TAGS = ("internal",)


def hold_out(row: asyncpg.Record) -> HoldOut:
    return HoldOut(booking_id=row["booking_id"], tour_id=row["tour_id"],
                   departure_id=row["departure_id"], tour_date=row["tour_date"],
                   seats=row["seats"], state=row["state"], expires_at=row["expires_at"],
                   tour_title=row["tour_title"], unit_price=row["unit_price"],
                   currency=row["currency"], max_group_size=row["max_group_size"],
                   available_seats=available_seats(row),
                   capacity=row["capacity"])


@endpoint(summary="Hold seats for a booking", access="service", body=HoldIn, response=HoldOut,
          status=201, errors=(404, 409), tags=TAGS, description=(
              "201 with a new hold; 200 with the hold this booking id already has (held or "
              "booked: nothing changes). 404 TOUR_NOT_FOUND, DEPARTURE_NOT_FOUND; 400 "
              "DEPARTURE_IN_PAST, VALIDATION_ERROR (field participants: seats outside 1 to the "
              "tour's maxGroupSize); 409 INSUFFICIENT_AVAILABILITY, HOLD_RELEASED."))
async def create_hold(request: web.Request, body: HoldIn) -> web.Response:
    metrics = request.app[SEAT_METRICS]
    try:
        async with request.app[POOL].acquire() as conn, conn.transaction():
            outcome = await seats.hold(conn, body, now=clock.now())
    except InsufficientAvailability:
        metrics.holds.labels("refused").inc()
        raise
    metrics.holds.labels("created" if outcome.change else "repeated").inc()
    metrics.moved(outcome.change, outcome.seats)
    return json_response(hold_out(outcome.hold), status=201 if outcome.change else 200)


@endpoint(summary="Change how many seats a booking holds", access="service", body=HoldResizeIn,
          response=HoldOut, errors=(404, 409), tags=TAGS, description=(
              "The hold, held or booked, has `seats` from now on; its availability change is "
              "published. Idempotent: the same size again changes nothing. More seats only if "
              "they are free: 409 INSUFFICIENT_AVAILABILITY (details.requested: the seats "
              "added); 404 DEPARTURE_NOT_FOUND when the departure is closed; 400 "
              "DEPARTURE_IN_PAST when it has come; 400 VALIDATION_ERROR (field participants) "
              "outside 1 to maxGroupSize. Fewer seats always. 409 HOLD_RELEASED, 404 "
              "HOLD_NOT_FOUND."))
async def resize_hold(request: web.Request, body: HoldResizeIn) -> web.Response:
    booking_id = path_id(request, "booking", HoldNotFound())
    async with request.app[POOL].acquire() as conn, conn.transaction():
        outcome = await seats.resize(conn, booking_id, body.seats, now=clock.now())
    request.app[SEAT_METRICS].moved(outcome.change, outcome.seats)
    return json_response(hold_out(outcome.hold))


@endpoint(summary="Book a hold's seats (the booking is paid)", access="service",
          response=HoldOut, errors=(404, 409), tags=TAGS, description=(
              "Idempotent. A hold the sweeper released (expired) takes its seats again if they "
              "are free, else 409 INSUFFICIENT_AVAILABILITY and nothing changes; a hold "
              "released by booking is 409 HOLD_RELEASED."))
async def confirm_hold(request: web.Request) -> web.Response:
    booking_id = path_id(request, "booking", HoldNotFound())
    async with request.app[POOL].acquire() as conn, conn.transaction():
        outcome = await seats.confirm(conn, booking_id)
    request.app[SEAT_METRICS].moved(outcome.change, outcome.seats)
    return json_response(hold_out(outcome.hold))


@endpoint(summary="Release a hold's seats, held or booked", access="service", response=HoldOut,
          errors=(404,), tags=TAGS, description="Idempotent.")
async def release_hold(request: web.Request) -> web.Response:
    booking_id = path_id(request, "booking", HoldNotFound())
    async with request.app[POOL].acquire() as conn, conn.transaction():
        outcome = await seats.release(conn, booking_id)
    request.app[SEAT_METRICS].moved(outcome.change, outcome.seats)
    return json_response(hold_out(outcome.hold))


@endpoint(summary="A booking's hold", access="service", response=HoldOut, errors=(404,),
          tags=TAGS)
async def get_hold(request: web.Request) -> web.Response:
    booking_id = path_id(request, "booking", HoldNotFound())
    async with request.app[POOL].acquire() as conn:
        row = await seats.get(conn, booking_id)
    return json_response(hold_out(row))
