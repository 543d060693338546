"""A tour's page (by id or slug, with live seats, cacheable) and what admins do to tours and
departures: validated writes, soft deletes, and capacities that never drop below what is sold."""

from __future__ import annotations

import uuid

import pytest
from yarl import URL

from catalog.tests.conftest import Api, Bus, in_days, seats_of, token


async def test_a_tour_is_found_by_id_and_by_slug_with_its_future_departures(api: Api):
    tour = await api.tour(title=f"Visite guidée {token()}")
    later, sooner = await api.departure(tour["id"], days=60), await api.departure(tour["id"])
    closed = await api.departure(tour["id"], days=90)
    await api.client.delete(f"/api/tours/{tour['id']}/departures/{closed['id']}",
                            headers=api.admin)
    await api.held(sooner, 4)
    by_id = await api.get(f"/api/tours/{tour['id']}")
    by_slug = await api.get(f"/api/tours/{tour['slug']}")
    assert by_id == by_slug
    assert tour["slug"].startswith("visite-guidee-zq")
    assert [(d["id"], d["availableSeats"], d["heldSeats"]) for d in by_id["departures"]] == [
        (sooner["id"], 6, 4), (later["id"], 10, 0)]
    assert by_id["nextDepartureDate"] == sooner["date"]


async def test_unknown_and_inactive_tours_are_404(api: Api, admin, customer):
    tour = await api.tour()
    await api.client.delete(f"/api/tours/{tour['id']}", headers=admin)
    for path in (f"/api/tours/{tour['id']}", f"/api/tours/{tour['slug']}",
                 f"/api/tours/{uuid.uuid4()}", "/api/tours/no-such-tour"):
        resp = await api.client.get(path)
        assert (resp.status, (await resp.json())["error"]) == (404, "TOUR_NOT_FOUND"), path
    shown = await api.get(f"/api/tours/{tour['id']}", params={"includeInactive": "true"},
                          headers=admin)
    assert shown["isActive"] is False
    refused = await api.client.get(f"/api/tours/{tour['id']}",
                                   params={"includeInactive": "true"}, headers=customer)
    assert refused.status == 403


async def test_public_reads_are_cacheable_and_revalidate_with_etags(api: Api):
    tour, departure = await api.tour_with_departure()
    path = f"/api/tours/{tour['id']}"
    first = await api.client.get(path)
    etag = first.headers["ETag"]
    assert first.headers["Cache-Control"] == "public, max-age=5"
    assert "Authorization" in first.headers["Vary"]

    same = await api.client.get(path, headers={"If-None-Match": etag})
    assert same.status == 304 and await same.read() == b""
    assert same.headers["ETag"] == etag
    weak = await api.client.get(path, headers={"If-None-Match": f'"other", W/{etag}'})
    assert weak.status == 304

    await api.held(departure)  # availableSeats changes: so does the body
    changed = await api.client.get(path, headers={"If-None-Match": etag})
    assert changed.status == 200 and changed.headers["ETag"] != etag
    assert (await changed.json())["departures"][0]["availableSeats"] == 9

    listing = await api.client.get("/api/tours", params={"q": tour["title"]})
    again = await api.client.get("/api/tours", params={"q": tour["title"]},
                                 headers={"If-None-Match": listing.headers["ETag"]})
    assert again.status == 304


async def test_answers_for_admins_are_private(api: Api, admin):
    tour = await api.tour()
    resp = await api.client.get(f"/api/tours/{tour['id']}", params={"includeInactive": "true"},
                                headers=admin)
    assert resp.headers["Cache-Control"] == "private, no-cache"


