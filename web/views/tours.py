"""Home, the tour list with its search, filters, sort and pages, and a tour with its departures."""

from __future__ import annotations

import asyncio
import math
from decimal import Decimal, InvalidOperation
from typing import Any

from aiohttp import web

from web import i18n
from web.clients import API, Caller
from web.errors import ApiError, PageNotFound
from web.i18n import gettext as _
from web.pages import render
from web.seats import rows
from web.settings import SETTINGS
from web.visitor import caller

PAGE_SIZE = 9
SORTS = ("rating", "startDate", "price", "-price", "title")
DIFFICULTIES = ("easy", "medium", "difficult")
FILTERS = ("q", "destination", "category", "difficulty", "from", "to", "sort")


async def home(request: web.Request) -> web.Response:
    api, visitor = request.app[API], caller(request, signed_in=False)
    featured, upcoming, categories = await asyncio.gather(
        api.tours_kept(visitor, sort="rating", limit=6),
        api.tours_kept(visitor, sort="startDate", limit=4), api.categories(visitor))
    cards = await with_seats(api, visitor, featured["items"])
    return render(request, "home.html", {
        "featured": cards, "upcoming": upcoming["items"], "categories": categories})


async def with_seats(api: Any, visitor: Caller, tours: list[dict[str, Any]],
                     ) -> list[dict[str, Any]]:
    """Each tour with `nextDeparture`, the departure its card shows seats for (read from the
    tour itself, in parallel: the list does not carry seats)."""
    wanted = [t for t in tours if t.get("nextDepartureDate")]
    details = await asyncio.gather(*(api.tour_kept(visitor, t["id"]) for t in wanted),
                                   return_exceptions=True)
    found = {d["id"]: d for d in details if isinstance(d, dict)}
    cards = []
    for tour in tours:
        detail = found.get(tour["id"], {})
        departure = next((d for d in detail.get("departures", [])
                          if d["date"] == tour.get("nextDepartureDate")), None)
        cards.append({**tour, "nextDeparture": departure})
    return cards


def _minor(value: str, currency: str) -> int | None:
    try:
        amount = Decimal(value.replace(",", ".").strip())
    except InvalidOperation:
        return None
    if not amount.is_finite() or amount < 0:
        return None
    return int(amount.scaleb(i18n.minor_units(currency)))


async def tour_list(request: web.Request) -> web.Response:
    api, visitor = request.app[API], caller(request, signed_in=False)
    base = request.app[SETTINGS].base_currency
    query = request.query
    chosen = {k: query.get(k, "").strip() for k in (*FILTERS, "minPrice", "maxPrice")}
    params: dict[str, Any] = {k: chosen[k] for k in FILTERS if chosen[k]}
    errors: dict[str, str] = {}
    for field in ("minPrice", "maxPrice"):
        if chosen[field]:
            amount = _minor(chosen[field], base)
            if amount is None:
                errors[field] = _("Enter an amount, such as 120")
            else:
                params[field] = amount
    if params.get("sort") not in (None, *SORTS):
        params.pop("sort")
    if params.get("difficulty") not in (None, *DIFFICULTIES):
        params.pop("difficulty")
    try:
        page = max(1, int(query.get("page", "1")))
    except ValueError:
        page = 1
    listing, destinations, categories = await asyncio.gather(
        _search(api, visitor, params, page, errors), api.destinations(visitor),
        api.categories(visitor))
    cards = await with_seats(api, visitor, listing["items"])
    pages = max(1, math.ceil(listing["total"] / PAGE_SIZE))
    return render(request, "tours.html", {
        "tours": cards, "total": listing["total"], "page": min(page, pages), "pages": pages,
        "chosen": chosen, "errors": errors, "destinations": destinations,
        "categories": categories, "sorts": SORTS, "difficulties": DIFFICULTIES,
        "base_currency": base, "page_link": _page_link(request)},
        status=400 if errors else 200)


async def _search(api: Any, visitor: Caller, params: dict[str, Any], page: int,
                  errors: dict[str, str]) -> dict[str, Any]:
    """The page of results; the API's refusal of a filter is shown next to that filter."""
    try:
        result: dict[str, Any] = await api.tours_kept(visitor, **params, page=page,
                                                      limit=PAGE_SIZE)
    except ApiError as exc:
        if exc.status != 400:
            raise
        for field, message in exc.field_errors().items():
            errors[field] = message
        return {"items": [], "total": 0}
    return result


def _page_link(request: web.Request) -> Any:
    def link(page: int) -> str:
        return str(request.rel_url.update_query(page=page))

    return link


async def tour_detail(request: web.Request) -> web.Response:
    api, visitor = request.app[API], caller(request, signed_in=False)
    try:
        tour = await api.tour(visitor, request.match_info["key"])
    except ApiError as exc:
        if exc.status in (400, 404):
            raise PageNotFound() from None
        raise
    return render(request, "tour.html", {"tour": tour,
                                         "departures": rows(tour.get("departures", []))})
