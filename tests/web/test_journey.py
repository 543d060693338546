"""A newcomer, from the home page: search, a tour, "Book" (which asks them to register first, then
comes back), the booking form, the test card, the page that follows the payment until the booking
is confirmed, the confirmation e-mail, and the booking's own page, the one every e-mail links to."""

from __future__ import annotations

import re
import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

from playwright.sync_api import expect

from tests.web.conftest import NewPage, mails_to, main_page, new_tour, wait_until


def test_a_newcomer_finds_a_tour_registers_books_pays_and_is_confirmed(
        new_page: NewPage, platform: dict[str, str], admin_token: str) -> None:
    word = f"Lagoon{uuid.uuid4().hex[:6]}"
    tour = new_tour(platform["gateway"], admin_token, title=f"{word} kayak morning")
    page = new_page()

    page.goto("/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Discover the world")
    expect(page.locator("#live-state")).to_have_attribute("data-state", "live")
    main_page(page, "home")

    page.get_by_label("Where do you want to go?").fill(word)
    page.get_by_role("button", name="Explore tours").click()
    expect(page.get_by_role("status").filter(has_text="tour found")).to_have_text("1 tour found")
    main_page(page, "tours")

    page.get_by_role("link", name=tour["title"]).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(tour["title"])
    expect(page.locator(f'[data-departure="{tour["id"]}:{tour["date"]}"] .seats-count')) \
        .to_have_text("10 seats left")
    main_page(page, "tour")

    page.get_by_label("Travellers", exact=True).fill("2")
    page.get_by_role("button", name="Book", exact=True).click()
    expect(page).to_have_url(re.compile(r"/login\?next="))
    main_page(page, "login")
    page.locator("main").get_by_role("link", name="Create an account").click()
    main_page(page, "register")
    email = f"nina-{uuid.uuid4().hex[:8]}@example.com"
    page.get_by_label("First name").fill("Nina")
    page.get_by_label("Last name").fill("Newcomer")
    page.get_by_label("E-mail address").fill(email)
    page.get_by_label("Password", exact=True).fill("Secret123")
    page.get_by_label("Password again").fill("Secret123")
    page.get_by_role("button", name="Create my account").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Your booking")
    expect(page.get_by_label("E-mail address")).to_have_value(email)
    expect(page.get_by_label("Travellers", exact=True)).to_have_value("2")
    main_page(page, "book")
    page.get_by_label("Special requests (optional)").fill("One vegetarian, please.")
    page.get_by_role("button", name="Hold my seats and continue to payment").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Payment")
    expect(page.get_by_text("Test mode: no real payment is made.")).to_be_visible()
    expect(page.locator(".summary .total")).to_contain_text("€90.00")
    main_page(page, "checkout")
    page.get_by_label("Card number").fill("4242 4242 4242 4242")
    page.get_by_label("Expiry (MM/YY)").fill("12/34")
    page.get_by_label("CVC").fill("123")
    page.get_by_role("button", name=re.compile("Pay")).click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Booking confirmed",
                                                              timeout=30_000)
    main_page(page, "payment-success")
    booking_id = parse_qs(urlsplit(page.url).query)["booking"][0]

    def confirmation() -> Any:
        return [m for m in mails_to(platform["smtp"], email) if "confirm" in m["subject"].lower()]

    [mail] = wait_until(confirmation)
    assert tour["title"] in mail["subject"] or tour["title"] in str(mail)

    page.goto(f"/bookings/{booking_id}")
    expect(page.locator(".status-line")).to_contain_text("Confirmed")
    expect(page.locator(".status-line")).to_contain_text("Paid")
    expect(page.get_by_text("One vegetarian, please.")).to_be_visible()
    main_page(page, "booking")
    page.get_by_role("link", name="My bookings").first.click()
    expect(page.locator(f'[data-booking-id="{booking_id}"]')).to_contain_text("Confirmed")
    main_page(page, "bookings")
    page.goto("/notifications")
    expect(page.get_by_role("table")).to_contain_text("E-mail")
    main_page(page, "notifications")
    page.goto("/profile")
    expect(page.get_by_label("First name")).to_have_value("Nina")
    main_page(page, "profile")