async def test_admin_creates_a_tour_with_defaults_and_links(api: Api):
    category = await api.create("/api/categories", {"name": f"Kayak {token()}"})
    destination = await api.create("/api/destinations", {
        "name": f"Lofoten {token()}", "country": "Norway",
        "coordinates": {"lat": 68.2, "lng": 14.5}})
    tour = await api.create("/api/tours", {
        "title": f"  Arctic paddle {token()} ", "description": "Three days of sea kayaking.",
        "price": 89900, "duration": 3, "categoryId": category["id"],
        "destinationId": destination["id"], "images": ["https://img.example/1.jpg"]})
    assert tour["title"].startswith("Arctic paddle") and not tour["title"].endswith(" ")
    assert (tour["currency"], tour["durationUnit"], tour["difficulty"]) == ("EUR", "days",
                                                                           "medium")
    assert (tour["maxGroupSize"], tour["ratingsAverage"], tour["ratingsQuantity"]) == (15, 0, 0)
    assert tour["category"]["slug"] == category["slug"]
    assert tour["destination"]["coordinates"] == {"lat": 68.2, "lng": 14.5}
    assert tour["departures"] == [] and tour["isActive"] is True
    assert tour["createdAt"].endswith("Z")


async def test_duplicate_slugs_are_409(api: Api):
    tour = await api.tour()
    again = await api.client.post("/api/tours", headers=api.admin, json={
        "title": tour["title"], "description": "Same title, same slug.", "price": 1,
        "duration": 1})
    body = await again.json()
    assert (again.status, body["error"], body["details"]) == (409, "DUPLICATE_SLUG",
                                                              {"slug": tour["slug"]})
    other = await api.tour()
    renamed = await api.client.patch(f"/api/tours/{other['id']}", headers=api.admin,
                                     json={"slug": tour["slug"]})
    assert (renamed.status, (await renamed.json())["error"]) == (409, "DUPLICATE_SLUG")


@pytest.mark.parametrize(("body", "fields"), [
    ({}, {"title", "description", "price", "duration"}),
    ({"price": 89.99}, {"price"}),
    ({"price": "8999"}, {"price"}),
    ({"price": -1}, {"price"}),
    ({"currency": "eur"}, {"currency"}),
    ({"currency": "EUD"}, {"currency"}),  # a typo nobody could pay in
    ({"currency": "XXX"}, {"currency"}),  # ISO's "no currency"
    ({"currency": "BGN"}, {"currency"}),  # withdrawn: Bulgaria pays in euros since 2026
    ({"currency": "XAU"}, {"currency"}),  # gold prices no tour
    ({"ratingsQuantity": 3_000_000_000}, {"ratingsQuantity"}),
    ({"difficulty": "extreme"}, {"difficulty"}),
    ({"durationUnit": "months"}, {"durationUnit"}),
    ({"maxGroupSize": 0}, {"maxGroupSize"}),
    ({"ratingsAverage": 5.5}, {"ratingsAverage"}),
    ({"ratingsAverage": True}, {"ratingsAverage"}),  # not a number, whatever Python thinks
    ({"ratingsAverage": "4.5"}, {"ratingsAverage"}),
    ({"title": "ab"}, {"title"}),
    ({"slug": "Not A Slug"}, {"slug"}),
    ({"slug": str(uuid.uuid4())}, {"slug"}),
    ({"images": ["javascript:alert(1)"]}, {"images.0"}),
    ({"categoryId": "tours"}, {"categoryId"}),
    ({"categoryId": str(uuid.uuid4())}, {"categoryId"}),
    ({"destinationId": str(uuid.uuid4())}, {"destinationId"}),
    ({"bookedSeats": 3}, {"bookedSeats"}),
])
async def test_tour_validation_names_each_bad_field(api: Api, body, fields):
    valid = {"title": f"Valid {token()}", "description": "Fine.", "price": 100, "duration": 1}
    resp = await api.client.post("/api/tours", json={**valid, **body} if body else {},
                                 headers=api.admin)
    payload = await resp.json()
    assert (resp.status, payload["error"]) == (400, "VALIDATION_ERROR")
    assert {d["field"] for d in payload["details"]} == fields


