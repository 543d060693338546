"""Changing a pending booking (travellers, contact, special requests) on the version the visitor
saw: a change made meanwhile in another tab is shown rather than overwritten, and the API's
refusals are explained next to the field they are about."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from web.clients import API, Caller
from web.errors import ApiError, PageNotFound
from web.i18n import format_money, ngettext
from web.i18n import gettext as _
from web.pages import render
from web.views.account import form_errors, refusal
from web.views.bookings import payable, seconds_left
from web.visitor import caller, flash, form, on_behalf, redirect, require_user

FIELDS = ("participants", "name", "email", "phone", "specialRequests")


def values_of(booking: dict[str, Any]) -> dict[str, str]:
    """The form's fields as the booking stands."""
    contact = booking.get("contact") or {}
    return {"participants": str(booking["participants"]), "name": contact.get("name") or "",
            "email": contact.get("email") or "", "phone": contact.get("phone") or "",
            "specialRequests": booking.get("specialRequests") or "",
            "version": str(booking.get("version", ""))}


def change_errors(exc: ApiError) -> tuple[dict[str, str], str]:
    """{field: message} and the whole form's message for a refused change."""
    errors = {field.removeprefix("contact."): message
              for field, message in form_errors(exc).items()}
    if exc.code == "INSUFFICIENT_AVAILABILITY":
        free = (exc.details or {}).get("availableSeats") if isinstance(exc.details, dict) else None
        if isinstance(free, int) and free > 0:
            errors["participants"] = ngettext(
                "Only %(num)d more seat is free on this date.",
                "Only %(num)d more seats are free on this date.", free) % {"num": free}
        else:
            errors["participants"] = _("No more seats are free on this date.")
        return errors, errors["participants"]
    if exc.code == "PAYMENT_IN_PROGRESS":
        errors["participants"] = _("A payment of this booking is being processed: it cannot "
                                   "change until the payment ends. Look again in a minute.")
        return errors, errors["participants"]
    return errors, refusal(exc)


async def _booking_and_tour(request: web.Request, booking_id: str,
                            ) -> tuple[dict[str, Any], dict[str, Any] | None]:
    api = request.app[API]

    async def read(visitor: Caller) -> dict[str, Any]:
        return await api.booking(visitor, booking_id)

    try:
        booking = await on_behalf(request, read)
    except ApiError as exc:
        if exc.status in (400, 404):
            raise PageNotFound() from None
        raise
    try:
        tour = await api.tour(caller(request, signed_in=False), str(booking["tourId"]))
    except ApiError:
        tour = None  # withdrawn meanwhile: the form works without the seat hint
    return booking, tour


def _page(request: web.Request, shown: tuple[dict[str, Any], dict[str, Any] | None],
          values: dict[str, str], errors: dict[str, str], error: str | None, *,
          stale: bool = False, status: int = 200) -> web.Response:
    """The form for the booking and its tour (`shown`), filled with `values`."""
    booking, tour = shown
    departure = next((d for d in (tour or {}).get("departures", [])
                      if d.get("date") == booking["tourDate"]), None)
    return render(request, "change.html", {
        "booking": booking, "tour": tour, "values": values, "errors": errors, "error": error,
        "stale": stale, "freeSeats": departure.get("availableSeats") if departure else None,
        "secondsLeft": seconds_left(booking)}, status=status)


def _not_changeable(request: web.Request, booking_id: str) -> web.HTTPSeeOther:
    flash(request, _("This booking can no longer be changed: only a booking waiting for its "
                     "payment can, while its seats are held."), "error")
    return redirect(f"/bookings/{booking_id}")


async def change_form(request: web.Request) -> web.Response:
    require_user(request)
    booking_id = request.match_info["id"]
    shown = await _booking_and_tour(request, booking_id)
    if not payable(shown[0]):
        raise _not_changeable(request, booking_id)
    return _page(request, shown, values_of(shown[0]), {}, None)


async def change(request: web.Request) -> web.Response:
    require_user(request)
    fields = await form(request)
    booking_id = request.match_info["id"]
    values = {k: fields.get(k, "").strip() for k in (*FIELDS, "version")}
    errors: dict[str, str] = {}
    try:
        participants = int(values["participants"])
    except ValueError:
        participants = 0
        errors["participants"] = _("Enter how many people travel.")
    error = None
    if not errors:
        body: dict[str, Any] = {
            "participants": participants,
            "contact": {"name": values["name"], "email": values["email"],
                        **({"phone": values["phone"]} if values["phone"] else {})},
            "specialRequests": values["specialRequests"] or None}

        async def write(visitor: Caller) -> dict[str, Any]:
            return await request.app[API].change_booking(visitor, booking_id, values["version"],
                                                         body)

        try:
            changed = await on_behalf(request, write)
        except ApiError as exc:
            if exc.status == 404:
                raise PageNotFound() from None
            if exc.code == "BOOKING_NOT_CHANGEABLE":
                raise _not_changeable(request, booking_id) from None
            if exc.status in (412, 428):
                return await _changed_meanwhile(request, booking_id)
            errors, error = change_errors(exc)
        else:
            total = format_money(int(changed["totalAmount"]), str(changed["currency"]))
            flash(request, _("Your booking is changed. Its total is now %(total)s.") % {
                "total": total}, "success")
            raise redirect(f"/bookings/{booking_id}")
    # The version stays the one the visitor saw: a change made meanwhile is never overwritten.
    shown = await _booking_and_tour(request, booking_id)
    return _page(request, shown, values, errors, error or _(
        "Some fields need your attention."), status=409 if error else 400)


async def _changed_meanwhile(request: web.Request, booking_id: str) -> web.Response:
    """Another tab changed the booking since this form was shown: the booking as it stands now,
    for the visitor to make their change again on it (never over it)."""
    shown = await _booking_and_tour(request, booking_id)
    if not payable(shown[0]):
        raise _not_changeable(request, booking_id)
    return _page(request, shown, values_of(shown[0]), {}, _(
        "This booking was changed in another tab or window while you were editing it. Here it "
        "is as it stands now: check it, then make your change again."), stale=True, status=412)

