"""The server's refusals, shown next to the field they are about; a visitor sent to log in and
back; a session whose access token expired, refreshed without the visitor noticing; logging out."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jwt
import redis
from playwright.sync_api import expect

from auth.keys import load_private_key
from auth.tokens import TokenSigner
from tests.conftest import REDIS_URL, call
from tests.web.conftest import NewPage, log_in, new_tour, traveller


def test_registration_errors_are_shown_next_to_their_fields(new_page: NewPage) -> None:
    page = new_page()
    page.goto("/register")
    page.get_by_label("First name").fill("Weak")
    page.get_by_label("Last name").fill("Password")
    page.get_by_label("E-mail address").fill("weak@example.com")
    page.get_by_label("Mobile phone (optional, for SMS)").fill("12")
    page.get_by_label("Password", exact=True).fill("password1")
    page.get_by_label("Password again").fill("password1")
    page.get_by_role("button", name="Create my account").click()

    expect(page.get_by_role("alert")).to_have_text("Some fields need your attention.")
    expect(page.locator("#password-error")).to_contain_text("an uppercase letter")
    expect(page.get_by_label("Password", exact=True)).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#phone-error")).to_contain_text("international phone number")
    expect(page.get_by_label("First name")).to_have_value("Weak")  # what was typed stays


def test_booking_errors_are_shown_next_to_their_fields(
        new_page: NewPage, platform: dict[str, str], admin_token: str) -> None:
    tour = new_tour(platform["gateway"], admin_token, capacity=3)
    page = new_page()
    log_in(page, traveller(platform["gateway"], "Ivo"))
    page.goto(f"/book?tour={tour['id']}&date={tour['date']}&participants=5")
    page.get_by_label("Mobile phone (optional)").fill("not a phone")
    page.get_by_role("button", name="Hold my seats and continue to payment").click()
    expect(page.locator("#phone-error")).to_contain_text("international phone number")

    page.get_by_label("Mobile phone (optional)").fill("")
    page.get_by_role("button", name="Hold my seats and continue to payment").click()
    expect(page.locator("#participants-error")).to_have_text(
        "Only 3 seats are left on this date.")
    page.get_by_label("Travellers").fill("3")
    page.get_by_role("button", name="Hold my seats and continue to payment").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Payment")


def test_a_logged_out_visitor_is_sent_to_log_in_and_back(new_page: NewPage,
                                                         platform: dict[str, str]) -> None:
    who = traveller(platform["gateway"], "Ruth")
    page = new_page()
    page.goto("/bookings?page=1")
    expect(page).to_have_url(re.compile(r"/login\?"))
    assert parse_qs(urlsplit(page.url).query)["next"] == ["/bookings?page=1"]
    page.get_by_label("E-mail address").fill(who["user"]["email"])
    page.get_by_label("Password").fill(who["password"])
    page.locator("main").get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/bookings\?page=1$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("My bookings")

    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("status").filter(has_text="logged out")).to_be_visible()
    page.goto("/profile")
    expect(page).to_have_url(re.compile(r"/login\?next=/profile$"))


def test_a_wrong_password_is_refused_in_plain_words(new_page: NewPage,
                                                    platform: dict[str, str]) -> None:
    who = traveller(platform["gateway"], "Olga")
    page = new_page()
    page.goto("/login")
    page.get_by_label("E-mail address").fill(who["user"]["email"])
    page.get_by_label("Password").fill("Wrong1234")
    page.locator("main").get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_have_text(
        "The e-mail address or the password is not right.")


def _session_key(platform_prefix: str, cookie: str) -> str:
    return f"{platform_prefix}web:session:" + hashlib.sha256(cookie.encode()).hexdigest()


def test_an_expired_access_token_is_refreshed_silently(
        new_page: NewPage, platform: dict[str, str], stack: Any,
        key_files: tuple[Any, Any]) -> None:
    who = traveller(platform["gateway"], "Sam")
    page = new_page()
    log_in(page, who)
    [cookie] = [c for c in page.context.cookies() if c["name"] == "tb_session"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    store = redis.Redis.from_url(REDIS_URL)
    key = _session_key(stack.env["REDIS_PREFIX"], cookie["value"])
    data = json.loads(store.get(key))
    # Time passes: the access token of the session is now one that expired a minute ago.
    claims = jwt.decode(data["access"], options={"verify_signature": False})
    signer = TokenSigner(load_private_key(key_files[0]), issuer=claims["iss"],
                         audience=claims["aud"], ttl=-60)
    expired = signer.access_token(user_id=claims["sub"], email=claims["email"],
                                  role=claims["role"], session_id=claims["sid"])
    store.set(key, json.dumps({**data, "access": expired}), keepttl=True)

    page.goto("/bookings")
    expect(page.get_by_role("heading", level=1)).to_have_text("My bookings")
    renewed = json.loads(store.get(key))
    assert renewed["access"] not in (expired, data["access"])
    assert renewed["refresh"] != data["refresh"]
    store.close()


def test_logging_out_revokes_the_sessions_refresh_token(
        new_page: NewPage, platform: dict[str, str], stack: Any) -> None:
    who = traveller(platform["gateway"], "Lou")
    page = new_page()
    log_in(page, who)
    [cookie] = [c for c in page.context.cookies() if c["name"] == "tb_session"]
    store = redis.Redis.from_url(REDIS_URL)
    tokens = json.loads(store.get(_session_key(stack.env["REDIS_PREFIX"], cookie["value"])))
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("status").filter(has_text="logged out")).to_be_visible()

    status, body, _ = call("POST", platform["gateway"] + "/api/auth/refresh",
                           {"refreshToken": tokens["refresh"]})
    assert status == 401, body
    [after] = [c for c in page.context.cookies() if c["name"] == "tb_session"]
    assert after["value"] != cookie["value"]  # a new session id, without the tokens
    assert store.get(_session_key(stack.env["REDIS_PREFIX"], cookie["value"])) is None
    store.close()
