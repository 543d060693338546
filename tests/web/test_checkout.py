"""Paying with the test-card form: a declined card says so plainly and leaves the seats held,
and another card then pays; the page follows the booking until it is confirmed."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.web.conftest import NewPage, log_in, new_tour, traveller


def pay_with(page: Page, number: str) -> None:
    page.get_by_label("Card number").fill(number)
    page.get_by_label("Expiry (MM/YY)").fill("12/34")
    page.get_by_label("CVC").fill("123")
    page.get_by_role("button", name=re.compile("^Pay ")).click()


def test_a_declined_card_is_explained_and_another_card_then_pays(
        new_page: NewPage, platform: dict[str, str], admin_token: str) -> None:
    tour = new_tour(platform["gateway"], admin_token)
    who = traveller(platform["gateway"], "Dora")
    page = new_page()
    log_in(page, who)
    page.goto(f"/book?tour={tour['id']}&date={tour['date']}&participants=1")
    page.get_by_role("button", name="Hold my seats and continue to payment").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Payment")

    pay_with(page, "4000 0000 0000 0002")
    expect(page.get_by_role("alert")).to_contain_text("Your card was declined.")
    expect(page.get_by_role("alert")).to_contain_text("You can try again")
    expect(page.locator(".hold")).to_contain_text("left to pay")

    pay_with(page, "4000 0000 0000 9995")
    expect(page.get_by_role("alert")).to_contain_text("Your card has insufficient funds.")

    pay_with(page, "4242 4242 4242 4242")
    expect(page.get_by_role("heading", level=1)).to_have_text("Booking confirmed",
                                                              timeout=30_000)
    page.goto("/bookings")
    expect(page.locator(".booking-row").first).to_contain_text("Confirmed")
    expect(page.get_by_role("link", name="Pay now")).to_have_count(0)


def test_a_pending_booking_is_paid_later_from_my_bookings_with_its_time_left(
        new_page: NewPage, platform: dict[str, str], admin_token: str) -> None:
    tour = new_tour(platform["gateway"], admin_token)
    who = traveller(platform["gateway"], "Lena")
    page = new_page()
    log_in(page, who)
    page.goto(f"/book?tour={tour['id']}&date={tour['date']}&participants=3")
    page.get_by_role("button", name="Hold my seats and continue to payment").click()
    page.goto("/bookings")
    row = page.locator(".booking-row").first
    expect(row).to_contain_text("Awaiting payment")
    expect(row.locator(".countdown")).to_have_text(re.compile(r"1[45]:\d\d left to pay"))
    row.get_by_role("link", name="Pay now").click()
    pay_with(page, "4242 4242 4242 4242")
    expect(page.get_by_role("heading", level=1)).to_have_text("Booking confirmed",
                                                              timeout=30_000)


def test_a_pending_booking_is_cancelled_and_its_seats_come_back(
        new_page: NewPage, platform: dict[str, str], admin_token: str) -> None:
    tour = new_tour(platform["gateway"], admin_token, capacity=4)
    who = traveller(platform["gateway"], "Carl")
    page = new_page()
    log_in(page, who)
    page.goto(f"/book?tour={tour['id']}&date={tour['date']}&participants=2")
    page.get_by_role("button", name="Hold my seats and continue to payment").click()
    booking_id = page.url.rsplit("booking=", 1)[1]
    page.goto(f"/bookings/{booking_id}")
    expect(page.get_by_text("nothing is charged")).to_be_visible()
    page.get_by_role("button", name="Cancel this booking").click()
    expect(page.get_by_role("status").filter(has_text="cancelled")).to_contain_text(
        "Nothing was charged")
    expect(page.locator(".status-line")).to_contain_text("Cancelled")
    page.goto(f"/tours/{tour['slug']}")
    expect(page.locator(f'[data-departure="{tour["id"]}:{tour["date"]}"] .seats-count')) \
        .to_have_text("4 seats left", timeout=15_000)
