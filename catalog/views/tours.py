"""Tours and their departures: public search and detail, managers' and admins' writes."""

from __future__ import annotations

from typing import Any

import asyncpg
from aiohttp import web

from catalog import tours
from catalog.app_keys import CONFIG
from catalog.caching import cached_json
from catalog.currencies import minor_units
from catalog.errors import DepartureNotFound, TourNotFound
from catalog.schemas import (
    CategoryRef,
    Coordinates,
    DepartureIn,
    DepartureOut,
    DeparturePatch,
    DestinationRef,
    DetailQuery,
    TourDetailOut,
    TourIn,
    TourOut,
    TourPage,
    TourPatch,
    TourQuery,
)
from catalog.views import available_seats, path_id, require_manager_for
from common.auth import Identity
from common.db import POOL
from common.http import endpoint, json_response

TAGS = ("tours",)


def tour_out(row: asyncpg.Record) -> TourOut:
    return TourOut(**_tour_fields(row))


def detail_out(row: asyncpg.Record, departures: list[asyncpg.Record]) -> TourDetailOut:
    return TourDetailOut(**_tour_fields(row), departures=[departure_out(d) for d in departures])


def departure_out(row: asyncpg.Record) -> DepartureOut:
    return DepartureOut(id=row["id"], tour_id=row["tour_id"], date=row["date"],
                        capacity=row["capacity"],
                        available_seats=available_seats(row),
                        held_seats=row["held"], booked_seats=row["booked"],
                        is_active=row["is_active"])


def _tour_fields(row: asyncpg.Record) -> dict[str, Any]:
    category = None
    if row["category_id"] is not None:
        category = CategoryRef(id=row["category_id"], name=row["category_name"],
                               slug=row["category_slug"], icon=row["category_icon"])
    destination = None
    if row["destination_id"] is not None:
        coordinates = None
        if row["destination_latitude"] is not None:
            coordinates = Coordinates(lat=row["destination_latitude"],
                                      lng=row["destination_longitude"])
        destination = DestinationRef(
            id=row["destination_id"], name=row["destination_name"],
            slug=row["destination_slug"], country=row["destination_country"],
            region=row["destination_region"], coordinates=coordinates)
    return {
        "id": row["id"], "title": row["title"], "slug": row["slug"], "summary": row["summary"],
        "description": row["description"], "price": row["price"], "currency": row["currency"],
        "currency_digits": minor_units(row["currency"]), "duration": row["duration"],
        "duration_unit": row["duration_unit"],
        "difficulty": row["difficulty"], "max_group_size": row["max_group_size"],
        "ratings_average": float(row["ratings_average"]),
        "ratings_quantity": row["ratings_quantity"], "image_cover": row["image_cover"],
        "images": list(row["images"]), "category": category, "destination": destination,
        "is_active": row["is_active"], "next_departure_date": row["next_departure_date"],
        "created_at": row["created_at"], "updated_at": row["updated_at"],
    }


@endpoint(summary="Search tours", query=TourQuery, response=TourPage, errors=(401, 403),
          tags=TAGS, description=(
              "Active tours matching every filter given. `q` finds words (or word starts) in the "
              "title, destination, summary and description; `from`/`to` keep tours with an "
              "active future departure in that range. Answers carry an ETag (304 on "
              "If-None-Match) and a short max-age. includeInactive needs a manager's or an "
              "admin's token."))
async def search_tours(request: web.Request, query: TourQuery) -> web.Response:
    await require_manager_for(request, query.include_inactive)
    async with request.app[POOL].acquire() as conn:
        total, rows = await tours.search(conn, query)
    page = TourPage(items=[tour_out(row) for row in rows], page=query.page, limit=query.limit,
                    total=total)
    return cached_json(request, page, max_age=request.app[CONFIG].tours_max_age,
                       public=not query.include_inactive)


@endpoint(summary="A tour by id or slug, with its future departures and live availableSeats",
          query=DetailQuery, response=TourDetailOut, errors=(401, 403, 404), tags=TAGS)
