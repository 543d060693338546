"""Paying a pending booking: with the local Stripe stand-in, a test-card form confirmed here,
server-side; with a real publishable key, Stripe's Payment Element. Then the page that follows
the booking until it is confirmed."""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web

from common.config import is_placeholder
from web.addresses import visitor_host, visitor_proto
from web.clients import API, Caller
from web.errors import ApiError
from web.i18n import gettext as _
from web.middleware import STRIPE
from web.pages import render
from web.settings import SETTINGS
from web.standin import CARDS, CardRefused
from web.views.bookings import _booking_and_payments, payable, seconds_left, state
from web.visitor import caller, form, on_behalf, redirect

TEST_CARDS = (("4242 4242 4242 4242", "success"), ("4000 0000 0000 0002", "declined"),
              ("4000 0000 0000 9995", "insufficient_funds"))


async def _mode(request: web.Request) -> tuple[str, str | None]:
    """`test-cards` (the stand-in confirms them here), `stripe` (a real publishable key) or
    `unavailable`; and the publishable key for Stripe.js."""
    config = await request.app[API].payment_config(caller(request, signed_in=False))
    key = str(config.get("publishableKey") or "")
    if key and not is_placeholder(key):
        return "stripe", key
    if request.app[CARDS] is not None:
        return "test-cards", None
    return "unavailable", None


def decline_message(refused: CardRefused) -> str:
    reasons = {
        "insufficient_funds": _("Your card has insufficient funds."),
        "expired_card": _("Your card has expired."),
        "incorrect_cvc": _("The security code (CVC) is not right."),
        "incorrect_number": _("The card number is not right."),
        "invalid_expiry_year": _("The expiry date is not right."),
        "invalid_expiry_month": _("The expiry date is not right."),
        "invalid_cvc": _("The security code (CVC) is not right."),
        "processing_error": _("The payment could not be processed. Please try again."),
        "lost_card": _("Your card was declined."),
        "stolen_card": _("Your card was declined."),
    }
    return reasons.get(refused.decline_code or "", reasons.get(
        refused.code, _("Your card was declined.")))


async def checkout_page(request: web.Request) -> web.Response:
    booking, payments = await _booking_and_payments(request)
    return await _checkout(request, booking, payments, error=None)


async def _checkout(request: web.Request, booking: dict[str, Any],
                    payments: list[dict[str, Any]], *, error: str | None,
                    status: int = 200) -> web.Response:
    if booking["status"] == "confirmed":
        raise redirect(f"/bookings/{booking['id']}")
    mode, key = await _mode(request)
    intent = None
    if mode == "stripe" and payable(booking):
        request[STRIPE] = True
        intent = await _intent(request, booking["id"])
    return render(request, "checkout.html", {
        "booking": booking, "payments": payments, "mode": mode, "publishableKey": key,
        "clientSecret": intent.get("clientSecret") if intent else None,
        "secondsLeft": seconds_left(booking), "payable": payable(booking), "error": error,
        "testCards": TEST_CARDS, "returnUrl": _return_url(request, booking["id"])},
        status=status)


async def _intent(request: web.Request, booking_id: str) -> dict[str, Any]:
    async def create(visitor: Caller) -> dict[str, Any]:
        # payments answers the booking's open intent again; a fresh key never makes a second.
        return await request.app[API].create_intent(visitor, booking_id, str(uuid.uuid4()))

    return await on_behalf(request, create)


def _return_url(request: web.Request, booking_id: str) -> str:
    return (f"{visitor_proto(request)}://{visitor_host(request)}/payment/success"
            f"?booking={booking_id}")


async def pay(request: web.Request) -> web.Response:
    fields = await form(request)
    booking, payments = await _booking_and_payments(request)
    cards = request.app[CARDS]
    if not payable(booking) or cards is None:
        return await _checkout(request, booking, payments, error=None)
    try:
        intent = await _intent(request, booking["id"])
    except ApiError as exc:
        if exc.code == "BOOKING_ALREADY_PAID":
            raise redirect(f"/payment/success?booking={booking['id']}") from None
        message = (_("The hold on your seats has ended; this booking can no longer be paid.")
                   if exc.code == "BOOKING_NOT_PAYABLE" else exc.message)
        return await _checkout(request, booking, payments, error=message, status=409)
    expiry = fields.get("expiry", "").replace(" ", "")
    month, _slash, year = expiry.partition("/")
    try:
        await cards.confirm(
            intent["paymentIntentId"], number=fields.get("number", "").replace(" ", ""),
            exp_month=month, exp_year=("20" + year) if len(year) == 2 else year,
            cvc=fields.get("cvc", "").strip(), return_url=_return_url(request, booking["id"]))
    except CardRefused as refused:
        return await _checkout(request, booking, payments, error=decline_message(refused),
                               status=402)
    # As Stripe comes back from a confirmation: the card was taken, whatever an earlier decline
    # still says in our records until the webhook of this one is applied.
    raise redirect(f"/payment/success?booking={booking['id']}"
                   f"&payment_intent={intent['paymentIntentId']}&redirect_status=succeeded")


async def payment_success(request: web.Request) -> web.Response:
    booking, payments = await _booking_and_payments(request)
    current = state(booking, payments)
    card_taken = request.query.get("redirect_status") == "succeeded"
    following = booking["status"] == "pending" and (card_taken or (
        current["payment"] is not None
        and current["payment"]["status"] in ("pending", "processing", "succeeded")))
    return render(request, "payment_success.html", {
        "booking": booking, "state": current, "following": following,
        "cardTaken": card_taken,
        "pollInterval": request.app[SETTINGS].poll_interval})