@pytest.mark.parametrize(("currency", "digits"), [("EUR", 2), ("JPY", 0), ("KWD", 3),
                                                  ("XCG", 2)])
async def test_a_tour_says_how_many_minor_digits_its_price_has(api: Api, currency: str,
                                                                digits: int):
    tour = await api.tour(currency=currency, price=8999)
    assert (tour["price"], tour["currency"], tour["currencyDigits"]) == (8999, currency, digits)
    found = await api.get("/api/tours", params={"q": tour["title"]})
    assert found["items"][0]["currencyDigits"] == digits


async def test_patch_changes_only_what_is_sent(api: Api):
    tour = await api.tour(summary="Old summary.", price=4500)
    resp = await api.client.patch(f"/api/tours/{tour['id']}", headers=api.admin,
                                  json={"price": 5000, "summary": None, "title": "New title"})
    assert resp.status == 200
    changed = await resp.json()
    assert (changed["price"], changed["summary"], changed["title"]) == (5000, None, "New title")
    assert changed["slug"] == tour["slug"]  # links keep working
    assert changed["description"] == tour["description"]
    assert changed["updatedAt"] > tour["updatedAt"]
    for body, field in (({}, "body"), ({"title": None}, "title"), ({"price": None}, "price"),
                        ({"ratingsQuantity": 3_000_000_000}, "ratingsQuantity"),
                        ({"currency": "EUD"}, "currency")):
        refused = await api.client.patch(f"/api/tours/{tour['id']}", json=body,
                                         headers=api.admin)
        assert refused.status == 400
        assert field in [d["field"] for d in (await refused.json())["details"]]
    # An unknown tour is 404 whatever the body says, even a link to an unknown category.
    for body in ({"price": 1}, {"categoryId": str(uuid.uuid4())}):
        missing = await api.client.patch(f"/api/tours/{uuid.uuid4()}", json=body,
                                         headers=api.admin)
        assert (missing.status, (await missing.json())["error"]) == (404, "TOUR_NOT_FOUND")


@pytest.mark.parametrize("kind", ["category", "destination"])
async def test_a_tour_comes_back_only_under_active_reference_data(api: Api, kind: str):
    """Active tours keep their category and destination active (deactivating one they use is
    refused); bringing back an inactive tour filed under an inactive one must be refused too."""
    collection = {"category": "/api/categories", "destination": "/api/destinations"}[kind]
    link = await api.create(collection, {"name": f"Seasonal {token()}", "country": "Norway"}
                            if kind == "destination" else {"name": f"Seasonal {token()}"})
    tour = await api.tour(**{f"{kind}Id": link["id"]})
    path = f"/api/tours/{tour['id']}"
    await api.client.delete(path, headers=api.admin)
    assert (await api.client.delete(f"{collection}/{link['id']}",
                                    headers=api.admin)).status == 204

    refused = await api.client.patch(path, json={"isActive": True}, headers=api.admin)
    body = await refused.json()
    assert (refused.status, body["error"]) == (400, "VALIDATION_ERROR")
    assert [d["field"] for d in body["details"]] == ["isActive"]
    assert kind in body["details"][0]["message"]
    shown = await api.get(path, params={"includeInactive": "true"}, headers=api.admin)
    assert shown["isActive"] is False  # nothing half-written

    # Filed elsewhere (or nowhere) in the same request, it may come back.
    restored = await api.client.patch(path, json={"isActive": True, f"{kind}Id": None},
                                      headers=api.admin)
    assert restored.status == 200
    assert (await restored.json())[kind] is None


async def test_a_title_shaped_like_an_id_still_gets_a_reachable_slug(api: Api):
    """Paths take an id or a slug: a slug that parses as a UUID could never be found."""
    for title in (str(uuid.uuid4()), uuid.uuid4().hex):
        tour = await api.tour(title=title)
        assert tour["slug"] != title and title in tour["slug"]
        assert (await api.get(f"/api/tours/{tour['slug']}"))["id"] == tour["id"]


