"""The reference data tours are filed under: categories and destinations, read by everyone and
changed by admins. Deleting is deactivating, and is refused while active tours still use one."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from catalog import db
from catalog.errors import CategoryNotFound, DestinationNotFound, DuplicateSlug, ReferenceInUse
from catalog.schemas import (
    CategoryIn,
    CategoryPatch,
    DestinationIn,
    DestinationPatch,
    DestinationQuery,
    PageQuery,
)
from catalog.slugs import lookup_key, slugify


async def categories(conn: asyncpg.Connection,
                     query: PageQuery) -> tuple[int, list[asyncpg.Record]]:
    total = await db.count_categories(conn, include_inactive=query.include_inactive)
    rows = await db.list_categories(conn, include_inactive=query.include_inactive,
                                    limit=query.limit, offset=(query.page - 1) * query.limit)
    return total, rows


async def category(conn: asyncpg.Connection, key: str, *,
                   include_inactive: bool) -> asyncpg.Record:
    lookup = lookup_key(key)
    found = None if lookup is None else await db.category(conn, lookup)
    if found is None or not (found["is_active"] or include_inactive):
        raise CategoryNotFound(details={"category": key})
    return found


async def create_category(conn: asyncpg.Connection, body: CategoryIn) -> asyncpg.Record:
    slug = body.slug or slugify(body.name)
    created = await db.insert_category(conn, name=body.name, slug=slug,
                                       description=body.description, icon=body.icon,
                                       is_active=body.is_active)
    if created is None:
        raise DuplicateSlug(slug)
    return created


async def update_category(conn: asyncpg.Connection, category_id: uuid.UUID,
                          patch: CategoryPatch) -> asyncpg.Record:
    fields = patch.model_dump(exclude_unset=True)
    if fields.get("is_active") is False:
        await _refuse_if_used(conn, "category", category_id=category_id)
    try:
        updated = await db.update_category(conn, category_id, fields=fields)
    except asyncpg.UniqueViolationError:
        raise DuplicateSlug(fields["slug"]) from None
    if updated is None:
        raise CategoryNotFound(details={"category": str(category_id)})
    return updated


async def destinations(conn: asyncpg.Connection,
                       query: DestinationQuery) -> tuple[int, list[asyncpg.Record]]:
    total = await db.count_destinations(conn, include_inactive=query.include_inactive,
                                        country=query.country)
    rows = await db.list_destinations(conn, include_inactive=query.include_inactive,
                                      country=query.country, limit=query.limit,
                                      offset=(query.page - 1) * query.limit)
    return total, rows


async def destination(conn: asyncpg.Connection, key: str, *,
                      include_inactive: bool) -> asyncpg.Record:
    lookup = lookup_key(key)
    found = None if lookup is None else await db.destination(conn, lookup)
    if found is None or not (found["is_active"] or include_inactive):
        raise DestinationNotFound(details={"destination": key})
    return found


async def create_destination(conn: asyncpg.Connection, body: DestinationIn) -> asyncpg.Record:
    slug = body.slug or slugify(body.name)
    point = body.coordinates
    created = await db.insert_destination(
        conn, name=body.name, slug=slug, country=body.country, region=body.region,
        description=body.description, image=body.image,
        latitude=point.lat if point else None, longitude=point.lng if point else None,
        is_active=body.is_active)
    if created is None:
        raise DuplicateSlug(slug)
    return created


async def update_destination(conn: asyncpg.Connection, destination_id: uuid.UUID,
                             patch: DestinationPatch) -> asyncpg.Record:
    fields: dict[str, Any] = patch.model_dump(exclude_unset=True, exclude={"coordinates"})
    if "coordinates" in patch.model_fields_set:
        point = patch.coordinates
        fields["latitude"] = point.lat if point else None
        fields["longitude"] = point.lng if point else None
    if fields.get("is_active") is False:
        await _refuse_if_used(conn, "destination", destination_id=destination_id)
    try:
        updated = await db.update_destination(conn, destination_id, fields=fields)
    except asyncpg.UniqueViolationError:
        raise DuplicateSlug(fields["slug"]) from None
    if updated is None:
        raise DestinationNotFound(details={"destination": str(destination_id)})
    return updated


async def _refuse_if_used(conn: asyncpg.Connection, kind: str, **link: uuid.UUID) -> None:
    # Checked, then changed: a tour filed under it at that very moment would keep pointing at an
    # inactive entry, which still shows on the tour. Admin-paced writes make that acceptable.
    active = await db.count_active_tours_in(conn, **link)
    if active:
        raise ReferenceInUse(kind, active)