async def get_tour(request: web.Request, query: DetailQuery) -> web.Response:
    await require_manager_for(request, query.include_inactive)
    async with request.app[POOL].acquire() as conn:
        tour, departures = await tours.detail(conn, request.match_info["tour"],
                                              include_inactive=query.include_inactive)
    return cached_json(request, detail_out(tour, departures),
                       max_age=request.app[CONFIG].tours_max_age,
                       public=not query.include_inactive)


@endpoint(summary="Create a tour", access="manager", body=TourIn, response=TourDetailOut,
          status=201, errors=(409,), tags=TAGS,
          description="409 DUPLICATE_SLUG when the slug (given, or derived from the title) is "
                      "taken; an unknown or inactive categoryId/destinationId is a 400.")
async def create_tour(request: web.Request, identity: Identity, body: TourIn) -> web.Response:
    async with request.app[POOL].acquire() as conn, conn.transaction():
        tour_id = await tours.create(conn, body)
        tour, departures = await tours.detail(conn, tour_id, include_inactive=True)
    return json_response(detail_out(tour, departures), status=201)


@endpoint(summary="Change a tour", access="manager", body=TourPatch, response=TourDetailOut,
          errors=(404, 409), tags=TAGS)
async def update_tour(request: web.Request, identity: Identity, body: TourPatch) -> web.Response:
    tour_id = path_id(request, "tour", TourNotFound())
    async with request.app[POOL].acquire() as conn, conn.transaction():
        await tours.update(conn, tour_id, body)
        tour, departures = await tours.detail(conn, tour_id, include_inactive=True)
    return json_response(detail_out(tour, departures))


@endpoint(summary="Deactivate a tour (soft delete)", access="manager", status=204, errors=(404,),
          tags=TAGS, description="Hidden from search and detail, refused to new holds; holds "
                                 "already taken stay valid. PATCH isActive true brings it back.")
async def delete_tour(request: web.Request, identity: Identity) -> web.Response:
    tour_id = path_id(request, "tour", TourNotFound())
    async with request.app[POOL].acquire() as conn:
        await tours.deactivate(conn, tour_id)
    return web.Response(status=204)


@endpoint(summary="Add a departure to a tour", access="manager", body=DepartureIn,
          response=DepartureOut, status=201, errors=(404, 409), tags=TAGS,
          description="409 DEPARTURE_EXISTS when the tour already has one that day.")
async def create_departure(request: web.Request, identity: Identity,
                           body: DepartureIn) -> web.Response:
    tour_id = path_id(request, "tour", TourNotFound())
    async with request.app[POOL].acquire() as conn, conn.transaction():
        departure = await tours.add_departure(conn, tour_id, body)
    return json_response(departure_out(departure), status=201)


@endpoint(summary="Change a departure's capacity or status", access="manager", body=DeparturePatch,
          response=DepartureOut, errors=(404, 409), tags=TAGS,
          description="409 CAPACITY_BELOW_RESERVED when the capacity would be below the seats "
                      "already held and booked.")
async def update_departure(request: web.Request, identity: Identity,
                           body: DeparturePatch) -> web.Response:
    tour_id = path_id(request, "tour", TourNotFound())
    departure_id = path_id(request, "departure", DepartureNotFound())
    async with request.app[POOL].acquire() as conn, conn.transaction():
        departure = await tours.update_departure(conn, tour_id, departure_id, body)
    return json_response(departure_out(departure))


@endpoint(summary="Deactivate a departure (soft delete)", access="manager", status=204,
          errors=(404,), tags=TAGS,
          description="No new holds that day; holds already taken stay valid.")
async def delete_departure(request: web.Request, identity: Identity) -> web.Response:
    tour_id = path_id(request, "tour", TourNotFound())
    departure_id = path_id(request, "departure", DepartureNotFound())
    async with request.app[POOL].acquire() as conn, conn.transaction():
        await tours.deactivate_departure(conn, tour_id, departure_id)
    return web.Response(status=204)
