"""booking's HTTP handlers: parse, call the booking rules, shape the response."""

from __future__ import annotations

import uuid

from aiohttp import web

from booking.app_keys import BOOKINGS, CHANGES
from booking.changes import etag, if_match
from booking.errors import BookingNotFound
from booking.schemas import (
    BookingIn,
    BookingListOut,
    BookingOut,
    BookingPatch,
    CancelIn,
    ListQuery,
    PaymentStatusIn,
    StatusIn,
    UserBookingsQuery,
    booking_out,
)
from common.auth import Identity
from common.http import endpoint, json_response
from common.http.idempotency import REPLAYED_HEADER, idempotency_key

TAGS = ("bookings",)


def booking_id(request: web.Request) -> uuid.UUID:
    try:
        return uuid.UUID(request.match_info["id"])
    except ValueError:
        raise BookingNotFound() from None


@endpoint(summary="Book seats on a departure", access="user", body=BookingIn,
          response=BookingOut, status=201, errors=(404, 409, 422, 503), tags=TAGS,
          description=(
              "Holds the seats at catalog, then stores the booking as pending until expiresAt. "
              "The total is catalog's unit price x participants. With an `Idempotency-Key` "
              "header, the same key and body answer the same response again (header "
              f"`{REPLAYED_HEADER}: true`); another body is 422 IDEMPOTENCY_KEY_REUSED; a "
              "request still running with that key makes this one 409 "
              "IDEMPOTENCY_KEY_IN_USE. Not enough seats: 409 INSUFFICIENT_AVAILABILITY."))
async def create_booking(request: web.Request, identity: Identity,
                         body: BookingIn) -> web.Response:
    key = idempotency_key(request)
    answer = await request.app[BOOKINGS].create(identity, body, key)
    headers = {REPLAYED_HEADER: "true"} if answer.replayed else {}
    if isinstance(answer.body.get("version"), int):
        headers["ETag"] = etag(answer.body["version"])
    return json_response(answer.body, status=answer.status, headers=headers)


@endpoint(summary="The caller's bookings (managers and admins: everyone's)", access="user",
          query=ListQuery,
          response=BookingListOut, tags=TAGS,
          description="Newest first. Filters narrow what the caller may see.")
async def list_bookings(request: web.Request, identity: Identity,
                        query: ListQuery) -> web.Response:
    found = await request.app[BOOKINGS].search(identity, query)
    return json_response(BookingListOut(
        items=[booking_out(b, identity) for b in found.items], page=query.page,
        limit=query.limit, total=found.total))


@endpoint(summary="One booking with its allowed transitions", access="user",
          response=BookingOut, errors=(404,), tags=TAGS,
          description="Someone else's booking is 404 BOOKING_NOT_FOUND, as an unknown one.")
async def get_booking(request: web.Request, identity: Identity) -> web.Response:
    booking = await request.app[BOOKINGS].get(identity, booking_id(request))
    return json_response(booking_out(booking, identity),
                         headers={"ETag": etag(booking["version"])})


@endpoint(summary="Change a pending booking", access="user", body=BookingPatch,
          response=BookingOut, errors=(404, 409, 412, 428, 503), tags=TAGS, description=(
              "Participants (seats held or given back at catalog, the total and the open "
              "payment's amount follow), contact, special requests; only what is sent changes. "
              "Needs `If-Match` with the booking's ETag (its `version`): without it 428 "
              "PRECONDITION_REQUIRED, on another version 412 PRECONDITION_FAILED (the current "
              "ETag in the answer). 409 BOOKING_NOT_CHANGEABLE (not pending: confirmed "
              "bookings cannot change yet; expired; departure day), PAYMENT_IN_PROGRESS, "
              "INSUFFICIENT_AVAILABILITY; 503 when catalog or payments cannot be reached "
              "(nothing changed). Someone else's booking is 404."))
async def change_booking(request: web.Request, identity: Identity,
                         body: BookingPatch) -> web.Response:
    versions = if_match(request.headers.get("If-Match"))
    booking = await request.app[CHANGES].change(identity, booking_id(request), versions, body)
    return json_response(booking_out(booking, identity),
                         headers={"ETag": etag(booking["version"])})


@endpoint(summary="Cancel a booking (its seats are released)", access="user", body=CancelIn,
          response=BookingOut, errors=(404, 409), tags=TAGS,
          description=(
              "The owner may cancel until the departure day (UTC), an administrator at any "
              "time; otherwise 409 INVALID_TRANSITION. Someone else's booking is 404."))
async def cancel_booking(request: web.Request, identity: Identity,
                         body: CancelIn) -> web.Response:
    booking = await request.app[BOOKINGS].cancel(identity, booking_id(request), body.reason)
    return json_response(booking_out(booking, identity))


@endpoint(summary="Move a booking's status (manager or admin)", access="manager", body=StatusIn,
          response=BookingOut, errors=(404, 409), tags=TAGS,
          description="Through the state machine; an illegal move is 409 INVALID_TRANSITION.")
async def set_status(request: web.Request, identity: Identity, body: StatusIn) -> web.Response:
    booking = await request.app[BOOKINGS].set_status(booking_id(request), body.status,
                                                     body.reason)
    return json_response(booking_out(booking, identity))


@endpoint(summary="Move a booking's payment status (admin reconciliation)", access="admin",
          body=PaymentStatusIn, response=BookingOut, errors=(404, 409), tags=TAGS,
          description=(
              "The same move as the payment events: `paid` confirms a pending booking and "
              "records the total as paid; `refunded` records everything paid as refunded; "
              "`partially_refunded` needs `refundedAmount` (more than before, less than paid)."))
async def set_payment_status(request: web.Request, identity: Identity,
                             body: PaymentStatusIn) -> web.Response:
    booking = await request.app[BOOKINGS].set_payment_status(
        booking_id(request), body.payment_status, body.refunded_amount)
    return json_response(booking_out(booking, identity))


# Another service (notify) reads a booking as an administrator does: any booking, every move.
_SERVICE_VIEWER = Identity(user_id="", email="", role="admin", session_id=None, token_id="")


@endpoint(summary="One booking, for other services", access="service", response=BookingOut,
          errors=(401, 404), tags=("internal",), description=(
              "The body of GET /api/bookings/{id} as an administrator sees it, for a caller "
              "with a service credential (`X-Internal-Token`); anything else is 401 "
              "SERVICE_CREDENTIAL_INVALID, a user's token included. Unknown: 404 "
              "BOOKING_NOT_FOUND."))
async def internal_booking(request: web.Request) -> web.Response:
    booking = await request.app[BOOKINGS].get(_SERVICE_VIEWER, booking_id(request))
    return json_response(booking_out(booking, _SERVICE_VIEWER))


@endpoint(summary="A user's bookings, for other services", access="service",
          query=UserBookingsQuery, response=BookingListOut, errors=(401,), tags=("internal",),
          description=(
              "Newest first, in the list shape, each as an administrator sees it: auth's user "
              "page. A service credential (`X-Internal-Token`) only: anything else is 401 "
              "SERVICE_CREDENTIAL_INVALID."))
async def internal_user_bookings(request: web.Request, query: UserBookingsQuery) -> web.Response:
    # Listed as that user would list them: their own, and nobody else's.
    owner = Identity(user_id=str(query.user_id), email="", role="customer", session_id=None,
                     token_id="")
    found = await request.app[BOOKINGS].search(owner, ListQuery.model_validate(
        {"page": query.page, "limit": query.limit}))
    return json_response(BookingListOut(
        items=[booking_out(b, _SERVICE_VIEWER) for b in found.items], page=query.page,
        limit=query.limit, total=found.total))
