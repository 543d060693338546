"""Categories and destinations: listed and found by everyone, changed by admins, never deleted
for real, and never taken away from under active tours."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from yarl import URL

from catalog.tests.conftest import Api, token


async def test_categories_are_listed_paged_and_found_by_id_or_slug(api: Api):
    word = token()
    made = [await api.create("/api/categories", {
        "name": f"{word} {name}", "description": "Tours for you.", "icon": "leaf"})
        for name in ("b", "a")]
    assert made[1]["slug"] == f"{word}-a"
    listing = await api.get("/api/categories", params={"limit": "100"})
    names = [c["name"] for c in listing["items"]]
    assert names == sorted(names) and f"{word} a" in names
    assert (listing["page"], listing["limit"]) == (1, 100) and listing["total"] >= 2
    for key in (made[0]["id"], made[0]["slug"]):
        assert await api.get(f"/api/categories/{key}") == made[0]
    resp = await api.client.get(f"/api/categories/{made[0]['slug']}")
    assert resp.headers["Cache-Control"] == "public, max-age=60" and resp.headers["ETag"]
    for key in (str(uuid.uuid4()), "no-such-category", "%00", "a%00b"):
        missing = await api.client.get(URL(f"/api/categories/{key}", encoded=True))
        assert (missing.status, (await missing.json())["error"]) == (404, "CATEGORY_NOT_FOUND")


async def test_destinations_have_coordinates_and_filter_by_country(api: Api):
    country = f"Atlantis {token()}"
    created = await api.create("/api/destinations", {
        "name": "Poseidonia", "country": country, "region": "Outer Ring",
        "coordinates": {"lat": -12.5, "lng": 170.25}, "image": "/img/poseidonia.jpg",
        "slug": f"poseidonia-{token()}"})
    assert created["coordinates"] == {"lat": -12.5, "lng": 170.25}
    found = await api.get("/api/destinations", params={"country": country.upper()})
    assert [d["id"] for d in found["items"]] == [created["id"]] and found["total"] == 1
    assert await api.get(f"/api/destinations/{created['slug']}") == created
    for key in ("%00", "no%00where"):
        missing = await api.client.get(URL(f"/api/destinations/{key}", encoded=True))
        assert (missing.status, (await missing.json())["error"]) == (404,
                                                                     "DESTINATION_NOT_FOUND")
    cleared = await api.client.patch(f"/api/destinations/{created['id']}", headers=api.admin,
                                     json={"coordinates": None, "region": "Inner Ring"})
    body = await cleared.json()
    assert (body["coordinates"], body["region"], body["name"]) == (None, "Inner Ring",
                                                                   "Poseidonia")


async def test_a_renamed_destination_is_searched_under_its_new_name(api: Api):
    place = await api.create("/api/destinations", {"name": f"Oldtown {token()}",
                                                   "country": "Freedonia"})
    tour = await api.tour(destinationId=place["id"])
    new_name = f"Newtown {token()}"
    await api.client.patch(f"/api/destinations/{place['id']}", json={"name": new_name},
                           headers=api.admin)
    found = await api.get("/api/tours", params={"q": new_name})
    assert [t["id"] for t in found["items"]] == [tour["id"]]
    assert found["items"][0]["destination"]["name"] == new_name


@pytest.mark.parametrize(("path", "body", "fields"), [
    ("/api/categories", {}, {"name"}),
    ("/api/categories", {"name": "x"}, {"name"}),
    ("/api/categories", {"name": "Fine", "slug": "Bad Slug"}, {"slug"}),
    ("/api/categories", {"name": "Fine", "isActive": "maybe"}, {"isActive"}),
    ("/api/destinations", {"name": "Fine"}, {"country"}),
    ("/api/destinations", {"name": "Fine", "country": "X", "coordinates": {"lat": 91, "lng": 0}},
     {"country", "coordinates.lat"}),
    ("/api/destinations", {"name": "Fine", "country": "Fine", "coordinates": {"lat": 1}},
     {"coordinates.lng"}),
    ("/api/destinations", {"name": "Fine", "country": "Fine", "image": "ftp://x"}, {"image"}),
    ("/api/destinations", {"name": "Fine", "country": "Fine",
                           "coordinates": {"lat": "48.8", "lng": True}},
     {"coordinates.lat", "coordinates.lng"}),
])
async def test_reference_validation_names_each_bad_field(api: Api, path, body, fields):
    resp = await api.client.post(path, json=body, headers=api.admin)
    payload = await resp.json()
    assert (resp.status, payload["error"]) == (400, "VALIDATION_ERROR")
    assert {d["field"] for d in payload["details"]} == fields


async def test_duplicate_slugs_are_409(api: Api):
    name = f"Unique {token()}"
    await api.create("/api/categories", {"name": name})
    again = await api.client.post("/api/categories", json={"name": name}, headers=api.admin)
    assert (again.status, (await again.json())["error"]) == (409, "DUPLICATE_SLUG")
    place = await api.create("/api/destinations", {"name": name, "country": "Fine"})
    other = await api.create("/api/destinations", {"name": f"Other {token()}",
                                                   "country": "Fine"})
    clash = await api.client.patch(f"/api/destinations/{other['id']}",
                                   json={"slug": place["slug"]}, headers=api.admin)
    assert (clash.status, (await clash.json())["error"]) == (409, "DUPLICATE_SLUG")


async def test_delete_is_soft_and_refused_while_active_tours_use_it(api: Api, admin):
    category = await api.create("/api/categories", {"name": f"Busy {token()}"})
    tour = await api.tour(categoryId=category["id"])
    path = f"/api/categories/{category['id']}"
    refused = await api.client.delete(path, headers=admin)
    body = await refused.json()
    assert (refused.status, body["error"], body["details"]) == (409, "CATEGORY_IN_USE",
                                                                {"activeTours": 1})
    patched = await api.client.patch(path, json={"isActive": False}, headers=admin)
    assert (await patched.json())["error"] == "CATEGORY_IN_USE"

    await api.client.delete(f"/api/tours/{tour['id']}", headers=admin)
    assert (await api.client.delete(path, headers=admin)).status == 204
    assert (await api.client.get(path)).status == 404
    listed = await api.get("/api/categories", params={"limit": "100", "includeInactive": "true"},
                           headers=admin)
    assert category["id"] in [c["id"] for c in listed["items"]]
    assert (await api.get(path, params={"includeInactive": "true"},
                          headers=admin))["isActive"] is False
    # An inactive category takes no new tours.
    filed = await api.client.post("/api/tours", headers=admin, json={
        "title": f"Late {token()}", "description": "x", "price": 1, "duration": 1,
        "categoryId": category["id"]})
    assert (await filed.json())["details"][0]["field"] == "categoryId"


async def test_destinations_in_use_are_kept_too(api: Api, admin):
    place = await api.create("/api/destinations", {"name": f"Busy {token()}", "country": "X y"})
    await api.tour(destinationId=place["id"])
    refused = await api.client.delete(f"/api/destinations/{place['id']}", headers=admin)
    assert (refused.status, (await refused.json())["error"]) == (409, "DESTINATION_IN_USE")
    unknown = await api.client.delete(f"/api/destinations/{uuid.uuid4()}", headers=admin)
    assert (unknown.status, (await unknown.json())["error"]) == (404, "DESTINATION_NOT_FOUND")


@pytest.mark.parametrize(("path", "count"), [
    ("/api/categories", "SELECT count(*) FROM categories WHERE name = $1"),
    ("/api/destinations", "SELECT count(*) FROM destinations WHERE name = $1"),
])
async def test_concurrent_creates_of_one_name_make_one_entry_and_clean_409s(api: Api, conn,
                                                                            path: str,
                                                                            count: str):
    name = f"Rush {token()}"
    body = {"name": name, "country": "Fine"} if path.endswith("destinations") else {"name": name}

    async def create() -> tuple[int, str | None]:
        resp = await api.client.post(path, json=body, headers=api.admin)
        payload = await resp.json()
        return resp.status, payload.get("error")

    answers = await asyncio.gather(*(create() for _ in range(20)))

    assert sorted(answers, key=str) == sorted(
        [(201, None)] + [(409, "DUPLICATE_SLUG")] * 19, key=str)
    assert await conn.fetchval(count, name) == 1
