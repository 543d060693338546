"""A web session whose tokens auth revoked stops at the visitor's next page, even one that reads
only public data: a role change renews it with the new role, a logout elsewhere ends it and
sends the visitor to log in, saying why. (A disabled account: test_staff.)"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

import redis
from playwright.sync_api import Page, expect

from tests.conftest import REDIS_URL, call
from tests.web.conftest import NewPage, log_in, traveller


def session_tokens(page: Page, stack: Any) -> dict[str, Any]:
    """What the visitor's session holds in Redis (their tokens never reach the browser)."""
    [cookie] = [c for c in page.context.cookies() if c["name"] == "tb_session"]
    key = (f"{stack.env['REDIS_PREFIX']}web:session:"
           + hashlib.sha256(cookie["value"].encode()).hexdigest())
    store = redis.Redis.from_url(REDIS_URL)
    try:
        return dict(json.loads(store.get(key)))
    finally:
        store.close()


def test_a_role_change_renews_the_session_with_the_new_role(
        new_page: NewPage, platform: dict[str, str], admin_token: str, stack: Any) -> None:
    who = traveller(platform["gateway"], "Raoul")
    page = new_page()
    log_in(page, who, "/tours")
    expect(page.get_by_role("link", name="Operations")).to_have_count(0)
    before = session_tokens(page, stack)["access"]

    status, body, _ = call("PATCH", f"{platform['gateway']}/api/admin/users/{who['user']['id']}",
                           {"role": "manager"}, token=admin_token)
    assert status == 200, body
    page.goto("/")

    expect(page).to_have_url(re.compile(r"/$"))
    expect(page.get_by_role("status").filter(has_text="role")).to_have_text(
        "Your account's role has changed; the pages now offer what it allows.")
    expect(page.get_by_role("link", name="Operations")).to_be_visible()
    expect(page.get_by_role("link", name="Hello, Raoul")).to_be_visible()
    assert session_tokens(page, stack)["access"] != before
    page.get_by_role("link", name="Operations").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Operations")


def test_a_session_logged_out_elsewhere_ends_at_the_next_page(
        new_page: NewPage, platform: dict[str, str], stack: Any) -> None:
    who = traveller(platform["gateway"], "Sven")
    page = new_page()
    log_in(page, who, "/tours")
    tokens = session_tokens(page, stack)
    # Another client of the same session logs it out: its tokens are revoked everywhere.
    status, body, _ = call("POST", platform["gateway"] + "/api/auth/logout",
                           token=tokens["access"])
    assert status in (200, 204), body

    page.goto("/tours")

    expect(page).to_have_url(re.compile(r"/login\?next=/tours$"))
    expect(page.get_by_role("status").filter(has_text="session")).to_have_text(
        "Your session has ended (you may have logged out elsewhere). Please log in again.")
    expect(page.get_by_role("button", name="Log out")).to_have_count(0)
    log_in(page, who, "/bookings")
    expect(page.get_by_role("heading", level=1)).to_have_text("My bookings")
