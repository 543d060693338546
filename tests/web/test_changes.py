"""A traveller changes a pending booking from "My bookings" (travellers, contact, special
requests) and pays the new total; a change made meanwhile in another tab is shown, never
overwritten; seats beyond the free ones are explained next to the field."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.conftest import call
from tests.test_payment_saga import book
from tests.web.conftest import NewPage, log_in, main_page, new_tour, traveller
from tests.web.test_checkout import pay_with


def test_a_traveller_changes_the_travellers_then_pays_the_new_total(
        new_page: NewPage, platform: dict[str, str], admin_token: str) -> None:
    gateway = platform["gateway"]
    tour = new_tour(gateway, admin_token, price=4500)
    who = traveller(gateway, "Mina")
    page = new_page()
    log_in(page, who)
    page.goto(f"/book?tour={tour['id']}&date={tour['date']}&participants=1")
    page.get_by_role("button", name="Hold my seats and continue to payment").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Payment")
    booking_id = page.url.rsplit("booking=", 1)[1]

    page.goto("/bookings")
    page.get_by_role("link", name=f"Change the booking of {tour['title']}").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Change your booking")
    expect(page.get_by_label("Travellers")).to_have_value("1")
    expect(page.locator("#price-each")).to_contain_text("9 more seats are free on this date")
    main_page(page, "booking-change")
    page.get_by_label("Travellers").fill("3")
    page.get_by_label("Special requests (optional)").fill("One vegetarian, please.")
    page.get_by_role("button", name="Save the changes").click()

    expect(page).to_have_url(re.compile(rf"/bookings/{booking_id}$"))
    expect(page.get_by_role("status").filter(has_text="changed")).to_have_text(
        "Your booking is changed. Its total is now €135.00.")
    facts = page.locator(".facts")
    expect(facts).to_contain_text("One vegetarian, please.")
    expect(facts).to_contain_text("€135.00")
    page.get_by_role("link", name="Pay now").click()
    expect(page.locator(".summary .total .price")).to_have_text("€135.00")
    pay_with(page, "4242 4242 4242 4242")
    expect(page.get_by_role("heading", level=1)).to_have_text("Booking confirmed",
                                                              timeout=30_000)

    status, payments, _ = call("GET", f"{gateway}/api/payments/booking/{booking_id}",
                               token=admin_token)
    assert status == 200, payments
    assert [(p["amount"], p["status"]) for p in payments["items"]] == [(13500, "succeeded")]


def test_a_change_made_in_another_tab_is_shown_and_seats_beyond_the_free_ones_are_explained(
        new_page: NewPage, platform: dict[str, str], admin_token: str) -> None:
    gateway = platform["gateway"]
    tour = new_tour(gateway, admin_token, capacity=4)
    who = traveller(gateway, "Theo")
    booking = book(gateway, who["accessToken"], tour, tour["date"])  # two travellers
    first = new_page()
    log_in(first, who, f"/bookings/{booking['id']}/change")
    second = first.context.new_page()
    second.goto(f"/bookings/{booking['id']}/change")

    first.get_by_label("Travellers").fill("3")
    first.get_by_role("button", name="Save the changes").click()
    expect(first.get_by_role("status").filter(has_text="changed")).to_be_visible()

    second.get_by_label("Special requests (optional)").fill("A window seat on the bus.")
    second.get_by_role("button", name="Save the changes").click()
    expect(second.get_by_role("alert")).to_contain_text(
        "This booking was changed in another tab or window")
    # What stands now, for the traveller to change again: not what the second tab held.
    expect(second.get_by_label("Travellers")).to_have_value("3")
    expect(second.get_by_label("Special requests (optional)")).to_have_value("")

    second.get_by_label("Travellers").fill("6")
    second.get_by_role("button", name="Save the changes").click()
    expect(second.locator("#participants-error")).to_have_text(
        "Only 1 more seat is free on this date.")
    expect(second.get_by_label("Travellers")).to_have_attribute("aria-invalid", "true")

    second.get_by_label("Travellers").fill("4")
    second.get_by_label("Special requests (optional)").fill("A window seat on the bus.")
    second.get_by_role("button", name="Save the changes").click()
    expect(second.get_by_role("status").filter(has_text="changed")).to_have_text(
        "Your booking is changed. Its total is now €180.00.")
    status, after, _ = call("GET", f"{gateway}/api/bookings/{booking['id']}",
                            token=who["accessToken"])
    assert status == 200, after
    assert (after["participants"], after["specialRequests"]) == (4, "A window seat on the bus.")
