"""Operators by role: an admin finds a traveller, disables the account (whose open session, in
another browser, ends at its next page) and enables it again; an admin sees a payment Stripe
took at another amount and resolves it with a note; a manager runs bookings and reads payments
but is never offered refunds, users or circuit breakers."""

from __future__ import annotations

import re
from typing import Any

import stripe
from playwright.sync_api import expect

from tests.conftest import call
from tests.test_payment_saga import book, create_intent, pay
from tests.web.conftest import (
    NewPage,
    log_in,
    main_page,
    new_tour,
    staff,
    traveller,
    wait_until,
)
from tests.web.test_operator import operator


def test_an_admin_disables_a_traveller_whose_open_session_then_ends(
        new_page: NewPage, platform: dict[str, str], admin_token: str) -> None:
    who = traveller(platform["gateway"], "Nadia")
    theirs = new_page()
    log_in(theirs, who, "/bookings")
    expect(theirs.get_by_role("heading", level=1)).to_have_text("My bookings")

    page = new_page()
    operator(page, admin_token)
    page.locator(".operator-nav").get_by_role("link", name="Users").click()
    page.get_by_label("Name or e-mail").fill(who["user"]["email"])
    page.get_by_role("button", name="Find").click()
    main_page(page, "operator-users")
    page.get_by_role("link", name="Nadia").click()
    expect(page.locator(".status-line")).to_contain_text("Active")
    main_page(page, "operator-user")
    page.get_by_role("button", name="Disable the account").click()
    expect(page.get_by_role("status").filter(has_text="account is disabled")).to_be_visible()
    expect(page.locator(".status-line")).to_contain_text("Disabled")

    theirs.goto("/")  # a public page: it calls the API with no token, yet the session ends
    expect(theirs).to_have_url(re.compile(r"/login\?next=/$"))
    expect(theirs.get_by_role("status").filter(has_text="disabled")).to_have_text(
        "This account has been disabled, so you are logged out. Contact us to enable it again.")
    expect(theirs.get_by_role("link", name="My bookings")).to_have_count(0)
    theirs.get_by_label("E-mail address").fill(who["user"]["email"])
    theirs.get_by_label("Password").fill(who["password"])
    theirs.locator("main").get_by_role("button", name="Log in").click()
    expect(theirs.get_by_role("alert")).to_have_text(
        "This account is disabled. Contact us to enable it again.")

    page.get_by_role("button", name="Enable the account").click()
    expect(page.locator(".status-line")).to_contain_text("Active")
    log_in(theirs, who, "/bookings")
    expect(theirs.get_by_role("heading", level=1)).to_have_text("My bookings")


def _mismatched_payment(platform: dict[str, str], admin_token: str) -> dict[str, Any]:
    """A booking whose intent was paid at one euro behind our back: its payment, as listed."""
    gateway = platform["gateway"]
    tour = new_tour(gateway, admin_token)
    who = traveller(gateway, "Omar")
    booking = book(gateway, who["accessToken"], tour, tour["date"])
    intent = create_intent(gateway, who["accessToken"], booking["id"])
    client = stripe.StripeClient("sk_test_platform", base_addresses={"api": platform["stripe"]})
    client.v1.payment_intents.update(intent["paymentIntentId"], params={"amount": 100})
    pay(platform["stripe"], intent["paymentIntentId"], "pm_card_visa")

    def listed() -> Any:
        status, found, _ = call("GET", f"{gateway}/api/payments?anomaly=true&bookingId="
                                f"{booking['id']}", token=admin_token)
        assert status == 200, found
        return found["items"]

    [payment] = wait_until(listed, timeout=30)
    return dict(payment)


def test_an_admin_sees_a_payment_taken_at_another_amount_and_resolves_it(
        new_page: NewPage, platform: dict[str, str], admin_token: str) -> None:
    payment = _mismatched_payment(platform, admin_token)
    page = new_page()
    operator(page, admin_token)
    page.locator(".operator-nav").get_by_role("link", name="Payments").click()
    page.get_by_label("Booking reference").fill(payment["bookingId"])
    page.get_by_label("Only those with an unresolved anomaly").check()
    page.get_by_role("button", name="Filter").click()
    row = page.locator(f'[data-payment-id="{payment["id"]}"]')
    expect(row).to_contain_text("Paid at another amount")
    expect(row.locator(".anomaly.open")).to_contain_text(
        "Stripe took €1.00 where €90.00 was due")
    main_page(page, "operator-payments")

    row.get_by_label("What was done about it").fill("Refunded by hand from Stripe's dashboard")
    row.get_by_role("button", name="Mark as resolved").click()
    expect(page.get_by_role("status").filter(has_text="anomaly is resolved")).to_be_visible()
    expect(page.locator("tbody")).to_contain_text("No payment matches.")  # none unresolved
    page.get_by_label("Only those with an unresolved anomaly").uncheck()
    page.get_by_role("button", name="Filter").click()
    expect(row.locator(".anomaly")).to_contain_text(
        "Refunded by hand from Stripe's dashboard")
    expect(row.get_by_role("button", name="Mark as resolved")).to_have_count(0)


def test_a_manager_is_never_offered_refunds_users_or_circuit_breakers(
        new_page: NewPage, platform: dict[str, str], admin_token: str) -> None:
    gateway = platform["gateway"]
    tour = new_tour(gateway, admin_token)
    who = traveller(gateway, "Paula")
    booking = book(gateway, who["accessToken"], tour, tour["date"])
    intent = create_intent(gateway, who["accessToken"], booking["id"])
    pay(platform["stripe"], intent["paymentIntentId"], "pm_card_visa")

    def confirmed() -> bool:
        status, body, _ = call("GET", f"{gateway}/api/bookings/{booking['id']}",
                               token=admin_token)
        return status == 200 and body["status"] == "confirmed"

    wait_until(confirmed, timeout=30)
    page = new_page()
    log_in(page, staff(gateway, admin_token, "manager", "Mona"), "/operator")

    nav = page.locator(".operator-nav")
    for shown in ("Tours", "Bookings", "Payments", "Notifications", "Status"):
        expect(nav.get_by_role("link", name=shown)).to_be_visible()
    expect(nav.get_by_role("link", name="Users")).to_have_count(0)
    main_page(page, "manager-home")

    page.goto("/operator/status")
    expect(page.get_by_role("table").first).to_contain_text("catalog")
    expect(page.get_by_role("heading", name="Circuit breakers")).to_have_count(0)
    expect(page.get_by_role("button", name=re.compile("^Reset"))).to_have_count(0)

    page.goto(f"/operator/bookings/{booking['id']}")
    expect(page.locator(".payment-box")).to_contain_text("Paid")
    expect(page.get_by_role("button", name="Set the status to cancelled")).to_be_visible()
    expect(page.get_by_role("button", name="Refund")).to_have_count(0)
    expect(page.locator(".refundable")).to_have_count(0)

    page.goto(f"/operator/payments?bookingId={booking['id']}")
    expect(page.locator("[data-payment-id]")).to_have_count(1)
    for path in ("/operator/users", "/operator/users/" + who["user"]["id"]):
        answer = page.goto(path)
        assert answer is not None and answer.status == 403, path
    answer = page.request.post("/operator/breakers/catalog/reset", form={"csrf": "x"})
    assert answer.status == 403
