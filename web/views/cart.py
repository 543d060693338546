"""The cart: departures a visitor keeps to book later, kept in their session; each is then booked
and paid on its own."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from web.clients import API
from web.errors import ApiError
from web.i18n import gettext as _
from web.pages import render
from web.visitor import caller, flash, form, redirect, safe_next, session

MAX_ITEMS = 20


def item_key(tour_id: str, day: str) -> str:
    return f"{tour_id}:{day}"


async def cart_page(request: web.Request) -> web.Response:
    items = list(session(request).get("cart", []))
    api, visitor = request.app[API], caller(request, signed_in=False)
    ids = sorted({item["tourId"] for item in items})
    tours = await asyncio.gather(*(api.tour(visitor, i) for i in ids), return_exceptions=True)
    by_id = {t["id"]: t for t in tours if isinstance(t, dict)}
    shown = []
    for item in items:
        tour = by_id.get(item["tourId"])
        departure = next((d for d in (tour or {}).get("departures", [])
                          if d["date"] == item["date"]), None)
        shown.append({**item, "key": item_key(item["tourId"], item["date"]), "tour": tour,
                      "departure": departure})
    return render(request, "cart.html", {"items": shown})


async def add(request: web.Request) -> web.Response:
    fields = await form(request)
    tour_id, day = fields.get("tourId", ""), fields.get("date", "")
    try:
        participants = max(1, int(fields.get("participants", "1")))
        tour = await request.app[API].tour(caller(request, signed_in=False), tour_id)
    except (ValueError, ApiError):
        flash(request, _("This departure cannot be saved."), "error")
        raise redirect(safe_next(fields.get("next"), "/cart")) from None
    if not any(d["date"] == day for d in tour.get("departures", [])):
        flash(request, _("This departure cannot be saved."), "error")
        raise redirect(safe_next(fields.get("next"), "/cart"))
    current = session(request)
    items: list[dict[str, Any]] = [i for i in current.get("cart", [])
                                   if item_key(i["tourId"], i["date"]) != item_key(tour_id, day)]
    items.append({"tourId": tour["id"], "slug": tour["slug"], "title": tour["title"],
                  "date": day, "participants": min(participants, tour["maxGroupSize"]),
                  "price": tour["price"], "currency": tour["currency"]})
    current.set("cart", items[-MAX_ITEMS:])
    flash(request, _("Saved in your cart for later."), "success")
    raise redirect(safe_next(fields.get("next"), "/cart"))


async def remove(request: web.Request) -> web.Response:
    fields = await form(request)
    current = session(request)
    current.set("cart", [i for i in current.get("cart", [])
                         if item_key(i["tourId"], i["date"]) != fields.get("key")])
    flash(request, _("Removed from your cart."))
    raise redirect("/cart")


def forget(request: web.Request, tour_id: str, day: str) -> None:
    """A departure booked from the cart leaves it."""
    current = session(request)
    items = current.get("cart", [])
    kept = [i for i in items if item_key(i["tourId"], i["date"]) != item_key(tour_id, day)]
    if len(kept) != len(items):
        current.set("cart", kept)