async def test_paths_that_cannot_name_a_tour_are_404(api: Api):
    for key in ("%00", "a%00b", "Not%20A%20Slug", "x" * 200):
        resp = await api.client.get(URL(f"/api/tours/{key}", encoded=True))
        assert (resp.status, (await resp.json())["error"]) == (404, "TOUR_NOT_FOUND"), key


async def test_delete_is_soft_and_keeps_existing_holds(api: Api):
    tour, departure = await api.tour_with_departure()
    hold = await api.held(departure)
    deleted = await api.client.delete(f"/api/tours/{tour['id']}", headers=api.admin)
    assert deleted.status == 204
    assert (await api.client.get(f"/api/tours/{tour['id']}")).status == 404
    assert tour["id"] not in [t["id"] for t in (await api.get(
        "/api/tours", params={"q": tour["title"]}))["items"]]
    refused = await api.hold(tour["id"], departure["date"])
    assert (await refused.json())["error"] == "TOUR_NOT_FOUND"
    confirmed = await api.hold_action(hold["bookingId"], "confirm")
    assert confirmed.status == 200  # a traveller who already paid keeps the seat
    restored = await api.client.patch(f"/api/tours/{tour['id']}", json={"isActive": True},
                                      headers=api.admin)
    assert (await restored.json())["isActive"] is True
    assert (await api.client.get(f"/api/tours/{tour['slug']}")).status == 200


async def test_departures_default_to_the_group_size_and_are_unique_per_day(api: Api):
    tour = await api.tour(maxGroupSize=12)
    departure = await api.departure(tour["id"], days=20)
    assert (departure["capacity"], departure["availableSeats"], departure["isActive"]) == (
        12, 12, True)
    again = await api.client.post(f"/api/tours/{tour['id']}/departures", headers=api.admin,
                                  json={"date": in_days(20), "capacity": 5})
    body = await again.json()
    assert (again.status, body["error"]) == (409, "DEPARTURE_EXISTS")
    assert body["details"]["departureId"] == departure["id"]
    for day in (0, -1):
        past = await api.client.post(f"/api/tours/{tour['id']}/departures", headers=api.admin,
                                     json={"date": in_days(day)})
        assert past.status == 400 and (await past.json())["details"][0]["field"] == "date"
    # Dates are YYYY-MM-DD on the wire; a number is not read as a Unix time.
    for wrong in (1893456000, "1893456000", "20270314", "14/03/2027"):
        odd = await api.client.post(f"/api/tours/{tour['id']}/departures", headers=api.admin,
                                    json={"date": wrong})
        [detail] = (await odd.json())["details"]
        assert (odd.status, detail["field"]) == (400, "date"), wrong
        assert "YYYY-MM-DD" in detail["message"]
    unknown = await api.client.post(f"/api/tours/{uuid.uuid4()}/departures", headers=api.admin,
                                    json={"date": in_days(20)})
    assert (unknown.status, (await unknown.json())["error"]) == (404, "TOUR_NOT_FOUND")


async def test_capacity_never_drops_below_the_seats_held_and_booked(api: Api, conn, bus: Bus):
    tour, departure = await api.tour_with_departure(capacity=10)
    hold = await api.held(departure, 4)
    await api.hold_action(hold["bookingId"], "confirm")
    await api.held(departure, 3)
    path = f"/api/tours/{tour['id']}/departures/{departure['id']}"

    refused = await api.client.patch(path, json={"capacity": 6}, headers=api.admin)
    body = await refused.json()
    assert (refused.status, body["error"]) == (409, "CAPACITY_BELOW_RESERVED")
    assert body["details"] == {"capacity": 6, "heldSeats": 3, "bookedSeats": 4,
                               "minimumCapacity": 7}
    assert await seats_of(conn, departure["id"]) == (10, 3, 4)

    lowered = await api.client.patch(path, json={"capacity": 8}, headers=api.admin)
    assert (await lowered.json())["availableSeats"] == 1
    # Three seat changes, then the capacity cut: 3 left of 10 was not low, 1 left of 8 is.
    events = await bus.events(tour["id"], 5)
    assert [e["eventType"] for e in events][3:] == ["tour.availability.changed",
                                                    "tour.availability.low"]
    assert (events[4]["data"]["availableSeats"], events[4]["data"]["capacity"],
            events[4]["data"]["threshold"]) == (1, 8, 2)


