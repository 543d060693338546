"""The operators' pages: tours and their departures, categories and destinations, every booking
with its payments (refunds, manual moves), the notification log, and the status of the services
with their circuit breakers. Managers and admins; refunds and breakers are the admins' only."""

from __future__ import annotations

import asyncio
from decimal import Decimal, InvalidOperation
from typing import Any

from aiohttp import web

from web import i18n
from web.clients import API, Caller
from web.errors import ApiError, PageNotFound
from web.i18n import gettext as _
from web.pages import render
from web.roles import may
from web.views.account import form_errors, refusal
from web.views.payments import unresolved
from web.visitor import flash, form, on_behalf, redirect, require, require_operator

TOUR_FIELDS = ("title", "summary", "description", "price", "currency", "duration",
               "durationUnit", "difficulty", "maxGroupSize", "categoryId", "destinationId")
BOOKING_FILTERS = ("status", "email", "from", "to", "tourId")
NOTIFICATION_FILTERS = ("status", "channel", "eventType", "recipient", "bookingId")


async def _as_operator(request: web.Request, call: Any) -> Any:
    require_operator(request)
    return await on_behalf(request, call)


def _amount(text: str, currency: str) -> int | None:
    try:
        value = Decimal(text.replace(",", ".").strip())
    except InvalidOperation:
        return None
    if not value.is_finite() or value < 0:
        return None
    return int(value.scaleb(i18n.minor_units(currency or "EUR")))


def _page(request: web.Request) -> int:
    try:
        return max(1, int(request.query.get("page", "1")))
    except ValueError:
        return 1


# -- home and status --------------------------------------------------------------------------

async def home(request: web.Request) -> web.Response:
    require_operator(request)
    return render(request, "operator/home.html", {})


async def status(request: web.Request) -> web.Response:
    """Every service's health; the circuit breakers too for an admin (only admins read them)."""
    api, user = request.app[API], require_operator(request)

    async def read(visitor: Caller) -> tuple[dict[str, Any], dict[str, Any] | None]:
        if not may(user, "breakers"):
            return await _health(api, visitor), None
        health, breakers = await asyncio.gather(
            _health(api, visitor), api.read(visitor, "/circuit-breaker/status"))
        return health, breakers

    health, breakers = await on_behalf(request, read)
    return render(request, "operator/status.html", {"health": health, "breakers": breakers})


async def _health(api: Any, visitor: Caller) -> dict[str, Any]:
    """The gateway's /health, which answers 503 with the same report when a service is down."""
    try:
        report: dict[str, Any] = await api.read(visitor, "/health")
    except ApiError as exc:
        return {"status": "degraded", "services": {}, "error": exc.message}
    return report


async def reset_breaker(request: web.Request) -> web.Response:
    require(request, "breakers")
    await form(request)
    service = request.match_info["service"]

    async def reset(visitor: Caller) -> dict[str, Any]:
        return await request.app[API].write(visitor, "POST", f"/circuit-breaker/reset/{service}")

    try:
        await on_behalf(request, reset)
    except ApiError as exc:
        flash(request, refusal(exc), "error")
    else:
        flash(request, _("The circuit breaker of %(name)s is closed.") % {"name": service},
              "success")
    raise redirect("/operator/status")


# -- tours and departures -----------------------------------------------------------------------

