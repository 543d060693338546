"""An operator at work in the browser: a tour and its departure created in the operators' pages
that travellers then find; a paid booking refunded in part, with the amount that applies shown
first, and the traveller seeing it; the status of every service with its circuit breaker."""

from __future__ import annotations

import uuid
from typing import Any

import jwt
from playwright.sync_api import Page, expect

from common.testing import TEST_PASSWORD
from tests.conftest import call
from tests.test_payment_saga import book, create_intent, pay
from tests.web.conftest import NewPage, log_in, main_page, new_tour, traveller, wait_until


def operator(page: Page, admin_token: str) -> None:
    email = jwt.decode(admin_token, options={"verify_signature": False})["email"]
    log_in(page, {"user": {"email": email}, "password": TEST_PASSWORD}, "/operator")


def test_an_operator_creates_a_tour_and_a_departure_that_travellers_then_find(
        new_page: NewPage, admin_token: str) -> None:
    page = new_page()
    operator(page, admin_token)
    main_page(page, "operator-home")
    page.get_by_role("link", name="Tours and departures").click()
    main_page(page, "operator-tours")
    page.get_by_role("link", name="New tour").click()
    title = f"Vineyard cycle {uuid.uuid4().hex[:6]}"
    page.get_by_label("Title").fill(title)
    page.get_by_label("Summary").fill("Gentle hills, three wineries, lunch among the vines.")
    page.get_by_label("Description").fill("A day on quiet roads with a guide and e-bikes.")
    page.get_by_label("Price per person").fill("129.50")
    page.get_by_label("Duration").fill("1")
    page.get_by_label("Largest group").fill("8")
    page.get_by_role("button", name="Save the tour").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(title)
    main_page(page, "operator-tour")

    page.get_by_label("Date", exact=True).fill("2031-05-17")
    page.get_by_label("Seats", exact=True).fill("6")
    page.get_by_role("button", name="Add the departure").click()
    expect(page.get_by_role("status").filter(has_text="departure is added")).to_be_visible()

    traveller_page = new_page()
    traveller_page.goto("/tours?q=" + title.rsplit(maxsplit=1)[-1])
    traveller_page.get_by_role("link", name=title).click()
    departure = traveller_page.locator(".departures li").first
    expect(departure).to_contain_text("May 17, 2031")
    expect(departure.locator(".seats-count")).to_have_text("6 seats left")
    expect(traveller_page.locator(".booking-box .price").first).to_have_text("€129.50")


def test_an_operator_refunds_part_of_a_booking_and_the_traveller_sees_it(
        new_page: NewPage, platform: dict[str, str], admin_token: str) -> None:
    gateway = platform["gateway"]
    tour = new_tour(gateway, admin_token)
    who = traveller(gateway, "Rita")
    booking = book(gateway, who["accessToken"], tour, tour["date"])
    intent = create_intent(gateway, who["accessToken"], booking["id"])
    pay(platform["stripe"], intent["paymentIntentId"], "pm_card_visa")

    def confirmed() -> Any:
        status, body, _ = call("GET", f"{gateway}/api/bookings/{booking['id']}",
                               token=who["accessToken"])
        return status == 200 and body["status"] == "confirmed"

    wait_until(confirmed)
    page = new_page()
    operator(page, admin_token)
    page.goto("/operator/bookings?email=" + who["user"]["email"])
    main_page(page, "operator-bookings")
    page.get_by_role("link", name=tour["title"]).click()
    expect(page.locator(".refundable")).to_have_text("Up to €90.00 can be refunded.")
    main_page(page, "operator-booking")
    page.get_by_label("Amount (empty: all of it)").fill("30")
    page.get_by_label("Reason").first.fill("Left a day early")
    page.get_by_role("button", name="Refund", exact=True).click()
    expect(page.get_by_role("status").filter(has_text="refund is sent")).to_be_visible()
    expect(page.locator(".refundable")).to_have_text("Up to €60.00 can be refunded.")

    mine = new_page()
    log_in(mine, who, f"/bookings/{booking['id']}")
    expect(mine.locator(".status-line")).to_contain_text("Partly refunded", timeout=15_000)
    expect(mine.locator(".facts")).to_contain_text("€30.00")


def test_the_status_page_shows_every_service_and_resets_a_breaker(
        new_page: NewPage, admin_token: str) -> None:
    page = new_page()
    operator(page, admin_token)
    page.goto("/operator/status")
    services = page.get_by_role("table").first
    for name in ("auth", "catalog", "booking", "payments", "notify", "realtime", "web"):
        expect(services).to_contain_text(name)
    main_page(page, "operator-status")
    page.get_by_role("button", name="Reset the breaker of catalog").click()
    expect(page.get_by_role("status").filter(has_text="circuit breaker of catalog")) \
        .to_be_visible()


def test_a_traveller_is_not_shown_the_operators_pages(new_page: NewPage,
                                                      platform: dict[str, str]) -> None:
    page = new_page()
    log_in(page, traveller(platform["gateway"], "Tom"))
    expect(page.get_by_role("link", name="Operations")).to_have_count(0)
    answer = page.goto("/operator/bookings")
    assert answer is not None and answer.status == 403
