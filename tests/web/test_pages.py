"""The site as a whole: French and English chosen by the browser or the switch, prices in the
tour's currency for the locale and converted for information, the cart, 404 pages for browsers
and the error envelope for API clients, static files cached for good, and the security headers."""

from __future__ import annotations

import re
import urllib.request

from playwright.sync_api import expect

from tests.conftest import call
from tests.web.conftest import NewPage, main_page, new_tour, traveller


def test_a_french_browser_reads_french_and_prices_the_french_way(
        new_page: NewPage, platform: dict[str, str], admin_token: str) -> None:
    tour = new_tour(platform["gateway"], admin_token, price=8999)
    page = new_page(locale="fr-FR")
    page.goto(f"/tours/{tour['slug']}")
    expect(page.locator("html")).to_have_attribute("lang", "fr")
    expect(page.get_by_role("heading", name="Départs")).to_be_visible()
    expect(page.locator(".booking-box .price").first).to_have_text("89,99\u00a0€")

    page.get_by_label("Langue").select_option("en")
    expect(page.get_by_role("heading", name="Departures")).to_be_visible()
    expect(page.locator(".booking-box .price").first).to_have_text("€89.99")
    page.goto("/tours")  # the choice is remembered
    expect(page.locator("html")).to_have_attribute("lang", "en")


def test_prices_are_shown_converted_but_charged_in_the_tours_currency(
        new_page: NewPage, platform: dict[str, str], admin_token: str) -> None:
    tour = new_tour(platform["gateway"], admin_token, price=10000)
    page = new_page()
    page.goto(f"/tours/{tour['slug']}")
    page.get_by_label("Currency shown").select_option("USD")
    expect(page.locator(".booking-box .converted").first).to_have_text("≈ $108.00")
    expect(page.locator(".booking-box .price").first).to_have_text("€100.00")
    expect(page.locator(".site-footer")).to_contain_text("charged in each tour's own currency")


def test_a_departure_saved_for_later_waits_in_the_cart_and_leaves_it(
        new_page: NewPage, platform: dict[str, str], admin_token: str) -> None:
    tour = new_tour(platform["gateway"], admin_token)
    page = new_page()
    page.goto(f"/tours/{tour['slug']}")
    page.get_by_role("button", name=re.compile(r"^Save .* for later$")).first.click()
    expect(page.get_by_role("status").filter(has_text="Saved")).to_be_visible()
    page.goto("/cart")
    row = page.locator(".booking-row")
    expect(row).to_contain_text(tour["title"])
    expect(row.locator(".seats-count")).to_have_text("10 seats left")
    expect(row.get_by_role("link", name="Book")).to_have_attribute(
        "href", f"/book?tour={tour['id']}&date={tour['date']}&participants=1")
    main_page(page, "cart")
    row.get_by_role("button", name="Remove").click()
    expect(page.get_by_text("Your cart is empty.")).to_be_visible()


def test_an_unknown_page_is_a_page_for_browsers_and_the_envelope_for_api_clients(
        new_page: NewPage, site: str) -> None:
    page = new_page()
    answer = page.goto("/no/such/page")
    assert answer is not None and answer.status == 404
    expect(page.get_by_role("heading", level=1)).to_have_text("Page not found")
    main_page(page, "not-found")

    status, body, headers = call("GET", site + "/no/such/page")
    assert (status, body["error"]) == (404, "NOT_FOUND")
    assert headers["Content-Type"].startswith("application/json")
    status, body, _ = call("GET", site + "/api/no/such/thing",
                           headers={"Accept": "text/html"})
    assert (status, body["error"]) == (404, "NOT_FOUND")


def test_pages_forbid_foreign_scripts_and_assets_are_cached_for_good(
        new_page: NewPage, site: str) -> None:
    page = new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    answer = page.goto("/")
    assert answer is not None
    csp = answer.headers["content-security-policy"]
    assert "script-src 'self';" in csp and "frame-ancestors 'none'" in csp
    assert answer.headers["cache-control"] == "no-store"
    stylesheet = page.locator("link[rel=stylesheet]").get_attribute("href")
    assert stylesheet and stylesheet.startswith("/static/css/site.")
    with urllib.request.urlopen(site + stylesheet) as response:
        assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert "RateLimit-Limit" not in response.headers
    expect(page.locator("#live-state")).to_have_attribute("data-state", "live")
    assert problems == []


def test_the_links_of_the_emails_land_on_real_pages(
        new_page: NewPage, platform: dict[str, str], admin_token: str) -> None:
    gateway = platform["gateway"]
    tour = new_tour(gateway, admin_token)
    who = traveller(gateway, "Eve")
    status, booking, _ = call("POST", gateway + "/api/bookings", {
        "tourId": tour["id"], "tourDate": tour["date"], "participants": 1},
        token=who["accessToken"], headers={"Idempotency-Key": tour["id"]})
    assert status == 201, booking
    page = new_page()
    page.goto(f"/tours/{tour['id']}#reviews")  # by id, as the e-mails write it
    expect(page.get_by_role("heading", level=1)).to_have_text(tour["title"])
    page.goto(f"/bookings/{booking['id']}")  # not logged in yet: to the login, and back
    page.get_by_label("E-mail address").fill(who["user"]["email"])
    page.get_by_label("Password").fill(who["password"])
    page.locator("main").get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(tour["title"])
    expect(page.locator(".status-line")).to_contain_text("Awaiting payment")
    page.goto("/profile")
    expect(page.get_by_label("First name")).to_have_value("Eve")