async def tours(request: web.Request) -> web.Response:
    api, page = request.app[API], _page(request)

    async def read(visitor: Caller) -> dict[str, Any]:
        return await api.read(visitor, "/api/tours", includeInactive="true", sort="title",
                              page=page, limit=50, q=request.query.get("q") or None)

    found = await _as_operator(request, read)
    return render(request, "operator/tours.html", {
        "tours": found["items"], "total": found["total"], "page": page,
        "pages": max(1, -(-found["total"] // 50)), "q": request.query.get("q", "")})


async def _reference(request: web.Request, visitor: Caller) -> tuple[list[Any], list[Any]]:
    api = request.app[API]
    categories, destinations = await asyncio.gather(
        api.read(visitor, "/api/categories", limit=100),
        api.read(visitor, "/api/destinations", limit=100))
    return categories["items"], destinations["items"]


def _tour_body(fields: dict[str, str], errors: dict[str, str]) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for name in TOUR_FIELDS:
        value = fields.get(name, "").strip()
        if name in ("summary", "categoryId", "destinationId"):
            body[name] = value or None
        elif name == "price":
            amount = _amount(value, fields.get("currency", "EUR"))
            if amount is None:
                errors["price"] = _("Enter an amount, such as 120")
            body[name] = amount
        elif name in ("duration", "maxGroupSize"):
            try:
                body[name] = int(value)
            except ValueError:
                errors[name] = _("Enter a whole number.")
        elif value:
            body[name] = value
    return body


async def tour_form(request: web.Request) -> web.Response:
    tour_id = request.match_info.get("id")
    api = request.app[API]

    async def read(visitor: Caller) -> tuple[Any, Any, Any]:
        categories, destinations = await _reference(request, visitor)
        tour = await api.read(visitor, f"/api/tours/{tour_id}",
                              includeInactive="true") if tour_id else None
        return tour, categories, destinations

    try:
        tour, categories, destinations = await _as_operator(request, read)
    except ApiError as exc:
        if exc.status in (400, 404):
            raise PageNotFound() from None
        raise
    values = dict(tour or {"currency": "EUR", "durationUnit": "days", "difficulty": "medium",
                           "maxGroupSize": 10})
    if tour:
        values["price"] = str(i18n.to_major(tour["price"], tour["currency"]))
        values["categoryId"] = (tour.get("category") or {}).get("id", "")
        values["destinationId"] = (tour.get("destination") or {}).get("id", "")
    return render(request, "operator/tour.html", {
        "tour": tour, "values": values, "errors": {}, "categories": categories,
        "destinations": destinations})


async def save_tour(request: web.Request) -> web.Response:
    require_operator(request)
    fields = await form(request)
    tour_id = request.match_info.get("id")
    errors: dict[str, str] = {}
    body = _tour_body(fields, errors)
    api = request.app[API]
    if not errors:
        async def write(visitor: Caller) -> dict[str, Any]:
            if tour_id:
                return await api.write(visitor, "PATCH", f"/api/tours/{tour_id}", body)
            return await api.write(visitor, "POST", "/api/tours",
                                   {k: v for k, v in body.items() if v is not None})

        try:
            saved = await on_behalf(request, write)
        except ApiError as exc:
            errors = form_errors(exc) or {"form": refusal(exc)}
        else:
            flash(request, _("The tour is saved."), "success")
            raise redirect(f"/operator/tours/{saved['id']}")

    async def again(visitor: Caller) -> tuple[Any, Any, Any]:
        categories, destinations = await _reference(request, visitor)
        tour = await api.read(visitor, f"/api/tours/{tour_id}",
                              includeInactive="true") if tour_id else None
        return tour, categories, destinations

    tour, categories, destinations = await on_behalf(request, again)
    return render(request, "operator/tour.html", {
        "tour": tour, "values": fields, "errors": errors, "categories": categories,
        "destinations": destinations}, status=400)


async def tour_active(request: web.Request) -> web.Response:
    require_operator(request)
    fields = await form(request)
    tour_id = request.match_info["id"]
    active = fields.get("active") == "true"

    async def write(visitor: Caller) -> dict[str, Any]:
        if active:
            return await request.app[API].write(visitor, "PATCH", f"/api/tours/{tour_id}",
                                                {"isActive": True})
        return await request.app[API].write(visitor, "DELETE", f"/api/tours/{tour_id}")

    await _change(request, write, _("The tour is open to bookings.") if active
                  else _("The tour is withdrawn: travellers no longer see it."))
    raise redirect(f"/operator/tours/{tour_id}")


async def add_departure(request: web.Request) -> web.Response:
    require_operator(request)
    fields = await form(request)
    tour_id = request.match_info["id"]
    body: dict[str, Any] = {"date": fields.get("date", "")}
    if fields.get("capacity", "").strip():
        try:
            body["capacity"] = int(fields["capacity"])
        except ValueError:
            flash(request, _("Enter a whole number."), "error")
            raise redirect(f"/operator/tours/{tour_id}") from None

    async def write(visitor: Caller) -> dict[str, Any]:
        return await request.app[API].write(visitor, "POST",
                                            f"/api/tours/{tour_id}/departures", body)

    await _change(request, write, _("The departure is added."))
    raise redirect(f"/operator/tours/{tour_id}")


async def change_departure(request: web.Request) -> web.Response:
    require_operator(request)
    fields = await form(request)
    tour_id, departure_id = request.match_info["id"], request.match_info["departure"]
    body: dict[str, Any] = {}
    if "capacity" in fields:
        try:
            body["capacity"] = int(fields["capacity"])
        except ValueError:
            flash(request, _("Enter a whole number."), "error")
            raise redirect(f"/operator/tours/{tour_id}") from None
    if "active" in fields:
        body["isActive"] = fields["active"] == "true"

    async def write(visitor: Caller) -> dict[str, Any]:
        return await request.app[API].write(
            visitor, "PATCH", f"/api/tours/{tour_id}/departures/{departure_id}", body)

    await _change(request, write, _("The departure is changed."))
    raise redirect(f"/operator/tours/{tour_id}")


async def _change(request: web.Request, write: Any, done: str) -> None:
    try:
        await on_behalf(request, write)
    except ApiError as exc:
        details = exc.field_errors()
        flash(request, "; ".join(details.values()) if details else refusal(exc), "error")
    else:
        flash(request, done, "success")


# -- categories and destinations ----------------------------------------------------------------

REFERENCE = {"categories": ("name", "description", "icon"),
             "destinations": ("name", "country", "region", "description")}


async def reference(request: web.Request) -> web.Response:
    kind = request.match_info["kind"]

    async def read(visitor: Caller) -> dict[str, Any]:
        return await request.app[API].read(visitor, f"/api/{kind}", includeInactive="true",
                                           limit=100)

    found = await _as_operator(request, read)
    return render(request, "operator/reference.html", {
        "kind": kind, "items": found["items"], "fields": REFERENCE[kind]})


async def save_reference(request: web.Request) -> web.Response:
    require_operator(request)
    fields = await form(request)
    kind, item_id = request.match_info["kind"], request.match_info.get("id")
    if "active" in fields:
        body: dict[str, Any] = {"isActive": fields["active"] == "true"}
    else:
        body = {k: fields[k].strip() for k in REFERENCE[kind]
                if fields.get(k, "").strip()}

    async def write(visitor: Caller) -> dict[str, Any]:
        if item_id:
            return await request.app[API].write(visitor, "PATCH", f"/api/{kind}/{item_id}",
                                                body)
        return await request.app[API].write(visitor, "POST", f"/api/{kind}", body)

    await _change(request, write, _("Saved."))
    raise redirect(f"/operator/{kind}")


# -- bookings and payments ----------------------------------------------------------------------

async def bookings(request: web.Request) -> web.Response:
    page = _page(request)
    chosen = {k: request.query.get(k, "").strip() for k in BOOKING_FILTERS}

    async def read(visitor: Caller) -> dict[str, Any]:
        return await request.app[API].read(visitor, "/api/bookings", page=page, limit=50,
                                           **{k: v for k, v in chosen.items() if v})

    error = None
    try:
        found = await _as_operator(request, read)
    except ApiError as exc:
        if exc.status != 400:
            raise
        found, error = {"items": [], "total": 0}, "; ".join(exc.field_errors().values())
    return render(request, "operator/bookings.html", {
        "items": found["items"], "total": found["total"], "page": page,
        "pages": max(1, -(-found["total"] // 50)), "chosen": chosen, "error": error})


async def booking(request: web.Request) -> web.Response:
    booking_id = request.match_info["id"]
    api = request.app[API]

    async def read(visitor: Caller) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        found, payments = await asyncio.gather(api.booking(visitor, booking_id),
                                               api.booking_payments(visitor, booking_id))
        return found, payments

    try:
        found, payments = await _as_operator(request, read)
    except ApiError as exc:
        if exc.status in (400, 404):
            raise PageNotFound() from None
        raise
    for payment in payments:
        payment["refundable"], payment["refundCurrency"] = refundable(payment)
        payment["unresolved"] = unresolved(payment)
    return render(request, "operator/booking.html", {"booking": found, "payments": payments})


def refundable(payment: dict[str, Any]) -> tuple[int, str]:
    """What a refund of `payment` may still give back, and in which currency: what was paid,
    or for an intent paid at another amount (mismatched), what Stripe took for it."""
    refunded = int(payment.get("refundedAmount") or 0)
    if payment["status"] in ("succeeded", "partially_refunded"):
        return payment["amount"] - refunded, payment["currency"]
    if payment["status"] == "mismatched":
        taken = [a for a in payment.get("anomalies") or [] if a["kind"] == "amount_mismatch"]
        if taken:
            return max(0, taken[-1]["observedAmount"] - refunded), taken[-1]["observedCurrency"]
    return 0, payment["currency"]


async def booking_status(request: web.Request) -> web.Response:
    require_operator(request)
    fields = await form(request)
    booking_id = request.match_info["id"]
    field = "paymentStatus" if fields.get("field") == "paymentStatus" else "status"
    path = f"/api/bookings/{booking_id}/" + ("payment-status" if field == "paymentStatus"
                                             else "status")
    body: dict[str, Any] = {field: fields.get("value", "")}
    if field == "status" and fields.get("reason", "").strip():
        body["reason"] = fields["reason"].strip()

    async def write(visitor: Caller) -> dict[str, Any]:
        return await request.app[API].write(visitor, "PATCH", path, body)

    await _change(request, write, _("The booking is changed."))
    raise redirect(f"/operator/bookings/{booking_id}")


async def refund(request: web.Request) -> web.Response:
    require(request, "refund")
    fields = await form(request)
    payment_id, booking_id = request.match_info["id"], fields.get("booking", "")
    amount = None
    if fields.get("amount", "").strip():
        amount = _amount(fields["amount"], fields.get("currency", "EUR"))
        if amount is None or amount <= 0:
            flash(request, _("Enter an amount, such as 120"), "error")
            raise redirect(f"/operator/bookings/{booking_id}")

    async def run(visitor: Caller) -> dict[str, Any]:
        return await request.app[API].refund(visitor, payment_id, amount,
                                             fields.get("reason", "").strip() or None)

    await _change(request, run, _("The refund is sent."))
    raise redirect(f"/operator/bookings/{booking_id}")


# -- notifications ------------------------------------------------------------------------------

async def notifications(request: web.Request) -> web.Response:
    page = _page(request)
    chosen = {k: request.query.get(k, "").strip() for k in NOTIFICATION_FILTERS}

    async def read(visitor: Caller) -> dict[str, Any]:
        return await request.app[API].read(visitor, "/api/notifications", page=page, limit=50,
                                           **{k: v for k, v in chosen.items() if v})

    found = await _as_operator(request, read)
    return render(request, "operator/notifications.html", {
        "items": found["items"], "total": found["total"], "page": page,
        "pages": max(1, -(-found["total"] // 50)), "chosen": chosen})
