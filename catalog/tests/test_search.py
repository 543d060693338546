"""Finding tours: full-text `q`, each filter, each sort, pagination, the limits of the query, and
what the public may not see. Every test searches a small world of its own (a word in every title,
two categories and two destinations of its own), so other tests' tours never interfere."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from catalog.tests.conftest import Api, in_days, token


@dataclass
class World:
    word: str
    tours: dict[str, dict[str, Any]]
    categories: list[dict[str, Any]]
    destinations: list[dict[str, Any]]

    def ids(self, *names: str) -> list[str]:
        return [self.tours[name]["id"] for name in names]


@pytest.fixture
async def world(api: Api) -> World:
    word = token()
    categories = [await api.create("/api/categories", {"name": f"Cat {word} {n}"})
                  for n in (1, 2)]
    destinations = [await api.create("/api/destinations", {
        "name": f"{place} {word}", "country": country})
        for place, country in (("Zermatt", "Switzerland"), ("Porto", "Portugal"))]

    async def tour(title: str, *, price: int, rating: float, difficulty: str,
                   category: int, destination: int, days: list[int]) -> dict[str, Any]:
        created = await api.tour(
            title=title, price=price, ratingsAverage=rating, ratingsQuantity=10 if rating else 0,
            difficulty=difficulty, categoryId=categories[category]["id"],
            destinationId=destinations[destination]["id"])
        for day in days:
            await api.departure(created["id"], days=day)
        return created

    tours = {
        "alpine": await tour(f"Alpine {word} glacier walk", price=30000, rating=4.9,
                             difficulty="difficult", category=0, destination=0, days=[10]),
        "evasion": await tour(f"Évasion baroque {word}", price=5000, rating=4.2,
                              difficulty="easy", category=0, destination=1, days=[40]),
        "coastal": await tour(f"Coastal {word} kayak", price=12000, rating=4.5,
                              difficulty="medium", category=1, destination=0, days=[70]),
        "fjord": await tour(f"Fjord {word} night sky", price=8000, rating=0,
                            difficulty="medium", category=1, destination=1, days=[]),
        "hidden": await tour(f"Hidden {word} secret", price=1000, rating=5,
                             difficulty="easy", category=1, destination=1, days=[15]),
    }
    # A departure in the range of one test, but no longer active.
    closed = await api.departure(tours["coastal"]["id"], days=20)
    await api.client.delete(f"/api/tours/{tours['coastal']['id']}/departures/{closed['id']}",
                            headers=api.admin)
    await api.client.delete(f"/api/tours/{tours['hidden']['id']}", headers=api.admin)
    return World(word, tours, categories, destinations)


async def search(api: Api, **params: Any) -> dict[str, Any]:
    return await api.get("/api/tours", params={k: str(v) for k, v in params.items()})


async def ids(api: Api, **params: Any) -> list[str]:
    return [tour["id"] for tour in (await search(api, **params))["items"]]


async def test_q_finds_words_and_word_starts_without_accents_in_any_field(api: Api, world: World):
    found = await search(api, q=world.word, sort="title")
    assert found["total"] == 4  # the inactive tour is not among them
    assert [t["id"] for t in found["items"]] == world.ids("alpine", "coastal", "evasion", "fjord")
    assert await ids(api, q=f"{world.word} glaci") == world.ids("alpine")
    assert await ids(api, q=f"EVASION {world.word}") == world.ids("evasion")  # É, any case
    assert await ids(api, q=f"{world.word} porto", sort="title") == world.ids("evasion", "fjord")
    assert await ids(api, q=f"{world.word} kayak glacier") == []  # every word must match
    assert await ids(api, q=f"{world.word}: a 'b & !") != []  # punctuation is not syntax
    # Characters that accent folding would turn into tsquery syntax (quotes, colons,
    # parentheses) are no error either: U+0149, U+02BC, U+02D0, U+2474.
    assert await ids(api, q=f"{world.word} \u0149 \u02bc \u02d0 \u2474") == []


async def test_relevance_puts_title_matches_first(api: Api, world: World):
    # "zermatt" is in the destination of alpine and coastal; "kayak" in coastal's title only.
    assert (await ids(api, q=f"{world.word} zermatt"))[0] in world.ids("alpine", "coastal")
    assert await ids(api, q=f"{world.word} kayak zermatt") == world.ids("coastal")


async def test_each_filter_narrows_the_result(api: Api, world: World):
    q = {"q": world.word, "sort": "title"}
    category, other = world.categories
    assert await ids(api, **q, category=category["slug"]) == world.ids("alpine", "evasion")
    assert await ids(api, **q, category=other["id"]) == world.ids("coastal", "fjord")
    zermatt, porto = world.destinations
    assert await ids(api, **q, destination=zermatt["slug"]) == world.ids("alpine", "coastal")
    assert await ids(api, **q, destination=porto["id"]) == world.ids("evasion", "fjord")
    assert await ids(api, **q, minPrice=8000, maxPrice=12000) == world.ids("coastal", "fjord")
    assert await ids(api, **q, minPrice=12001) == world.ids("alpine")
    assert await ids(api, **q, difficulty="medium") == world.ids("coastal", "fjord")
    assert await ids(api, **q, destination="nowhere") == []


async def test_dates_keep_tours_with_an_active_departure_in_the_range(api: Api, world: World):
    q = {"q": world.word, "sort": "title"}
    assert await ids(api, **q, **{"from": in_days(30), "to": in_days(50)}) == world.ids("evasion")
    assert await ids(api, **q, **{"from": in_days(35)}) == world.ids("coastal", "evasion")
    assert await ids(api, **q, to=in_days(15)) == world.ids("alpine")
    # coastal's departure on day 20 was deactivated: it no longer counts.
    assert await ids(api, **q, **{"from": in_days(15), "to": in_days(25)}) == []


@pytest.mark.parametrize(("sort", "order"), [
    ("price", ["evasion", "fjord", "coastal", "alpine"]),
    ("-price", ["alpine", "coastal", "fjord", "evasion"]),
    ("rating", ["alpine", "coastal", "evasion", "fjord"]),
    ("startDate", ["alpine", "evasion", "coastal", "fjord"]),  # fjord has no departure: last
    ("title", ["alpine", "coastal", "evasion", "fjord"]),  # É sorts with E, not after Z
])
async def test_sorts(api: Api, world: World, sort: str, order: list[str]):
    assert await ids(api, q=world.word, sort=sort) == world.ids(*order)


async def test_pages_cover_the_result_once(api: Api, world: World):
    pages = [await search(api, q=world.word, sort="price", limit=3, page=n) for n in (1, 2, 3)]
    assert [(p["page"], p["limit"], p["total"], len(p["items"])) for p in pages] == [
        (1, 3, 4, 3), (2, 3, 4, 1), (3, 3, 4, 0)]
    seen = [t["id"] for p in pages for t in p["items"]]
    assert seen == world.ids("evasion", "fjord", "coastal", "alpine")


async def test_items_carry_their_category_destination_and_next_departure(api: Api, world: World):
    [item] = (await search(api, q=f"{world.word} glacier"))["items"]
    assert item["category"] == {"id": world.categories[0]["id"],
                                "name": world.categories[0]["name"],
                                "slug": world.categories[0]["slug"], "icon": None}
    assert item["destination"]["name"] == world.destinations[0]["name"]
    assert item["destination"]["country"] == "Switzerland"
    assert (item["price"], item["currency"], item["ratingsAverage"]) == (30000, "EUR", 4.9)
    assert item["nextDepartureDate"] == in_days(10)
    assert "departures" not in item


@pytest.mark.parametrize(("params", "field"), [
    ({"limit": 101}, "limit"), ({"limit": 0}, "limit"), ({"page": 0}, "page"),
    ({"sort": "random"}, "sort"), ({"difficulty": "extreme"}, "difficulty"),
    ({"minPrice": -1}, "minPrice"), ({"minPrice": "cheap"}, "minPrice"),
    ({"minPrice": 3_000_000_000}, "minPrice"), ({"maxPrice": 10**20}, "maxPrice"),
    ({"from": "tomorrow"}, "from"), ({"to": "1893456000"}, "to"),
    ({"minPrice": 500, "maxPrice": 100}, "query"),
    ({"from": "2030-02-01", "to": "2030-01-01"}, "query"), ({"color": "red"}, "color"),
    ({"q": "x" * 201}, "q"),
])
async def test_bad_queries_are_400_naming_the_parameter(api: Api, params, field):
    resp = await api.client.get("/api/tours", params={k: str(v) for k, v in params.items()})
    body = await resp.json()
    assert (resp.status, body["error"]) == (400, "VALIDATION_ERROR")
    assert field in [d["field"] for d in body["details"]]


async def test_inactive_tours_are_for_staff_only(api: Api, world: World, admin, manager,
                                                customer):
    for staff in (admin, manager):
        everything = await api.get("/api/tours", headers=staff,
                                   params={"q": world.word, "includeInactive": "true"})
        assert everything["total"] == 5
    refused = await api.client.get("/api/tours", params={"includeInactive": "true"},
                                   headers=customer)
    assert (refused.status, (await refused.json())["error"]) == (403, "FORBIDDEN_ROLE")
    anonymous = await api.client.get("/api/tours", params={"includeInactive": "true"})
    assert (anonymous.status, (await anonymous.json())["error"]) == (401, "AUTH_TOKEN_MISSING")
