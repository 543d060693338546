"""Categories and destinations: public reads, managers' and admins' writes."""

from __future__ import annotations

import asyncpg
from aiohttp import web

from catalog import reference
from catalog.app_keys import CONFIG
from catalog.caching import cached_json
from catalog.errors import CategoryNotFound, DestinationNotFound
from catalog.schemas import (
    CategoryIn,
    CategoryOut,
    CategoryPage,
    CategoryPatch,
    Coordinates,
    DestinationIn,
    DestinationOut,
    DestinationPage,
    DestinationPatch,
    DestinationQuery,
    DetailQuery,
    PageQuery,
)
from catalog.views import path_id, require_manager_for
from common.auth import Identity
from common.db import POOL
from common.http import endpoint, json_response

TAGS = ("reference data",)
IN_USE = ("DELETE and isActive false are refused with 409 <KIND>_IN_USE while active tours use "
          "it.")


def category_out(row: asyncpg.Record) -> CategoryOut:
    return CategoryOut(**dict(row))


def destination_out(row: asyncpg.Record) -> DestinationOut:
    fields = dict(row)
    latitude, longitude = fields.pop("latitude"), fields.pop("longitude")
    coordinates = None if latitude is None else Coordinates(lat=latitude, lng=longitude)
    return DestinationOut(**fields, coordinates=coordinates)


@endpoint(summary="List categories", query=PageQuery, response=CategoryPage, errors=(401, 403),
          tags=TAGS)
async def list_categories(request: web.Request, query: PageQuery) -> web.Response:
    await require_manager_for(request, query.include_inactive)
    async with request.app[POOL].acquire() as conn:
        total, rows = await reference.categories(conn, query)
    page = CategoryPage(items=[category_out(row) for row in rows], page=query.page,
                        limit=query.limit, total=total)
    return cached_json(request, page, max_age=request.app[CONFIG].reference_max_age,
                       public=not query.include_inactive)


@endpoint(summary="A category by id or slug", query=DetailQuery, response=CategoryOut,
          errors=(401, 403, 404), tags=TAGS)
async def get_category(request: web.Request, query: DetailQuery) -> web.Response:
    await require_manager_for(request, query.include_inactive)
    async with request.app[POOL].acquire() as conn:
        row = await reference.category(conn, request.match_info["category"],
                                       include_inactive=query.include_inactive)
    return cached_json(request, category_out(row),
                       max_age=request.app[CONFIG].reference_max_age,
                       public=not query.include_inactive)


@endpoint(summary="Create a category", access="manager", body=CategoryIn, response=CategoryOut,
          status=201, errors=(409,), tags=TAGS)
async def create_category(request: web.Request, identity: Identity,
                          body: CategoryIn) -> web.Response:
    async with request.app[POOL].acquire() as conn:
        row = await reference.create_category(conn, body)
    return json_response(category_out(row), status=201)


@endpoint(summary="Change a category", access="manager", body=CategoryPatch, response=CategoryOut,
          errors=(404, 409), tags=TAGS, description=IN_USE)
async def update_category(request: web.Request, identity: Identity,
                          body: CategoryPatch) -> web.Response:
    category_id = path_id(request, "category", CategoryNotFound())
    async with request.app[POOL].acquire() as conn, conn.transaction():
        row = await reference.update_category(conn, category_id, body)
    return json_response(category_out(row))


@endpoint(summary="Deactivate a category (soft delete)", access="manager", status=204,
          errors=(404, 409), tags=TAGS, description=IN_USE)
async def delete_category(request: web.Request, identity: Identity) -> web.Response:
    category_id = path_id(request, "category", CategoryNotFound())
    async with request.app[POOL].acquire() as conn, conn.transaction():
        await reference.update_category(conn, category_id, CategoryPatch(is_active=False))
    return web.Response(status=204)


@endpoint(summary="List destinations", query=DestinationQuery, response=DestinationPage,
          errors=(401, 403), tags=TAGS)
async def list_destinations(request: web.Request, query: DestinationQuery) -> web.Response:
    await require_manager_for(request, query.include_inactive)
    async with request.app[POOL].acquire() as conn:
        total, rows = await reference.destinations(conn, query)
    page = DestinationPage(items=[destination_out(row) for row in rows], page=query.page,
                           limit=query.limit, total=total)
    return cached_json(request, page, max_age=request.app[CONFIG].reference_max_age,
                       public=not query.include_inactive)


@endpoint(summary="A destination by id or slug", query=DetailQuery, response=DestinationOut,
          errors=(401, 403, 404), tags=TAGS)
async def get_destination(request: web.Request, query: DetailQuery) -> web.Response:
    await require_manager_for(request, query.include_inactive)
    async with request.app[POOL].acquire() as conn:
        row = await reference.destination(conn, request.match_info["destination"],
                                          include_inactive=query.include_inactive)
    return cached_json(request, destination_out(row),
                       max_age=request.app[CONFIG].reference_max_age,
                       public=not query.include_inactive)


@endpoint(summary="Create a destination", access="manager", body=DestinationIn,
          response=DestinationOut, status=201, errors=(409,), tags=TAGS)
async def create_destination(request: web.Request, identity: Identity,
                             body: DestinationIn) -> web.Response:
    async with request.app[POOL].acquire() as conn:
        row = await reference.create_destination(conn, body)
    return json_response(destination_out(row), status=201)


@endpoint(summary="Change a destination", access="manager", body=DestinationPatch,
          response=DestinationOut, errors=(404, 409), tags=TAGS, description=IN_USE)
async def update_destination(request: web.Request, identity: Identity,
                             body: DestinationPatch) -> web.Response:
    destination_id = path_id(request, "destination", DestinationNotFound())
    async with request.app[POOL].acquire() as conn, conn.transaction():
        row = await reference.update_destination(conn, destination_id, body)
    return json_response(destination_out(row))


@endpoint(summary="Deactivate a destination (soft delete)", access="manager", status=204,
          errors=(404, 409), tags=TAGS, description=IN_USE)
async def delete_destination(request: web.Request, identity: Identity) -> web.Response:
    destination_id = path_id(request, "destination", DestinationNotFound())
    async with request.app[POOL].acquire() as conn, conn.transaction():
        await reference.update_destination(conn, destination_id,
                                           DestinationPatch(is_active=False))
    return web.Response(status=204)
