"""Seats moving while a page is open: one traveller holds the last seats and another, reading the
same tour, sees the count, the badge, the "only N seats left" notice and then "sold out" without
reloading."""

from __future__ import annotations

import uuid

from playwright.sync_api import expect

from tests.conftest import call
from tests.web.conftest import NewPage, new_tour, traveller


def hold(gateway: str, token: str, tour: dict[str, str], participants: int) -> None:
    status, body, _ = call("POST", gateway + "/api/bookings", {
        "tourId": tour["id"], "tourDate": tour["date"], "participants": participants},
        token=token, headers={"Idempotency-Key": str(uuid.uuid4())})
    assert status == 201, body


def test_a_reader_sees_the_last_seats_go_and_the_tour_sell_out_without_reloading(
        new_page: NewPage, platform: dict[str, str], admin_token: str) -> None:
    gateway = platform["gateway"]
    tour = new_tour(gateway, admin_token, capacity=10)
    reader, booker = new_page(), new_page()
    reader.goto(f"/tours/{tour['slug']}")
    expect(reader.locator("#live-state")).to_have_attribute("data-state", "live")
    departure = reader.locator(f'[data-departure="{tour["id"]}:{tour["date"]}"]')
    expect(departure.locator("[data-badge]")).to_have_text("Available")

    someone = traveller(gateway, "Bea")
    hold(gateway, someone["accessToken"], tour, 6)          # 4 of 10 left: filling up
    expect(departure.locator(".seats-count")).to_have_text("4 seats left")
    expect(departure.locator("[data-badge]")).to_have_text("Filling up")

    booker.goto("/login")  # the other browser books through the site itself
    booker.get_by_label("E-mail address").fill(someone["user"]["email"])
    booker.get_by_label("Password").fill(someone["password"])
    booker.locator("main").get_by_role("button", name="Log in").click()
    booker.goto(f"/book?tour={tour['id']}&date={tour['date']}&participants=3")
    booker.get_by_role("button", name="Hold my seats and continue to payment").click()
    expect(booker.get_by_role("heading", level=1)).to_have_text("Payment")

    expect(departure.locator(".seats-count")).to_have_text("1 seat left")
    expect(departure.locator("[data-badge]")).to_have_text("Last seats")
    expect(reader.locator(".toast")).to_contain_text("Only 1 seat left")

    hold(gateway, someone["accessToken"], tour, 1)
    expect(departure.locator(".seats-count")).to_have_text("Sold out")
    expect(departure.locator("[data-badge]")).to_have_text("Sold out")
