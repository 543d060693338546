"""The booking form, the visitor's bookings, one booking (the page every e-mail links to), its
cancellation, and its state as JSON for the pages that follow it."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from web.clients import API, Caller
from web.errors import ApiError, PageNotFound
from web.i18n import gettext as _
from web.pages import render
from web.views.account import form_errors, refusal
from web.views.cart import forget
from web.visitor import flash, form, on_behalf, redirect, require_user

PAGE_SIZE = 10


def seconds_left(booking: dict[str, Any]) -> int:
    """Seconds until a pending booking's hold ends (0 once it has)."""
    expires = booking.get("expiresAt")
    if booking.get("status") != "pending" or not expires:
        return 0
    ends = datetime.fromisoformat(str(expires).replace("Z", "+00:00"))
    return max(0, int((ends - datetime.now(UTC)).total_seconds()))


def payable(booking: dict[str, Any]) -> bool:
    return (booking.get("status") == "pending" and seconds_left(booking) > 0
            and booking.get("paymentStatus") in ("unpaid", "failed"))


def cancellable(booking: dict[str, Any]) -> bool:
    return "cancelled" in booking.get("allowedTransitions", {}).get("status", [])


async def booking_form(request: web.Request) -> web.Response:
    user = require_user(request)
    tour_key = request.query.get("tour", "")
    if not tour_key:
        raise PageNotFound()
    api = request.app[API]

    async def read(visitor: Caller) -> tuple[dict[str, Any], dict[str, Any]]:
        tour, profile = await asyncio.gather(api.tour(visitor, tour_key), api.profile(visitor))
        return tour, profile

    try:
        tour, profile = await on_behalf(request, read)
    except ApiError as exc:
        if exc.status in (400, 404):
            raise PageNotFound() from None
        raise
    values = {"tourDate": request.query.get("date", ""),
              "participants": request.query.get("participants", "1"),
              "name": f"{user['firstName']} {user['lastName']}".strip(),
              "email": profile.get("email", ""), "phone": profile.get("phone") or "",
              "specialRequests": "", "key": str(uuid.uuid4())}
    return render(request, "book.html", {"tour": tour, "values": values, "errors": {},
                                         "error": None})


async def book(request: web.Request) -> web.Response:
    require_user(request)
    fields = await form(request)
    api = request.app[API]
    values = {k: fields.get(k, "").strip() for k in (
        "tourId", "tourDate", "participants", "name", "email", "phone", "specialRequests",
        "key")}
    errors: dict[str, str] = {}
    try:
        participants = int(values["participants"])
    except ValueError:
        participants = 0
        errors["participants"] = _("Enter how many people travel.")
    body: dict[str, Any] = {
        "tourId": values["tourId"], "tourDate": values["tourDate"],
        "participants": participants,
        "contact": {"name": values["name"], "email": values["email"],
                    **({"phone": values["phone"]} if values["phone"] else {})}}
    if values["specialRequests"]:
        body["specialRequests"] = values["specialRequests"]
    key = values["key"] or str(uuid.uuid4())
    error = None
    if not errors:
        async def create(visitor: Caller) -> dict[str, Any]:
            return await api.book(visitor, body, key)

        try:
            booking = await on_behalf(request, create)
        except ApiError as exc:
            errors, error = _booking_errors(exc), refusal(exc)
            if exc.code == "INSUFFICIENT_AVAILABILITY":
                left = (exc.details or {}).get("availableSeats", 0)
                errors["participants"] = _("Only %(n)s seats are left on this date.") % {
                    "n": left}
                error = errors["participants"]
            # A refused request frees its key: the corrected form may use it again.
        else:
            forget(request, values["tourId"], values["tourDate"])
            raise redirect(f"/checkout?booking={booking['id']}")

    async def read_tour(visitor: Caller) -> dict[str, Any]:
        return await api.tour(visitor, values["tourId"])

    try:
        tour = await on_behalf(request, read_tour)
    except ApiError:
        raise PageNotFound() from None
    values["key"] = key
    return render(request, "book.html", {"tour": tour, "values": values, "errors": errors,
                                         "error": error}, status=400 if errors else 409)


def _booking_errors(exc: ApiError) -> dict[str, str]:
    errors = {}
    for field, message in form_errors(exc).items():
        errors[field.removeprefix("contact.")] = message
    if exc.code in ("DEPARTURE_NOT_FOUND", "DEPARTURE_IN_PAST"):
        errors["tourDate"] = _("Choose one of the open departures.")
    return errors


async def my_bookings(request: web.Request) -> web.Response:
    try:
        page = max(1, int(request.query.get("page", "1")))
    except ValueError:
        page = 1

    async def read(visitor: Caller) -> dict[str, Any]:
        return await request.app[API].bookings(visitor, page=page, limit=PAGE_SIZE)

    found = await on_behalf(request, read)
    items = [{**b, "secondsLeft": seconds_left(b), "payable": payable(b),
              "cancellable": cancellable(b)} for b in found.get("items", [])]
    pages = max(1, -(-int(found.get("total", 0)) // PAGE_SIZE))
    return render(request, "bookings.html", {"items": items, "page": page, "pages": pages})


async def _booking_and_payments(request: web.Request,
                                ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    api, booking_id = request.app[API], request.match_info.get("id") or request.query.get(
        "booking", "")

    async def read(visitor: Caller) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        booking, payments = await asyncio.gather(
            api.booking(visitor, booking_id), api.booking_payments(visitor, booking_id))
        return booking, payments

    try:
        return await on_behalf(request, read)
    except ApiError as exc:
        if exc.status in (400, 404):
            raise PageNotFound() from None
        raise


async def booking_page(request: web.Request) -> web.Response:
    booking, payments = await _booking_and_payments(request)
    return render(request, "booking.html", {
        "booking": booking, "payments": payments, "secondsLeft": seconds_left(booking),
        "payable": payable(booking), "cancellable": cancellable(booking)})


async def cancel(request: web.Request) -> web.Response:
    require_user(request)
    await form(request)
    booking_id = request.match_info["id"]

    async def run(visitor: Caller) -> dict[str, Any]:
        return await request.app[API].cancel(visitor, booking_id)

    try:
        cancelled = await on_behalf(request, run)
    except ApiError as exc:
        if exc.status == 404:
            raise PageNotFound() from None
        flash(request, refusal(exc), "error")
        raise redirect(f"/bookings/{booking_id}") from None
    if cancelled.get("paymentStatus") == "paid":
        flash(request, _("Your booking is cancelled. The refund is on its way to your card."),
              "success")
    else:
        flash(request, _("Your booking is cancelled. Nothing was charged."), "success")
    raise redirect(f"/bookings/{booking_id}")


def state(booking: dict[str, Any], payments: list[dict[str, Any]]) -> dict[str, Any]:
    latest = payments[0] if payments else None
    return {"id": booking["id"], "status": booking["status"],
            "paymentStatus": booking["paymentStatus"], "secondsLeft": seconds_left(booking),
            "payment": {"status": latest["status"],
                        "failureMessage": latest.get("failureMessage")} if latest else None}


async def booking_state(request: web.Request) -> web.Response:
    """What a page following a payment polls for when the live connection cannot tell it."""
    booking, payments = await _booking_and_payments(request)
    return web.json_response(state(booking, payments), headers={"Cache-Control": "no-store"})