async def test_a_deactivated_departure_takes_no_new_holds(api: Api):
    tour, departure = await api.tour_with_departure()
    hold = await api.held(departure)
    path = f"/api/tours/{tour['id']}/departures/{departure['id']}"
    assert (await api.client.delete(path, headers=api.admin)).status == 204
    assert (await api.get(f"/api/tours/{tour['id']}"))["departures"] == []
    refused = await api.hold(tour["id"], departure["date"])
    assert (await refused.json())["error"] == "DEPARTURE_NOT_FOUND"
    assert (await api.hold_action(hold["bookingId"], "confirm")).status == 200
    other_tour = await api.tour()
    wrong = await api.client.patch(f"/api/tours/{other_tour['id']}/departures/{departure['id']}",
                                   json={"isActive": True}, headers=api.admin)
    assert (wrong.status, (await wrong.json())["error"]) == (404, "DEPARTURE_NOT_FOUND")
    reopened = await api.client.patch(path, json={"isActive": True}, headers=api.admin)
    assert (await reopened.json())["isActive"] is True


ADMIN_CALLS = [
    ("POST", "/api/tours"), ("PATCH", "/api/tours/{tour}"), ("DELETE", "/api/tours/{tour}"),
    ("POST", "/api/tours/{tour}/departures"),
    ("PATCH", "/api/tours/{tour}/departures/{departure}"),
    ("DELETE", "/api/tours/{tour}/departures/{departure}"),
    ("POST", "/api/categories"), ("PATCH", "/api/categories/{id}"),
    ("DELETE", "/api/categories/{id}"), ("POST", "/api/destinations"),
    ("PATCH", "/api/destinations/{id}"), ("DELETE", "/api/destinations/{id}"),
]


async def test_every_write_needs_a_manager_or_an_admin(api: Api, customer):
    tour, departure = await api.tour_with_departure()
    for method, template in ADMIN_CALLS:
        path = template.format(tour=tour["id"], departure=departure["id"], id=uuid.uuid4())
        anonymous = await api.client.request(method, path, json={"title": "Mine"})
        assert (anonymous.status, (await anonymous.json())["error"]) == (
            401, "AUTH_TOKEN_MISSING"), (method, path)
        forbidden = await api.client.request(method, path, json={"title": "Mine"},
                                             headers=customer)
        assert (forbidden.status, (await forbidden.json())["error"]) == (
            403, "FORBIDDEN_ROLE"), (method, path)
    assert (await api.get(f"/api/tours/{tour['id']}"))["title"] == tour["title"]


async def test_a_manager_runs_tours_and_departures(api: Api, manager):
    tour, departure = await api.tour_with_departure()
    changed = await api.client.patch(f"/api/tours/{tour['id']}", json={"title": "Night walk"},
                                     headers=manager)
    assert (changed.status, (await changed.json())["title"]) == (200, "Night walk")
    moved = await api.client.patch(f"/api/tours/{tour['id']}/departures/{departure['id']}",
                                   json={"capacity": 30}, headers=manager)
    assert (moved.status, (await moved.json())["capacity"]) == (200, 30)
    assert (await api.client.delete(f"/api/tours/{tour['id']}", headers=manager)).status == 204
    hidden = await api.client.get(f"/api/tours/{tour['id']}",
                                  params={"includeInactive": "true"}, headers=manager)
    assert (hidden.status, (await hidden.json())["isActive"]) == (200, False)
